"""`faxbridge check-config`, `preview`, and the errors a user meets before any fax is sent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pypdf import PdfReader

from tests.cli_runner import MakeConfig, assert_error, config_writer, run_cli, write_config
from tests.messages import fax_mail


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.yaml"


@pytest.fixture
def make_config(tmp_path: Path, db_url: str, config_file: Path) -> MakeConfig:
    return config_writer(tmp_path, db_url, config_file)


def test_check_config_summarises_a_good_file(make_config: MakeConfig, config_file: Path) -> None:
    config = make_config()

    result = run_cli("check-config", config=config_file).ok()

    assert result.stdout.startswith("configuration OK: 1 faxbox(es), 1 provider(s); ")
    assert f"SMTP {config.smtp.listen}, HTTP {config.http.listen}" in result.stdout


def test_check_config_warns_about_each_missing_converter(
    make_config: MakeConfig, config_file: Path
) -> None:
    make_config(documents={"libreoffice": "/opt/none/soffice", "ghostscript": "/opt/none/gs"})

    result = run_cli("check-config", config=config_file).ok()

    assert result.stdout.startswith("configuration OK")
    warnings = result.stderr.splitlines()
    assert warnings[0].startswith(
        "faxbridge: warning: no LibreOffice (soffice) found at /opt/none/soffice: Word, Excel, "
        "PowerPoint, OpenDocument, RTF, CSV and HTML attachments will be refused"
    )
    assert warnings[1].startswith(
        "faxbridge: warning: no Ghostscript (gs) found: PostScript and EPS attachments will be "
        "refused"
    )
    make_config()  # the defaults: LibreOffice and Ghostscript found where Debian puts them
    assert run_cli("check-config", config=config_file).ok().stderr == ""


def _main_faxbox(**settings: object) -> list[dict[str, object]]:
    return [{"name": "main", "domains": ["fax.localhost"], "provider": "sim", **settings}]


def test_check_config_warns_that_a_calling_code_admits_every_country_sharing_it(
    make_config: MakeConfig, config_file: Path
) -> None:
    make_config(faxboxes=_main_faxbox(allowed_countries=[1, 33]))

    result = run_cli("check-config", config=config_file).ok()

    assert result.stderr == (
        "faxbridge: warning: faxbox 'main': allowed_countries 1 is a calling code shared by 25 "
        "countries (US, AG, AI, AS, BB, BM …), so faxes may go to any of them: name ISO "
        "regions instead, e.g. [US]\n"
    )
    make_config(faxboxes=_main_faxbox(allowed_countries=["US", "CA", "GB"]))
    assert run_cli("check-config", config=config_file).ok().stderr == ""


def test_allowed_countries_are_checked_as_regions_and_an_unquoted_no_is_explained(
    tmp_path: Path, db_url: str, config_file: Path
) -> None:
    write_config(config_file, tmp_path, db_url, faxboxes=_main_faxbox(allowed_countries=["XX"]))
    assert_error(
        run_cli("check-config", config=config_file),
        "faxboxes.0.allowed_countries",
        "'XX' is not a region phonenumbers knows (ISO 3166 code)",
    )
    text = config_file.read_text(encoding="utf-8").replace("- XX", "- NO")
    config_file.write_text(text, encoding="utf-8")  # Norway, as YAML 1.1 reads it: false
    assert_error(
        run_cli("check-config", config=config_file),
        "faxboxes.0.allowed_countries",
        "write the region in quotes: YAML reads an unquoted NO as false",
    )


def test_the_console_script_runs_the_same_cli(make_config: MakeConfig, config_file: Path) -> None:
    script = Path(sys.executable).with_name("faxbridge")
    if not script.exists():
        found = shutil.which("faxbridge")
        if found is None:
            pytest.skip("the faxbridge console script is not installed")
        script = Path(found)
    make_config()
    done = subprocess.run(
        [str(script), "check-config", "-c", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("configuration OK")


def test_check_config_names_the_path_of_an_unknown_key(
    tmp_path: Path, db_url: str, config_file: Path
) -> None:
    write_config(
        config_file,
        tmp_path,
        db_url,
        smtp={"max_recipeints": 10},
        faxboxes=[{"name": "main", "domain": ["x"], "provider": "sim"}],
    )

    result = run_cli("check-config", config=config_file)

    line = assert_error(
        result,
        f"{config_file} is not a valid faxbridge configuration",
        "smtp.max_recipeints: unknown key",
        "faxboxes.0.domain: unknown key",
    )
    assert result.stdout == ""
    assert "faxboxes.0.domains" in line  # the key that is missing instead


def test_a_bad_value_names_its_key_and_the_problem(
    tmp_path: Path, db_url: str, config_file: Path
) -> None:
    write_config(config_file, tmp_path, db_url, smtp={"listen": "localhost"})
    assert_error(run_cli("check-config", config=config_file), "smtp.listen", "is not HOST:PORT")


def test_yaml_that_does_not_parse_is_one_paragraph(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("smtp: {listen: [\n", encoding="utf-8")
    assert_error(run_cli("check-config", config=path), f"{path} is not valid YAML")


@pytest.mark.parametrize("args", [["check-config"], ["jobs", "list"], ["providers", "list"]])
def test_a_missing_config_file_says_how_to_give_one(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "nowhere.yaml"

    result = run_cli(*args, config=missing, cwd=tmp_path)

    assert_error(result, f"No configuration file at {missing}.", "Pass -c FILE")


def test_without_c_the_config_comes_from_the_environment_then_the_cwd(
    make_config: MakeConfig, config_file: Path, tmp_path: Path
) -> None:
    make_config()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"FAXBRIDGE_CONFIG": str(config_file)}

    assert run_cli("check-config", cwd=elsewhere, env=env).ok().stdout.startswith("configuration")
    assert_error(run_cli("check-config", cwd=elsewhere), "No configuration file at config.yaml")
    assert run_cli("check-config", cwd=tmp_path).ok().stdout.startswith("configuration OK")


def test_an_unreachable_database_is_one_paragraph_without_the_password(
    make_config: MakeConfig, config_file: Path
) -> None:
    make_config(storage={"url": "postgresql://fax:s3cret@127.0.0.1:9/faxbridge"})

    result = run_cli("jobs", "list", config=config_file)

    line = assert_error(
        result, "Cannot use the store postgresql://fax:***@127.0.0.1:9/faxbridge (storage.url)"
    )
    assert "s3cret" not in line
    assert "sqlalche.me" not in line
    check = run_cli("check-config", config=config_file).ok()
    assert "postgresql://fax:***@127.0.0.1:9/faxbridge" in check.stdout
    assert "s3cret" not in check.stdout


def test_a_bad_option_value_is_a_usage_error_not_a_traceback(
    make_config: MakeConfig, config_file: Path
) -> None:
    make_config()
    result = run_cli("jobs", "list", "--limit", "0", config=config_file)
    assert result.returncode == 2
    assert "argument --limit: '0' is not a positive whole number" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("smtplog", "list", "--since", "yesterday", config=config_file)
    assert "'yesterday' is not an ISO date" in result.stderr


# -- preview ---------------------------------------------------------------------------------
def test_preview_writes_the_fax_with_its_cover_page_and_counts_the_pages(tmp_path: Path) -> None:
    message = tmp_path / "contract.eml"
    message.write_bytes(fax_mail(pdf_pages=2).as_bytes())
    output = tmp_path / "out.pdf"

    result = run_cli("preview", message, "-o", output, cwd=tmp_path).ok()

    assert result.lines == [
        f"{output}: 3 page(s) for faxbox main (cover page included)",
        "  contract.pdf [pdf] used, 2 page(s)",
    ]
    pdf = PdfReader(output)
    assert len(pdf.pages) == 3
    assert "Contract" in pdf.pages[0].extract_text()


def test_preview_follows_the_faxbox_cover_policy_of_the_config(
    make_config: MakeConfig, config_file: Path, tmp_path: Path
) -> None:
    make_config()
    data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    data["faxboxes"][0]["cover_page"] = "never"
    config_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    message = tmp_path / "contract.eml"
    message.write_bytes(fax_mail(pdf_pages=2).as_bytes())
    output = tmp_path / "out.pdf"

    result = run_cli("preview", message, "-o", output, "--faxbox", "main", config=config_file)

    assert result.ok().lines[0] == f"{output}: 2 page(s) for faxbox main"
    assert len(PdfReader(output).pages) == 2


def test_preview_at_fax_resolution_shows_the_pages_as_a_fax_machine_prints_them(
    tmp_path: Path,
) -> None:
    message = tmp_path / "contract.eml"
    message.write_bytes(fax_mail(pdf_pages=1).as_bytes())
    output = tmp_path / "out.pdf"

    result = run_cli("preview", message, "-o", output, "--fax-resolution", cwd=tmp_path).ok()

    assert result.lines[0] == (
        f"{output}: 2 page(s) for faxbox main (cover page included), at fax resolution "
        "(1-bit, 204x196 dpi)"
    )
    pages = PdfReader(output).pages
    assert len(pages) == 2
    for page in pages:
        [scan] = page.images
        assert scan.image is not None
        assert (scan.image.mode, scan.image.width, scan.image.height) == ("1", 1728, 2156)
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (
            610,
            792,
        )


def test_preview_errors_name_the_problem(tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"From: a@example.com\r\nSubject: \r\n\r\n")
    out = tmp_path / "out.pdf"

    assert_error(run_cli("preview", empty, "-o", out, cwd=tmp_path), "554 5.6.0 No faxable content")
    assert not out.exists()
    missing = tmp_path / "missing.eml"
    assert_error(
        run_cli("preview", missing, "-o", out, cwd=tmp_path),
        f"Cannot read {missing}: No such file or directory.",
    )
    message = tmp_path / "ok.eml"
    message.write_bytes(fax_mail().as_bytes())
    assert_error(
        run_cli("preview", message, "-o", out, "--faxbox", "zz", cwd=tmp_path),
        "no faxbox 'zz' (configured: main)",
    )


def test_check_config_refuses_mail_the_bridge_would_send_into_its_own_fax_domain(
    tmp_path: Path, db_url: str, config_file: Path
) -> None:
    write_config(
        config_file,
        tmp_path,
        db_url,
        mail={"from": "Fax Bridge <fax-noreply@fax.localhost>"},
        faxboxes=_main_faxbox(
            inbound={"email_to": ["it@office.localhost", "frontdesk@FAX.localhost"]},
            reports={"cc": ["archive@fax.localhost"]},
        ),
    )

    result = run_cli("check-config", config=config_file)

    assert_error(
        result,
        "mail.from: Fax Bridge <fax-noreply@fax.localhost> is inside the fax domain "
        "fax.localhost (the bridge reads 'fax-noreply' as a fax number and would refuse its "
        "own mail); use an address of your mail domain",
        "faxboxes.0.inbound.email_to.1: frontdesk@FAX.localhost is inside the fax domain "
        "fax.localhost",
        "faxboxes.0.reports.cc.0: archive@fax.localhost is inside the fax domain",
    )
    assert "email_to.0" not in result.stderr
    assert result.stdout == ""


def test_serve_refuses_to_start_with_an_inbound_address_inside_the_fax_domain(
    tmp_path: Path, db_url: str, config_file: Path
) -> None:
    write_config(
        config_file,
        tmp_path,
        db_url,
        faxboxes=_main_faxbox(inbound={"email_to": ["frontdesk@fax.localhost"]}),
    )
    assert_error(
        run_cli("serve", config=config_file),
        "faxboxes.0.inbound.email_to.0: frontdesk@fax.localhost is inside the fax domain",
    )


def test_postmaster_of_the_fax_domain_may_be_mailed_once_it_is_forwarded_somewhere(
    tmp_path: Path, db_url: str, config_file: Path
) -> None:
    box = _main_faxbox(reports={"cc": ["postmaster@fax.localhost"]})
    write_config(config_file, tmp_path, db_url, faxboxes=box)
    assert run_cli("check-config", config=config_file).ok().stderr == ""

    write_config(config_file, tmp_path, db_url, smtp={"postmaster_to": []}, faxboxes=box)
    assert_error(
        run_cli("check-config", config=config_file),
        "faxboxes.0.reports.cc.0: postmaster@fax.localhost is postmaster@ of the fax domain "
        "fax.localhost, which the bridge forwards to smtp.postmaster_to; set "
        "smtp.postmaster_to to an address outside the fax domains",
    )

    write_config(config_file, tmp_path, db_url, smtp={"postmaster_to": ["abuse@fax.localhost"]})
    assert_error(
        run_cli("check-config", config=config_file),
        "smtp.postmaster_to.0: abuse@fax.localhost is inside the fax domain fax.localhost "
        "(mail forwarded there would come straight back)",
    )


def test_check_config_warns_when_postmaster_mail_has_nowhere_to_go(
    make_config: MakeConfig, config_file: Path
) -> None:
    make_config(smtp={"postmaster_to": []})
    result = run_cli("check-config", config=config_file).ok()
    assert result.stderr == (
        "faxbridge: warning: faxboxes.0: postmaster@ and abuse@ of fax.localhost are refused "
        "(550 5.1.1): set smtp.postmaster_to (or the faxbox's admin) to receive them\n"
    )
    make_config(smtp={"postmaster_to": []}, faxboxes=_main_faxbox(admin="it@office.localhost"))
    assert run_cli("check-config", config=config_file).ok().stderr == ""


def test_the_shipped_configs_mail_only_outside_their_fax_domains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.config import load_config
    from bridge.own_mail import own_mail_problems, own_mail_warnings

    root = Path(__file__).resolve().parent.parent
    example = load_config(root / "config.example.yaml")
    assert own_mail_problems(example) == []
    assert own_mail_warnings(example) == []
    assert example.faxboxes[0].inbound.email_to == ["frontdesk@office.localhost"]

    for name, value in {
        "FAXBRIDGE_HOSTNAME": "fax.example.com",
        "FAXBRIDGE_FAX_DOMAIN": "fax.example.com",
        "FAXBRIDGE_MAIL_DOMAIN": "example.com",
        "FAXBRIDGE_PUBLIC_URL": "https://fax.example.com",
        "FAXBRIDGE_RELAY_HOST": "host.docker.internal",
        "POSTGRES_USER": "faxbridge",
        "POSTGRES_PASSWORD": "secret",
        "POSTGRES_HOST": "db",
        "POSTGRES_DB": "faxbridge",
        "FAXBRIDGE_API_TOKEN": "a-long-random-token",
    }.items():
        monkeypatch.setenv(name, value)
    docker = load_config(root / "deploy" / "config.docker.yaml")
    assert own_mail_problems(docker) == []
    assert docker.mail.from_ == "Fax Bridge <fax-noreply@example.com>"
    assert docker.smtp.postmaster_to == ["postmaster@example.com"]
    compose = (root / "deploy" / "docker-compose.yml").read_text()
    assert "FAXBRIDGE_MAIL_DOMAIN: ${FAXBRIDGE_MAIL_DOMAIN:-example.com}" in compose
