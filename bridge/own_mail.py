"""The addresses of a fax domain the bridge delivers itself, and the mail it must never send there.

Behind Postfix, everything for a fax domain comes back to the bridge, which reads the local part
as a fax number. So an inbound fax mailed to `frontdesk@<fax domain>` or a report sent from
`fax-noreply@<fax domain>` is refused by the bridge itself, and the bounce of the bounce is
dropped: the mail vanishes. `postmaster@` and `abuse@` are the exceptions (RFC 5321 §4.5.1,
RFC 2142): every domain takes them, and the bridge forwards them to `smtp.postmaster_to`.
"""

from __future__ import annotations

from email.utils import parseaddr

from bridge.config import Config, FaxboxConfig

# Local parts of every fax domain that are mailboxes, not fax numbers (compared lower-cased).
OWN_LOCAL_PARTS = frozenset({"postmaster", "abuse"})


def is_own_local_part(local: str) -> bool:
    return local.strip().lower() in OWN_LOCAL_PARTS


def postmaster_targets(config: Config, faxbox: FaxboxConfig) -> list[str]:
    """Where postmaster@ / abuse@ of `faxbox`'s domains go: `smtp.postmaster_to`, else the
    faxbox's `admin`; empty when neither is set (the mail is then refused)."""
    if config.smtp.postmaster_to:
        return list(config.smtp.postmaster_to)
    return [faxbox.admin] if faxbox.admin else []


def _fax_domain(config: Config, address: str) -> tuple[str, str] | None:
    """(local part, fax domain) when `address` is inside one of the fax domains."""
    bare = parseaddr(address)[1] or address.strip()
    local, at, domain = bare.rpartition("@")
    if not at or config.faxbox_for_domain(domain) is None:
        return None
    return local, domain.lower().rstrip(".")


def own_mail_problems(config: Config) -> list[str]:
    """Each key whose address would make the bridge mail itself: `serve` and `check-config`
    refuse to start with any."""
    problems: list[str] = []
    postmaster_set = bool(config.smtp.postmaster_to)

    def check(key: str, address: str, *, forwarding: bool = False) -> None:
        found = _fax_domain(config, address)
        if found is None:
            return
        local, domain = found
        if is_own_local_part(local) and not forwarding:
            # Taken by the bridge and forwarded: fine once there is somewhere to forward to.
            if postmaster_set:
                return
            problems.append(
                f"{key}: {address} is {local}@ of the fax domain {domain}, which the bridge "
                "forwards to smtp.postmaster_to; set smtp.postmaster_to to an address outside "
                "the fax domains"
            )
            return
        why = (
            "mail forwarded there would come straight back"
            if forwarding
            else f"the bridge reads {local!r} as a fax number and would refuse its own mail"
        )
        problems.append(
            f"{key}: {address} is inside the fax domain {domain} ({why}); use an address of "
            "your mail domain"
        )

    check("mail.from", config.mail.from_)
    for index, address in enumerate(config.smtp.postmaster_to):
        check(f"smtp.postmaster_to.{index}", address, forwarding=True)
    for index, box in enumerate(config.faxboxes):
        where = f"faxboxes.{index}"
        for number, address in enumerate(box.inbound.email_to):
            check(f"{where}.inbound.email_to.{number}", address)
        for number, address in enumerate(box.reports.cc):
            check(f"{where}.reports.cc.{number}", address)
        if box.admin:
            # Without smtp.postmaster_to the admin is where postmaster@ goes: never back in.
            check(f"{where}.admin", box.admin, forwarding=not postmaster_set)
    return problems


def own_mail_warnings(config: Config) -> list[str]:
    """Faxboxes whose postmaster@ and abuse@ have nowhere to go (they are refused)."""
    return [
        f"faxboxes.{index}: postmaster@ and abuse@ of {', '.join(box.domains)} are refused "
        "(550 5.1.1): set smtp.postmaster_to (or the faxbox's admin) to receive them"
        for index, box in enumerate(config.faxboxes)
        if not postmaster_targets(config, box)
    ]
