"""HelloFax v1 account calls: check (with the legacy notice), callback registration, fax lines
(`/FaxLines`, or `/FaxLine` as the migration guide spells it) and the uncertain `find`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import ConfigError, PermanentProviderError, TransientProviderError
from bridge.providers.base import FaxProvider
from tests.cli_runner import run_cli, write_config
from tests.providers.conftest import CALLBACK_TOKEN, PUBLIC_URL, MakeFax, MakeProvider
from tests.providers.emulators.hellofax import (
    ACCOUNT_GUID,
    HelloFaxHarness,
    Transmission,
    make_harness,
)


@pytest.fixture(scope="module")
def harness() -> Iterator[HelloFaxHarness]:
    with make_harness() as running:
        yield running


# -- check ---------------------------------------------------------------------------------
async def test_check_reads_the_account_and_says_v1_is_legacy(
    harness: HelloFaxHarness, provider: FaxProvider[Any]
) -> None:
    start = len(harness.requests)

    description = await provider.check()

    [request] = harness.requests[start:]
    assert (request.method, request.path) == ("GET", f"/v1/Accounts/{ACCOUNT_GUID}")
    assert ACCOUNT_GUID in description
    assert "no longer maintained" in description
    assert "Dropbox Sign" in description and "dropboxsign" in description


async def test_check_says_where_each_callback_url_points(
    harness: HelloFaxHarness, provider: FaxProvider[Any]
) -> None:
    account = harness.state.account
    saved = dict(account)
    try:
        account["DefaultInboundFaxCallbackUrl"] = "https://old.example.com/inboundFax"
        account["DefaultOutboundFaxCallbackUrl"] = None
        before = await provider.check()
        await provider.setup()
        after = await provider.check()
    finally:
        account.update(saved)

    assert "inbound callback URL: elsewhere" in before
    assert "outbound callback URL: not set" in before
    assert "inbound callback URL: this bridge; outbound callback URL: this bridge" in after
    assert CALLBACK_TOKEN not in before + after


async def test_check_with_wrong_password_fails(make_provider: MakeProvider) -> None:
    with pytest.raises(PermanentProviderError, match="401"):
        await make_provider(password="wrong").check()


# -- setup ---------------------------------------------------------------------------------
async def test_setup_registers_both_account_callback_urls(
    harness: HelloFaxHarness, provider: FaxProvider[Any]
) -> None:
    lines = await provider.setup()

    expected = f"{PUBLIC_URL}/callbacks/hellofax?token={CALLBACK_TOKEN}"
    assert harness.state.account["DefaultInboundFaxCallbackUrl"] == expected
    assert harness.state.account["DefaultOutboundFaxCallbackUrl"] == expected
    assert len(lines) == 2
    assert not any(CALLBACK_TOKEN in line for line in lines)


async def test_setup_without_callback_token_is_a_config_error(
    make_provider: MakeProvider,
) -> None:
    with pytest.raises(ConfigError, match="callback_token"):
        await make_provider(callback_token=None).setup()


# -- fax lines -----------------------------------------------------------------------------
async def test_fax_lines_lists_the_accounts_numbers_in_e164(
    harness: HelloFaxHarness, provider: FaxProvider[Any]
) -> None:
    start = len(harness.requests)

    lines = await provider.fax_lines()

    # The emulator names the line by ten digits, as the DELETE example does.
    assert lines == ["+12125550100"]
    [request] = harness.requests[start:]
    assert (request.method, request.path) == ("GET", f"/v1/Accounts/{ACCOUNT_GUID}/FaxLines")


async def test_fax_lines_falls_back_to_the_migration_guides_faxline(
    harness: HelloFaxHarness, provider: FaxProvider[Any]
) -> None:
    harness.state.fax_lines_path = "FaxLine"
    start = len(harness.requests)
    try:
        lines = await provider.fax_lines()
    finally:
        harness.state.fax_lines_path = "FaxLines"

    assert lines == ["+12125550100"]
    paths = [r.path.rsplit("/", 1)[-1] for r in harness.requests[start:]]
    assert paths == ["FaxLines", "FaxLine"]


async def test_fax_lines_with_refused_credentials_is_permanent(
    make_provider: MakeProvider,
) -> None:
    with pytest.raises(PermanentProviderError, match="401"):
        await make_provider(password="wrong").fax_lines()


# -- find ----------------------------------------------------------------------------------
async def test_find_is_never_certain_and_names_in_flight_faxes_to_the_number(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax("+12125550177")
    guid = (await provider.send(fax)).provider_fax_id
    other = (await provider.send(make_fax("+12125550178"))).provider_fax_id
    start = len(harness.requests)

    lookup = await provider.find(fax)

    assert (lookup.certain, lookup.faxes) == (False, ())
    assert "keeps no reference of ours" in lookup.detail
    assert guid in lookup.detail and other not in lookup.detail
    listed = harness.requests[start:]
    assert listed and all(r.path.endswith("/Transmissions") for r in listed)
    assert all(r.method == "GET" for r in listed)


async def test_find_reads_a_listing_whatever_its_list_key_and_number_spelling(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # The listing's key is not documented, nor whether To keeps its leading 1.
    waiting = Transmission("7a" * 20, "2125550184", "12125550100", [], {}, status_code="T")
    page = {"Links": [], "Transmissions": [waiting.as_json()], "NextPageUri": None}
    harness.fail_next(200, page)

    lookup = await provider.find(make_fax("+12125550184"))

    assert not lookup.certain
    assert "7a" * 20 in lookup.detail


async def test_find_leaves_out_faxes_already_finished(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    fax = make_fax("+12125550179")
    guid = (await provider.send(fax)).provider_fax_id
    harness.settle(guid, "failed", "busy")

    lookup = await provider.find(fax)

    assert not lookup.certain
    assert guid not in lookup.detail


async def test_find_reads_every_page_of_the_listing(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax, monkeypatch: Any
) -> None:
    from bridge.providers import hellofax

    monkeypatch.setattr(hellofax, "LIST_PAGE_SIZE", 1)
    harness.state.transmissions.clear()
    fax = make_fax("+12125550180")
    await provider.send(make_fax("+12125550181"))
    guid = (await provider.send(fax)).provider_fax_id
    start = len(harness.requests)

    lookup = await provider.find(fax)

    assert guid in lookup.detail
    assert "only the newest" not in lookup.detail
    pages = [r.query["Page"] for r in harness.requests[start:]]
    assert pages == [["1"], ["2"]]


async def test_find_says_when_it_read_only_part_of_the_listing(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax, monkeypatch: Any
) -> None:
    from bridge.providers import hellofax

    monkeypatch.setattr(hellofax, "LIST_PAGE_SIZE", 1)
    for _ in range(hellofax.LIST_PAGES + 1):
        await provider.send(make_fax("+12125550182"))

    lookup = await provider.find(make_fax("+12125550183"))

    assert not lookup.certain
    assert f"only the newest {hellofax.LIST_PAGES} transmissions were read" in lookup.detail


async def test_find_that_cannot_list_still_says_why_it_is_uncertain(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    harness.fail_next(403, harness.error_body("Forbidden"))

    lookup = await provider.find(make_fax())

    assert not lookup.certain
    assert "listing failed" in lookup.detail and "Forbidden" in lookup.detail


async def test_find_when_rate_limited_asks_to_wait(
    harness: HelloFaxHarness, provider: FaxProvider[Any], make_fax: MakeFax
) -> None:
    # The worker then waits instead of sending blind.
    harness.fail_next(429, harness.error_body("Please wait."))

    with pytest.raises(TransientProviderError) as caught:
        await provider.find(make_fax())

    assert caught.value.rate_limited


# -- `faxbridge providers check` as an admin runs it ---------------------------------------
def test_providers_check_says_v1_is_legacy_and_checks_the_caller_id_against_faxlines(
    harness: HelloFaxHarness, tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "config.yaml"
    box = {"domains": ["fax.localhost"], "provider": "hellofax", "default_region": "US"}
    write_config(
        path,
        tmp_path,
        db_url,
        providers={"hellofax": harness.provider_config(CALLBACK_TOKEN)},
        faxboxes=[
            {**box, "name": "main", "caller_id": "+12125550100"},
            {**box, "name": "other", "domains": ["b.localhost"], "caller_id": "+12125550177"},
        ],
    )
    start = len(harness.requests)

    result = run_cli("providers", "check", "hellofax", config=path).ok()

    assert "HelloFax API v1 is legacy" in result.lines[0]
    assert "no longer maintained" in result.lines[0]
    assert result.lines[1:] == [
        "faxbox main: caller ID +12125550100 is a fax line of the account",
        "faxbox other: caller ID +12125550177 is NOT one of the account's fax lines "
        "(+12125550100); the provider may refuse the faxes or send another number",
    ]
    paths = [(r.method, r.path) for r in harness.requests[start:]]
    assert paths == [
        ("GET", f"/v1/Accounts/{ACCOUNT_GUID}"),
        ("GET", f"/v1/Accounts/{ACCOUNT_GUID}/FaxLines"),
    ]
