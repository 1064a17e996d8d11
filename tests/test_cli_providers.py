"""`faxbridge providers list|check|setup` in a subprocess, against the provider emulators."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import assert_error, header, run_cli, write_config
from tests.providers.emulators import dropboxsign, faxplus, hellofax, kazoo, mfax, telnyx
from tests.providers.harness import EmulatorHarness

TOKEN = "cb-token-7d21e0"
HARNESSES: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
    "dropboxsign": dropboxsign.make_harness,
    "faxplus": faxplus.make_harness,
    "hellofax": hellofax.make_harness,
    "kazoo": kazoo.make_harness,
    "mfax": mfax.make_harness,
    "telnyx": telnyx.make_harness,
}

WriteProviders = Callable[..., Path]


@pytest.fixture(scope="module", params=sorted(HARNESSES))
def any_harness(request: pytest.FixtureRequest) -> Iterator[EmulatorHarness]:
    with HARNESSES[request.param]() as running:
        yield running


@pytest.fixture
def hellofax_harness() -> Iterator[hellofax.HelloFaxHarness]:
    with hellofax.make_harness() as running:
        yield running


@pytest.fixture
def write_providers(tmp_path: Path, db_url: str) -> WriteProviders:
    """A config with the simulator plus `name: block` providers; returns its path."""

    def write(**providers: dict[str, Any]) -> Path:
        path = tmp_path / "config.yaml"
        write_config(path, tmp_path, db_url, providers=providers)
        return path

    return write


def public_url(config_file: Path) -> str:
    import yaml

    url: str = yaml.safe_load(config_file.read_text(encoding="utf-8"))["http"]["public_url"]
    return url


# -- check -----------------------------------------------------------------------------------
def test_check_says_credentials_ok_after_one_call(
    any_harness: EmulatorHarness, write_providers: WriteProviders
) -> None:
    name = any_harness.provider_type
    config = write_providers(**{name: any_harness.provider_config(TOKEN)})
    start = len(any_harness.requests)

    result = run_cli("providers", "check", name, config=config).ok()

    assert result.stdout.startswith(f"{name}: credentials OK — ")
    assert len(result.lines) == 1
    assert any_harness.requests[start:], "no request reached the emulator"
    assert all(r.method == "GET" for r in any_harness.requests[start:])  # harmless


def test_check_refused_by_the_provider_is_one_paragraph_naming_it(
    any_harness: EmulatorHarness, write_providers: WriteProviders
) -> None:
    name = any_harness.provider_type
    config = write_providers(**{name: any_harness.provider_config(TOKEN)})
    any_harness.fail_next(401, any_harness.error_body("Invalid credentials"))

    result = run_cli("providers", "check", name, config=config)

    assert_error(
        result,
        f"{name}: the credentials check failed: HTTP 401",
        "The provider refused the credentials: check ",
        f"under providers.{name} in {config}.",
    )
    assert result.stdout == ""


def test_check_with_a_wrong_hellofax_password_names_the_keys_to_fix(
    hellofax_harness: hellofax.HelloFaxHarness, write_providers: WriteProviders
) -> None:
    block = {**hellofax_harness.provider_config(TOKEN), "password": "pw-Nope-42"}
    config = write_providers(hellofax=block)

    result = run_cli("providers", "check", "hellofax", config=config)

    line = assert_error(
        result,
        "hellofax: the credentials check failed: HTTP 401: Unauthorized: bad username or password.",
        f"check username, password and account_guid under providers.hellofax in {config}.",
    )
    assert "pw-Nope-42" not in line


def test_check_with_good_hellofax_credentials_names_the_account(
    hellofax_harness: hellofax.HelloFaxHarness, write_providers: WriteProviders
) -> None:
    config = write_providers(hellofax=hellofax_harness.provider_config(TOKEN))

    result = run_cli("providers", "check", "hellofax", config=config).ok()

    assert result.stdout == (
        f"hellofax: credentials OK — HelloFax account {hellofax.ACCOUNT_GUID}: credentials "
        "accepted (inbound callback URL: not set; outbound callback URL: not set). Note: "
        "HelloFax API v1 is legacy: "
        "help.dropbox.com says its endpoints are no longer maintained; Dropbox Sign's fax API v3 "
        "(provider type dropboxsign) is its successor\n"
    )
    (request,) = hellofax_harness.requests
    assert (request.method, request.path) == ("GET", f"/v1/Accounts/{hellofax.ACCOUNT_GUID}")


def test_check_of_a_provider_that_does_not_answer_points_at_base_url(
    write_providers: WriteProviders,
) -> None:
    block = {
        "type": "mfax",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "k",
        "timeout_s": 5,
    }
    config = write_providers(mfax=block)

    assert_error(
        run_cli("providers", "check", "mfax", config=config),
        "mfax: the credentials check failed: cannot connect",
        "The provider at http://127.0.0.1:9/v1 did not answer: check base_url under providers.mfax",
    )


def test_check_of_an_unknown_provider_lists_the_configured_ones(
    write_providers: WriteProviders,
) -> None:
    config = write_providers()
    assert_error(
        run_cli("providers", "check", "hellofax", config=config),
        f"No provider 'hellofax' under providers: in {config} (configured: sim).",
    )


# -- setup -----------------------------------------------------------------------------------
def test_setup_registers_the_hellofax_callback_urls(
    hellofax_harness: hellofax.HelloFaxHarness, write_providers: WriteProviders
) -> None:
    config = write_providers(hellofax=hellofax_harness.provider_config(TOKEN))
    expected = f"{public_url(config)}/callbacks/hellofax?token={TOKEN}"

    result = run_cli("providers", "setup", "hellofax", config=config).ok()

    account = hellofax_harness.state.account
    assert account["DefaultInboundFaxCallbackUrl"] == expected
    assert account["DefaultOutboundFaxCallbackUrl"] == expected
    (request,) = hellofax_harness.requests
    assert (request.method, request.path) == ("POST", f"/v1/Accounts/{hellofax.ACCOUNT_GUID}")
    assert request.form()["DefaultInboundFaxCallbackUrl"] == [expected]
    assert result.lines == [
        f"HelloFax account {hellofax.ACCOUNT_GUID}: inbound fax callback URL set to "
        f"{public_url(config)}/callbacks/hellofax?token=…",
        f"HelloFax account {hellofax.ACCOUNT_GUID}: outbound fax callback URL set to "
        f"{public_url(config)}/callbacks/hellofax?token=…",
    ]
    assert TOKEN not in result.stdout
    assert "http.public_url" in result.stderr  # a loopback URL: a real provider cannot call it
    check = run_cli("providers", "check", "hellofax", config=config).ok()
    assert "(inbound callback URL: this bridge; outbound callback URL: this bridge)" in (
        check.stdout
    )


def test_setup_registers_faxplus_webhooks_once(write_providers: WriteProviders) -> None:
    with faxplus.make_harness() as harness:
        config = write_providers(faxplus=harness.provider_config(TOKEN))
        target = f"{public_url(config)}/callbacks/faxplus?token={TOKEN}"

        first = run_cli("providers", "setup", "faxplus", config=config).ok()
        second = run_cli("providers", "setup", "faxplus", config=config).ok()

        hooks = sorted((h["event"], h["target"]) for h in harness.state.hooks.values())
    assert hooks == [("fax_received", target), ("fax_sent", target)]
    assert [line.split(" → ")[0] for line in first.lines] == [
        "Registered Fax.Plus webhook fax_sent",
        "Registered Fax.Plus webhook fax_received",
    ]
    assert all(line.endswith("already exists") for line in second.lines)


def test_setup_points_the_telnyx_fax_application_at_the_bridge(
    write_providers: WriteProviders,
) -> None:
    with telnyx.make_harness() as harness:
        config = write_providers(telnyx=harness.provider_config(TOKEN))
        target = f"{public_url(config)}/callbacks/telnyx?token={TOKEN}"

        result = run_cli("providers", "setup", "telnyx", config=config).ok()
        check = run_cli("providers", "check", "telnyx", config=config).ok()

        assert harness.state.application["webhook_event_url"] == target
    assert result.lines[0] == (
        f"Fax application 'office-fax' ({telnyx.CONNECTION_ID}) now sends webhooks to {target}"
    )
    assert check.stdout.rstrip().endswith(f"sends webhooks to {target} (the bridge)")


def test_setup_refused_by_the_provider_is_one_paragraph(
    hellofax_harness: hellofax.HelloFaxHarness, write_providers: WriteProviders
) -> None:
    block = {**hellofax_harness.provider_config(TOKEN), "password": "wrong"}
    config = write_providers(office=block)

    assert_error(
        run_cli("providers", "setup", "office", config=config),
        "office (hellofax): setup failed: HTTP 401: Unauthorized: bad username or password.",
        "check username, password and account_guid under providers.office in",
    )
    assert hellofax_harness.state.account["DefaultInboundFaxCallbackUrl"] is None


def test_setup_without_a_callback_token_says_which_key_to_set(
    hellofax_harness: hellofax.HelloFaxHarness, write_providers: WriteProviders
) -> None:
    block = {**hellofax_harness.provider_config(TOKEN), "callback_token": None}
    config = write_providers(hellofax=block)

    assert_error(
        run_cli("providers", "setup", "hellofax", config=config),
        "providers.hellofax.callback_token: needed before registering callbacks",
    )
    assert hellofax_harness.requests == []


def test_setup_of_a_provider_without_an_api_for_it_prints_instructions(
    write_providers: WriteProviders,
) -> None:
    config = write_providers(
        mfax={"type": "mfax", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    )

    result = run_cli("providers", "setup", "mfax", config=config).ok()

    assert f"URL:    {public_url(config)}/callbacks/mfax?token=" not in result.stdout  # no token
    assert f"{public_url(config)}/callbacks/mfax" in result.stdout
    assert "Webhooks" in result.stdout


# -- list ------------------------------------------------------------------------------------
def test_list_shows_each_provider_with_its_callback_url_masked(
    write_providers: WriteProviders,
) -> None:
    block = {
        "type": "hellofax",
        "base_url": "http://127.0.0.1:9/v1",
        "username": "u",
        "password": "p",
        "account_guid": "g",
        "callback_token": TOKEN,
    }
    config = write_providers(hellofax=block)
    url = public_url(config)

    table = run_cli("providers", "list", config=config).ok()

    assert header(table) == ["NAME", "TYPE", "BASE URL", "FAXBOXES", "CALLBACK URL"]
    rows = [line.split() for line in table.lines[1:]]
    assert rows == [
        ["sim", "simulator", "main", f"{url}/callbacks/sim?token=***"],
        ["hellofax", "hellofax", "http://127.0.0.1:9/v1", f"{url}/callbacks/hellofax?token=***"],
    ]
    assert TOKEN not in table.stdout

    records = run_cli("providers", "list", "--json", config=config).json()
    assert records[1] == {
        "name": "hellofax",
        "type": "hellofax",
        "base_url": "http://127.0.0.1:9/v1",
        "faxboxes": [],
        "callback_url": f"{url}/callbacks/hellofax?token=***",
    }


def test_check_says_whether_each_faxbox_caller_id_is_a_line_of_the_account(
    tmp_path: Path, db_url: str
) -> None:
    path = tmp_path / "config.yaml"
    box = {"domains": ["fax.localhost"], "provider": "sim", "default_region": "US"}
    write_config(
        path,
        tmp_path,
        db_url,
        faxboxes=[
            {
                **box,
                "name": "main",
                "caller_id": "+12125550100",
                "inbound": {"numbers": ["+12125550100"]},
            },
            {**box, "name": "other", "domains": ["b.localhost"], "caller_id": "+12125550177"},
        ],
    )

    result = run_cli("providers", "check", "sim", config=path).ok()

    assert result.lines[1:] == [
        "faxbox main: caller ID +12125550100 is a fax line of the account",
        "faxbox other: caller ID +12125550177 is NOT one of the account's fax lines "
        "(+12125550100); the provider may refuse the faxes or send another number",
    ]
