"""Text → PDF pages with fpdf2, and finding a Unicode font to draw them with.

DejaVu covers Latin, Greek and Cyrillic, so a German or Russian e-mail prints as written. If no
TrueType font can be found the core PDF fonts are used and characters they lack become "?":
ugly, but a fax still goes out instead of a crash.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from bridge.documents.fonts import add_font, output, release

LETTER_PT = (612.0, 792.0)
MARGIN_PT = 54.0  # 3/4 inch: clear of what fax machines cut off at the edges
TEXT_SIZE_PT = 10.0

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu",  # Fedora (older), Alpine
    "/usr/share/fonts/dejavu-sans-fonts",  # Fedora
    "/usr/share/fonts/dejavu-sans-mono-fonts",
    "/usr/share/fonts/TTF",  # Arch
    "/usr/local/share/fonts",
    "/usr/local/share/fonts/dejavu",  # FreeBSD
    "/Library/Fonts",
)
_FONT_FILES = {
    "regular": ("DejaVuSans.ttf", "DejaVu Sans:style=Book"),
    "bold": ("DejaVuSans-Bold.ttf", "DejaVu Sans:style=Bold"),
    "mono": ("DejaVuSansMono.ttf", "DejaVu Sans Mono:style=Book"),
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Fonts:
    """Family names registered on one FPDF document; `unicode` False means core fonts."""

    sans: str
    mono: str
    unicode: bool
    fixed_pitch: bool = True  # `mono` really is monospaced, so lines can be wrapped by count

    def clean(self, text: str) -> str:
        """Text the fonts can encode: control characters dropped, and for core fonts
        everything outside Latin-1 replaced, since fpdf2 raises on those."""
        text = _CONTROL.sub("", text)
        if not self.unicode:
            text = text.replace("\u2026", "...").replace("\u2013", "-").replace("\u2014", "-")
            text = text.encode("latin-1", "replace").decode("latin-1")
        return text

    @property
    def ellipsis(self) -> str:
        return "…" if self.unicode else "..."


@cache
def find_font(style: str) -> str | None:
    """A DejaVu TTF for `style` ("regular", "bold", "mono"): known places, then fc-match."""
    filename, pattern = _FONT_FILES[style]
    for folder in _FONT_DIRS:
        path = Path(folder) / filename
        if path.is_file():
            return str(path)
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "--format=%{file}", pattern],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if found.lower().endswith((".ttf", ".otf")) and Path(found).is_file():
        return found
    return None


def new_document(*, sans: bool = True, mono: bool = True) -> tuple[FPDF, Fonts]:
    """A Letter-sized FPDF document with the best fonts this machine has registered. Only
    the families asked for are added; each font file is parsed once per process (`fonts`)."""
    pdf = _blank()
    regular, bold, fixed = find_font("regular"), find_font("bold"), find_font("mono")
    if regular is None:
        return pdf, Fonts(sans="helvetica", mono="courier", unicode=False)
    try:
        if sans:
            add_font(pdf, "sans", "", regular)
            add_font(pdf, "sans", "B", bold or regular)
        if mono:
            add_font(pdf, "mono", "", fixed or regular)
    except Exception:  # an unreadable font file must not cost the fax
        return _blank(), Fonts(sans="helvetica", mono="courier", unicode=False)
    return pdf, Fonts(
        sans="sans" if sans else "mono",
        mono="mono" if mono else "sans",
        unicode=True,
        fixed_pitch=mono and fixed is not None,
    )


def preload_fonts() -> None:
    """Parse the fonts of covers and text pages now (a worker starting), not on a mail."""
    pdf, _ = new_document()
    release(pdf)


def _blank() -> FPDF:
    pdf = FPDF(unit="pt", format="letter")
    pdf.set_margins(MARGIN_PT, MARGIN_PT, MARGIN_PT)
    pdf.set_auto_page_break(True, margin=MARGIN_PT)
    pdf.set_creator("faxbridge")
    return pdf


def wrap(pdf: FPDF, text: str, width: float, line_height: float) -> list[str]:
    """The lines `multi_cell` would draw `text` in, with the current font."""
    lines = pdf.multi_cell(
        w=width, h=line_height, text=text, dry_run=True, output=MethodReturnValue.LINES
    )
    return [str(line) for line in lines] if isinstance(lines, list) else [text]


def fit_lines(pdf: FPDF, fonts: Fonts, text: str, width: float, max_lines: int) -> list[str]:
    """Wrap `text`; if it needs more than `max_lines`, keep those and end the last with "…".
    Only the start of a long text is wrapped: fpdf2 measures every character, and a whole
    e-mail pasted into the notes would take minutes."""
    limit = max(max_lines, 1) * _MAX_CHARS_PER_LINE
    if len(text) <= limit and "\n" not in text:
        room = width - 2 * pdf.c_margin  # what multi_cell leaves for the text
        if pdf.get_string_width(text) < room * _PLAINLY_FITS:
            return [text]  # one line, without fpdf2's line breaking (most of a cover's layout)
    lines = wrap(pdf, text[:limit], width, pdf.font_size * 1.3)
    if len(lines) <= max_lines and len(text) <= limit:
        return lines
    kept = lines[: max(max_lines, 1)]
    last = kept[-1].rstrip()
    while last and pdf.get_string_width(last + fonts.ellipsis) > width:
        last = last[:-1]
    kept[-1] = last.rstrip() + fonts.ellipsis
    return kept


def text_to_pdf(text: str) -> bytes:
    """Plain text as Letter pages: a monospaced font keeps columns aligned, long lines wrap,
    form feeds start a new page, as many pages as it takes."""
    pdf, fonts = new_document(sans=False)
    pdf.set_font(fonts.mono, size=TEXT_SIZE_PT)
    width = LETTER_PT[0] - 2 * MARGIN_PT
    for body in text_chunks(text, fonts):
        pdf.add_page()
        if not body.strip():
            continue
        if not fonts.fixed_pitch:
            pdf.multi_cell(w=width, h=_LINE_HEIGHT_PT, text=body, align="L")
            continue
        # fpdf2's own line breaking measures every character again and again: minutes for a
        # long log file. With a fixed pitch, counting characters is exact and linear.
        for piece in wrap_fixed_lines(body, text_columns(pdf)):
            pdf.cell(w=width, h=_LINE_HEIGHT_PT, text=piece, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return output(pdf)


def text_pages(text: str) -> int | None:
    """The pages `text_to_pdf` will make, counted without drawing them (None if the font is
    not fixed-pitch), so a 20 MB log file is refused as too long before it is typeset."""
    fonts, columns = _text_metrics()
    if not fonts.fixed_pitch:
        return None
    per_page = int((LETTER_PT[1] - 2 * MARGIN_PT) // _LINE_HEIGHT_PT)
    pages = 0
    for body in text_chunks(text, fonts):
        lines = len(wrap_fixed_lines(body, columns)) if body.strip() else 0
        pages += max(1, -(-lines // per_page))
    return pages


@cache
def _text_metrics() -> tuple[Fonts, int]:
    """The fonts text pages get and how many characters a line holds (measured once)."""
    pdf, fonts = new_document(sans=False)
    pdf.set_font(fonts.mono, size=TEXT_SIZE_PT)
    columns = text_columns(pdf)
    release(pdf)
    return fonts, columns


_LINE_HEIGHT_PT = TEXT_SIZE_PT * 1.25
TEXT_LINE_HEIGHT_PT = _LINE_HEIGHT_PT
_MAX_CHARS_PER_LINE = 300  # more than any line of a Letter page holds at a readable size
_PLAINLY_FITS = 0.98  # a text this much narrower than the line is one line, however it breaks


def text_chunks(text: str, fonts: Fonts) -> list[str]:
    """The text of each page run (form feeds separate them), as it will be drawn."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [
        fonts.clean("\n".join(line.expandtabs(8).rstrip() for line in chunk.split("\n")))
        for chunk in text.split("\f")
    ]


def text_columns(pdf: FPDF) -> int:
    return max(int((LETTER_PT[0] - 2 * MARGIN_PT) // pdf.get_string_width("M")), 10)


def wrap_fixed_lines(body: str, columns: int) -> list[str]:
    return [piece for line in body.split("\n") for piece in _wrap_fixed(line, columns)]


def _wrap_fixed(line: str, columns: int) -> list[str]:
    """Break a line at spaces to at most `columns` characters; cut words longer than that."""
    pieces: list[str] = []
    start = 0
    while len(line) - start > columns:
        cut = line.rfind(" ", start, start + columns + 1)
        if cut <= start or not line[start:cut].strip():
            pieces.append(line[start : start + columns])
            start += columns
        else:
            pieces.append(line[start:cut].rstrip())
            start = cut + 1
    pieces.append(line[start:])
    return pieces
