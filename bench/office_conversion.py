"""The managed LibreOffice: start-up time, memory, and milliseconds per document type.

Starts one OfficeService (as the bridge does), then converts each kind of document the tests
build (python-docx, openpyxl, python-pptx; LibreOffice's own save-as for the older and open
formats) through `prepare_document`, the whole pipeline a mail goes through. Each kind is
converted once cold (its LibreOffice module loads the first time) and then `--runs` times
warm; the warm median is the figure to quote. Also PostScript and EPS through Ghostscript.

    python bench/office_conversion.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.documents import DocumentOptions, prepare_document
from bridge.documents.external import Converters
from bridge.documents.office import OfficeService, find_soffice, find_uno_python
from tests.fixtures_office import (
    csv_text,
    eps,
    order_docx,
    postscript,
    save_as,
    slides_pptx,
    wide_xlsx,
)


def mail(data: bytes, name: str) -> bytes:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["Subject"] = "bench"
    message.set_content("See attached.")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    soffice, python = find_soffice(), find_uno_python()
    if soffice is None or python is None:
        print("LibreOffice and python3-uno are needed (make system-deps)", file=sys.stderr)
        return 1
    began = time.perf_counter()
    with OfficeService(soffice, python, timeout_s=120) as service:
        startup_s = time.perf_counter() - began
        [idle] = service.status()
        endpoint = service.endpoint
        word, sheet, deck = order_docx(), wide_xlsx(), slides_pptx()
        files = {
            "docx": word,
            "doc": save_as(endpoint, word, "docx", "doc"),
            "odt": save_as(endpoint, word, "docx", "odt"),
            "rtf": save_as(endpoint, word, "docx", "rtf"),
            "xlsx": sheet,
            "xls": save_as(endpoint, sheet, "xlsx", "xls"),
            "ods": save_as(endpoint, sheet, "xlsx", "ods"),
            "csv": csv_text(),
            "pptx": deck,
            "ppt": save_as(endpoint, deck, "pptx", "ppt"),
            "odp": save_as(endpoint, deck, "pptx", "odp"),
            "ps": postscript(2),
            "eps": eps(),
        }
        options = DocumentOptions(converters=Converters.found(office=endpoint))
        print(f"LibreOffice start-up: {startup_s * 1000:.0f} ms (helper ready, soffice connected)")
        print(f"soffice RSS idle: {idle['rss_kb'] / 1024:.0f} MB")
        print(f"{'kind':<6}{'pages':>6}{'cold ms':>10}{'warm median ms':>16}")
        for kind, data in files.items():
            raw = mail(data, f"document.{kind}")
            times = []
            pages = 0
            for _ in range(args.runs + 1):
                start = time.perf_counter()
                pages = prepare_document(raw, options).pages
                times.append((time.perf_counter() - start) * 1000)
            cold, warm = times[0], statistics.median(times[1:])
            print(f"{kind:<6}{pages:>6}{cold:>10.0f}{warm:>16.0f}")
        [busy] = service.status()
        print(
            f"soffice RSS after {busy['conversions']} conversions: {busy['rss_kb'] / 1024:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
