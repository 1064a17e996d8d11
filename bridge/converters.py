"""The config's `documents:` section made real: which converters exist, and starting them.

Shared by `serve` (the bridge keeps one managed LibreOffice for its lifetime), the commands that
run the pipeline themselves (`preview`, `explain`), and `check-config`, which warns about
each converter that is missing and says what will be refused because of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bridge.config import Config, DocumentsConfig
from bridge.documents.external import Converters, find_ghostscript
from bridge.documents.office import OfficeService, find_soffice, find_uno_python

log = logging.getLogger(__name__)

OFFICE_KINDS_IN_WORDS = "Word, Excel, PowerPoint, OpenDocument, RTF, CSV and HTML attachments"


def converter_problems(settings: DocumentsConfig) -> list[str]:
    """One sentence per converter this server lacks, naming what is refused for want of it."""
    problems = []
    if settings.libreoffice is None:
        problems.append(
            f"documents.libreoffice is off: {OFFICE_KINDS_IN_WORDS} will be refused, and "
            "HTML-only mail is faxed as plain text"
        )
    elif find_soffice(settings.libreoffice) is None:
        where = "" if settings.libreoffice == "auto" else f" at {settings.libreoffice}"
        problems.append(
            f"no LibreOffice (soffice) found{where}: {OFFICE_KINDS_IN_WORDS} will be refused "
            "(Debian: apt-get install --no-install-recommends libreoffice-core-nogui "
            "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui "
            "python3-uno)"
        )
    elif find_uno_python(settings.uno_python) is None:
        problems.append(
            "LibreOffice is installed but no Python can import its uno module "
            f"(documents.uno_python: {settings.uno_python}): {OFFICE_KINDS_IN_WORDS} will be "
            "refused (Debian: apt-get install python3-uno)"
        )
    if find_ghostscript(settings.ghostscript) is None:
        problems.append(
            "no Ghostscript (gs) found: PostScript and EPS attachments will be refused, and "
            "inbound faxes cannot be mailed as TIFF (Debian: apt-get install ghostscript)"
        )
    return problems


def start_office(settings: DocumentsConfig, *, wait: bool = False) -> OfficeService | None:
    """The managed LibreOffice, starting (in the background unless `wait`); None if absent."""
    soffice = find_soffice(settings.libreoffice) if settings.libreoffice else None
    python = find_uno_python(settings.uno_python) if soffice else None
    if soffice is None or python is None:
        return None
    service = OfficeService(
        soffice,
        python,
        timeout_s=settings.convert_timeout_s,
        processes=settings.office_processes,
    )
    return service.start(wait=wait)


def converters_for(settings: DocumentsConfig, office: OfficeService | None) -> Converters:
    return Converters(
        office=office.endpoint if office is not None else None,
        ghostscript=find_ghostscript(settings.ghostscript),
        unpack_archives=settings.unpack_archives,
    )


def needs_office(raw: bytes) -> bool:
    """Whether the message has anything LibreOffice would convert (cheap: parsing only)."""
    from bridge.documents.detect import LIBREOFFICE, detect, needs
    from bridge.message import parse_message

    message = parse_message(raw)
    if message.body_html:
        return True
    return any(needs(detect(part).kind) == LIBREOFFICE for part in message.parts)


@contextmanager
def running_converters(config: Config, raw: bytes | None = None) -> Iterator[Converters]:
    """For a command that runs the pipeline once: LibreOffice only while it is needed (and,
    given the message, only if it needs it: starting it costs a second or two)."""
    wanted = raw is None or needs_office(raw)
    office = start_office(config.documents, wait=True) if wanted else None
    try:
        yield converters_for(config.documents, office)
    finally:
        if office is not None:
            office.stop()
