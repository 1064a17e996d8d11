"""A private Postfix for tests: its own config, queue and mailboxes in a temporary directory.

The system's Postfix is neither used nor changed. Mail for the fax domain goes to the bridge
through a transport map (as deploy/postfix says); mail for `office.test` lands in Maildirs the
test reads, standing in for the office's own mail server.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTMAP = "/usr/sbin/postmap"
POSTCONF = "/usr/sbin/postconf"
MASTER_PROTO = Path("/etc/postfix/master.cf.proto")
OFFICE_DOMAIN = "office.test"
MAILBOX_UID = 65534  # nobody: virtual(8) never delivers as root


def master_cf(port: int) -> str:
    """Debian's master.cf with no chroot (the queue dir has no copies of /etc) and the SMTP
    listener on a port of the test's choosing."""
    lines = []
    for line in MASTER_PROTO.read_text().splitlines():
        fields = line.split()
        if line[:1] not in ("", "#", " ", "\t") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{port}"
            fields[4] = "n"
            line = "  ".join(fields[:8]) + (" " + " ".join(fields[8:]) if fields[8:] else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


RECIPE = Path(__file__).resolve().parent.parent / "deploy" / "postfix"
RECIPE_DOMAIN = "fax.example.com"


def read_main_cf(path: Path) -> dict[str, str]:
    """`name = value` settings of a main.cf (continuation lines start with white space)."""
    settings: dict[str, str] = {}
    name = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and name is not None:
            settings[name] += " " + line.strip()
            continue
        name, _, value = (part.strip() for part in line.partition("="))
        settings[name] = value
    return settings


def recipe_settings(root: Path, fax_domain: str, bridge_port: int) -> dict[str, str]:
    """deploy/postfix/main.cf and ./transport for this test's domain and bridge port (the map
    is written here; start_postfix runs `postmap` on it, as the recipe says)."""
    settings = {
        name: value.replace(RECIPE_DOMAIN, fax_domain)
        for name, value in read_main_cf(RECIPE / "main.cf").items()
    }
    transport = (RECIPE / "transport").read_text().replace(RECIPE_DOMAIN, fax_domain)
    transport = transport.replace("[127.0.0.1]:2525", f"[127.0.0.1]:{bridge_port}")
    (root / "etc" / "transport").write_text(transport)
    # postmap reads main.cf: run it after the test's main.cf is written (start_postfix does).
    settings["transport_maps"] = f"hash:{root}/etc/transport"
    return settings


def postmap(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [POSTMAP, "-c", str(config_dir), *args], capture_output=True, text=True, timeout=30
    )


def main_cf(
    root: Path,
    fax_domain: str,
    bridge_port: int,
    mailboxes: list[str],
    extra: dict[str, str] | None = None,
) -> str:
    """The test's main.cf; `extra` settings replace its own (the recipe's, say)."""
    boxes = ", ".join(f"{name}@{OFFICE_DOMAIN}={OFFICE_DOMAIN}/{name}/" for name in mailboxes)
    own = f"""\
compatibility_level = 3.6
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
disable_dns_lookups = yes
smtp_dns_support_level = disabled
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
relayhost =
relay_domains = {fax_domain}
transport_maps = inline:{{ {fax_domain}=smtp:[127.0.0.1]:{bridge_port} }}
virtual_mailbox_domains = {OFFICE_DOMAIN}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = inline:{{ {boxes} }}
virtual_uid_maps = static:{MAILBOX_UID}
virtual_gid_maps = static:{MAILBOX_UID}
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
unverified_recipient_reject_code = 550
notify_classes = 2bounce, resource, software
2bounce_notice_recipient = doublebounce@{OFFICE_DOMAIN}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
address_verify_poll_delay = 1s
"""
    pairs = (line.partition("=") for line in own.splitlines())
    settings = {name.strip(): value.strip() for name, _, value in pairs}
    settings.update(extra or {})
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


@dataclass
class PostfixDaemon:
    """One running Postfix; `stop()` ends it and removes its directory."""

    root: Path
    port: int

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    # Where the test's mail clients connect from: outside mynetworks (only the bridge, on
    # 127.0.0.1, is in it), like a sender on the Internet.
    client_address = ("127.0.0.2", 0)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def queue(self) -> str:
        """`postqueue -p`: "Mail queue is empty" or the listing."""
        done = subprocess.run(
            [POSTQUEUE, "-c", str(self.config_dir), "-p"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return (done.stdout + done.stderr).strip()

    def flush(self) -> None:
        subprocess.run([POSTQUEUE, "-c", str(self.config_dir), "-f"], timeout=30, check=False)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def mailbox(self, name: str) -> list[EmailMessage]:
        """Every message delivered to `name@office.test`, oldest first."""
        new = self.root / "mail" / OFFICE_DOMAIN / name / "new"
        if not new.is_dir():
            return []
        messages = []
        for path in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            messages.append(parsed)
        return messages

    def stop(self) -> None:
        if self.run("stop").returncode != 0:
            self.run("abort")
        shutil.rmtree(self.root, ignore_errors=True)


class PostfixUnavailable(Exception):
    """Postfix cannot run here (not installed, not root, or `postfix check` refuses)."""


def start_postfix(
    port: int, fax_domain: str, bridge_port: int, mailboxes: list[str], recipe: bool = False
) -> PostfixDaemon:
    """Write the config, let `postfix check` create the queue, start the daemon. `recipe`:
    with deploy/postfix's settings (recipient verification, its transport map) on top."""
    if not os.path.exists(POSTFIX) or not MASTER_PROTO.exists():
        raise PostfixUnavailable("Debian's postfix package is not installed")
    if os.geteuid() != 0:
        raise PostfixUnavailable("Postfix's master must start as root")
    # Outside pytest's tmp dir: that one is 0700, and Postfix's daemons run as postfix and
    # deliver as nobody, who must be able to reach their directories.
    root = Path(tempfile.mkdtemp(prefix="faxbridge-postfix-"))
    root.chmod(0o755)
    (root / "etc").mkdir()
    (root / "mail").mkdir()
    os.chown(root / "mail", MAILBOX_UID, MAILBOX_UID)
    (root / "queue").mkdir()  # `postfix check` fills it in, owned as Postfix wants
    (root / "data").mkdir(mode=0o700)
    postfix_user = pwd.getpwnam("postfix")
    os.chown(root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
    extra = recipe_settings(root, fax_domain, bridge_port) if recipe else None
    (root / "etc" / "main.cf").write_text(main_cf(root, fax_domain, bridge_port, mailboxes, extra))
    (root / "etc" / "master.cf").write_text(master_cf(port))
    if recipe:
        made = postmap(root / "etc", str(root / "etc" / "transport"))
        if made.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise PostfixUnavailable(f"postmap failed: {made.stderr.strip()}")
    daemon = PostfixDaemon(root, port)
    for step in ("check", "start"):
        done = daemon.run(step)
        if done.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise PostfixUnavailable(
                f"postfix {step} failed: {(done.stdout + done.stderr).strip()}"
            )
    return daemon
