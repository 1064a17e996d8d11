"""The two mails of the throughput benchmark, made at run time (deterministic: seeded noise).

- "small": a 1-page scanned PDF (a CCITT G4 page at 200 dpi, as office scanners write it)
  with a line of text: about 13.6 KB on the wire;
- "large": 10 grey JPEG pages (A4, 200 dpi, paper grain and text bars, quality 60), one
  attachment each, as a phone scanning app sends them: about 3.8 MB.

Neither carries a Message-ID: every copy smtp-source sends is a new message to the bridge
(a repeated Message-ID within `smtp.duplicate_window` would be answered "Already queued").
LF line ends: `smtp-source -F` appends CRLF to each line it reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from io import BytesIO
from pathlib import Path

import img2pdf
from PIL import Image, ImageDraw, ImageFont

SENDER = "bench@example.com"
RECIPIENT = "12125550123@fax.localhost"
SMALL_ROWS, LARGE_ROWS, GRAIN = 7, 18, 14  # 13.6 kB and 3.8 MB on the wire
_DPI = 200
_A4 = (round(8.27 * _DPI), round(11.69 * _DPI))


@dataclass(frozen=True)
class Mail:
    name: str
    label: str  # for the table
    path: Path
    size: int


def _sheet(mode: str, number: int, rows: int, grain: int = 0) -> Image.Image:
    page = Image.new(mode, _A4, 1 if mode == "1" else 255)
    if grain:
        noise = random.Random(number).randbytes(_A4[0] * _A4[1])
        grey = Image.frombytes("L", _A4, noise).point(lambda v: 255 - (v * grain) // 255)
        page.paste(grey)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    words = random.Random(-number)
    draw.text((_DPI // 2, _DPI // 2), f"faxbridge benchmark, page {number}", fill=0, font=font)
    for row in range(rows):
        line = " ".join(
            "".join(words.choice("etaoinshrdlucmfwyp") for _ in range(words.randint(2, 9)))
            for _ in range(13)
        )
        draw.text((_DPI // 2, _DPI + row * 36), line, fill=0, font=font)
    return page


def scanned_pdf() -> bytes:
    """One CCITT G4 page in a PDF, as a scanner's "scan to e-mail" writes it."""
    tiff = BytesIO()
    _sheet("1", 1, rows=SMALL_ROWS).save(
        tiff, format="TIFF", compression="group4", dpi=(_DPI, _DPI)
    )
    pdf = img2pdf.convert([tiff.getvalue()], nodate=True, rotation=img2pdf.Rotation.none)
    assert isinstance(pdf, bytes)
    return pdf


def grey_jpeg(number: int) -> bytes:
    out = BytesIO()
    _sheet("L", number, rows=LARGE_ROWS, grain=GRAIN).save(
        out, format="JPEG", quality=60, dpi=(_DPI, _DPI)
    )
    return out.getvalue()


def _envelope(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Benchmark <{SENDER}>"
    message["To"] = RECIPIENT
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message.set_content("Please fax the attached scan.\n")
    return message


def write_mails(folder: Path) -> dict[str, Mail]:
    small = _envelope("Scan, 1 page")
    small.add_attachment(scanned_pdf(), maintype="application", subtype="pdf", filename="scan.pdf")
    large = _envelope("Scan, 10 pages")
    for number in range(1, 11):
        large.add_attachment(
            grey_jpeg(number), maintype="image", subtype="jpeg", filename=f"page{number:02d}.jpg"
        )
    mails = {}
    for name, message, what in (
        ("small", small, "1 scanned page (PDF)"),
        ("large", large, "10 grey JPEG pages"),
    ):
        path = folder / f"{name}.eml"
        data = message.as_bytes()  # compat32 joins lines with "\n"
        path.write_bytes(data)
        wire = len(data) + data.count(b"\n")  # CRLF on the wire
        shown = f"{wire / 1e6:.1f} MB" if wire >= 1e6 else f"{wire / 1e3:.1f} kB"
        mails[name] = Mail(name, f"{shown}, {what}", path, wire)
    return mails
