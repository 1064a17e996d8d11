"""Recipient local part → E.164, and the destination policy (toll-fraud guard)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from bridge.config import FaxboxConfig

_ALLOWED_CHARS = re.compile(r"^\+?[0-9()\-.]+$")
_COSTLY = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST}


class NumberError(ValueError):
    """The local part is not a fax number."""


@dataclass(frozen=True)
class Destination:
    original: str  # the local part as written
    e164: str
    country_code: int
    costly: bool  # premium-rate or shared-cost


def parse_number(local_part: str, default_region: str) -> Destination:
    """Parse `local_part` (digits, +, - . ( )) with `default_region` for national numbers."""
    text = local_part.strip()
    if not text or not _ALLOWED_CHARS.match(text):
        raise NumberError(local_part)
    digits = re.sub(r"[()\-.]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+?[0-9]{3,17}", digits):
        raise NumberError(local_part)
    try:
        number = phonenumbers.parse(digits, None if digits.startswith("+") else default_region)
    except NumberParseException as exc:
        raise NumberError(local_part) from exc
    if not phonenumbers.is_valid_number(number):
        raise NumberError(local_part)
    return Destination(
        original=local_part,
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        country_code=int(number.country_code or 0),
        costly=phonenumbers.number_type(number) in _COSTLY,
    )


def to_e164(number: str) -> str:
    """A number as a provider reports it, in E.164: `12125550100`, `+1 212-555-0100` and
    `0012125550100` all become `+12125550100`. All-digit numbers are taken to start with their
    country code (HelloFax and Dropbox Sign drop only the `+`). Anything that is not a possible
    number (a withheld caller ID, "anonymous", "") comes back as given, stripped."""
    text = number.strip()
    digits = re.sub(r"[\s()\-.]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.isdigit():
        digits = "+" + digits
    try:
        parsed = phonenumbers.parse(digits, None)
    except NumberParseException:
        return text
    if not phonenumbers.is_possible_number(parsed):
        return text
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def allowed_countries(faxbox: FaxboxConfig) -> set[int]:
    if faxbox.allowed_countries is not None:
        return set(faxbox.allowed_countries)
    return {phonenumbers.country_code_for_region(faxbox.default_region)}


def destination_allowed(destination: Destination, faxbox: FaxboxConfig) -> bool:
    if destination.costly and not faxbox.allow_premium:
        return False
    return destination.country_code in allowed_countries(faxbox)


def format_for_people(e164: str) -> str:
    """`+12125550123` → `+1 212-555-0123`."""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), PhoneNumberFormat.INTERNATIONAL
        )
    except NumberParseException:
        return e164
