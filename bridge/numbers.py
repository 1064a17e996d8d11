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
    # ISO 3166 region the number belongs to (`JM` for +1 876 …), `001` for non-geographic
    # ranges (+800, +881 satellite …): calling code 1 alone is shared by 25 countries.
    region: str = ""


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
        region=phonenumbers.region_code_for_number(number) or "",
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


def allowed_countries(faxbox: FaxboxConfig) -> set[str | int]:
    """Regions (and legacy bare calling codes) the faxbox may dial."""
    if faxbox.allowed_countries is not None:
        return set(faxbox.allowed_countries)
    return {faxbox.default_region}


def refusal_reason(destination: Destination, faxbox: FaxboxConfig) -> str | None:
    """Why the faxbox may not dial `destination` (a sentence), or None when it may."""
    if destination.costly and not faxbox.allow_premium:
        return f"{destination.e164} is a premium-rate or shared-cost number"
    allowed = allowed_countries(faxbox)
    if destination.region in allowed or destination.country_code in allowed:
        return None
    return f"{country_name(destination)} is not among its allowed countries"


def destination_allowed(destination: Destination, faxbox: FaxboxConfig) -> bool:
    return refusal_reason(destination, faxbox) is None


def country_name(destination: Destination) -> str:
    """`Jamaica (JM)`; for a non-geographic range, `the non-geographic +881 range`."""
    if not destination.region or destination.region == "001":
        return f"the non-geographic +{destination.country_code} range"
    from phonenumbers import geocoder

    number = phonenumbers.parse(destination.e164, None)
    name = geocoder.country_name_for_number(number, "en") or destination.region
    return f"{name} ({destination.region})"


def shared_calling_codes(faxbox: FaxboxConfig) -> list[str]:
    """Warnings for bare calling codes in `allowed_countries` that several countries share."""
    warnings = []
    for entry in faxbox.allowed_countries or []:
        if isinstance(entry, int):
            regions = [r for r in phonenumbers.region_codes_for_country_code(entry) if r != "001"]
            if len(regions) > 1:
                shown = ", ".join(regions[:6]) + (" …" if len(regions) > 6 else "")
                warnings.append(
                    f"faxbox {faxbox.name!r}: allowed_countries {entry} is a calling code "
                    f"shared by {len(regions)} countries ({shown}), so faxes may go to any of "
                    f"them: name ISO regions instead, e.g. [{regions[0]}]"
                )
    return warnings


def format_for_people(e164: str) -> str:
    """`+12125550123` → `+1 212-555-0123`."""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), PhoneNumberFormat.INTERNATIONAL
        )
    except NumberParseException:
        return e164
