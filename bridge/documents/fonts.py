"""TrueType fonts parsed once per process, and cut once to the glyphs mail mostly uses.

fpdf2 reads the whole TTF on every `add_font` (about 40 ms for DejaVu Sans: 6,000 glyph
names and widths) and, when the document is written, subsets it starting from all 6,000
glyphs again (as long once more). A cover page used to pay both for two fonts: ~130 ms of
CPU per recipient. Here each font file is parsed once: every document gets a copy of that
parsed font with fresh per-document state (its glyph subset, its own fontTools object, so
the subsetter, which edits that object in place, never touches the shared one).

When a document is written, a font whose glyphs are all in the "common" cut (Latin,
Latin-1, Latin Extended-A, punctuation, currency) is subset from that cut, which was made
once with the same options and glyph names kept; anything else (Greek, Cyrillic, symbols)
is subset from the whole file as before. The embedded subset holds the same glyphs either
way.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

# What fpdf2 (2.8) drops when it embeds a subset; the common cut drops them too.
_DROPPED = [
    "FFTM",
    "GDEF",
    "GPOS",
    "GSUB",
    "MATH",
    "hdmx",
    "meta",
    "sbix",
    "CBDT",
    "CBLC",
    "EBDT",
    "EBLC",
    "EBSC",
    "SVG ",
    "CPAL",
    "COLR",
]
_COMMON_RANGES = (
    range(0x20, 0x180),  # Basic Latin, Latin-1, Latin Extended-A
    range(0x2000, 0x2070),  # General Punctuation: dashes, quotes, "…"
    range(0x20A0, 0x20C0),  # currency signs
    (0x2116, 0x2122),  # № ™
)


@dataclass(frozen=True)
class _FontFile:
    """One TTF file: its bytes, and its common cut (None if cutting it failed)."""

    data: bytes
    common: bytes | None
    common_glyphs: frozenset[str]


_LOCK = threading.Lock()
_PARSED: dict[tuple[str, str], TTFFont] = {}
_FILES: dict[str, _FontFile] = {}


def add_font(pdf: FPDF, family: str, style: str, path: str) -> None:
    """`pdf.add_font(family, style, path)`, from the parsed font this process keeps."""
    template = _template(path, style)
    if template is None:  # a colour font or another kind fpdf2 treats specially
        pdf.add_font(family, style, path)
        return
    font = copy.copy(template)
    font.i = len(pdf.fonts) + 1
    font.fontkey = f"{family.lower()}{style}"
    font.ttfont = ttLib.TTFont(BytesIO(_FILES[path].data), recalcTimestamp=False, lazy=True)
    font.cw = copy.copy(template.cw)  # a defaultdict: reading a missing width writes it
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    font.subset = SubsetMap(font)
    pdf.fonts[font.fontkey] = font


def output(pdf: FPDF) -> bytes:
    """The finished PDF; fonts that need only common glyphs are subset from the common cut."""
    for font in pdf.fonts.values():
        if not isinstance(font, TTFFont):
            continue
        known = _FILES.get(str(font.ttffile))
        if known is None or known.common is None:
            continue
        if set(font.subset.get_all_glyph_names()) <= known.common_glyphs:
            font.ttfont.close()
            font.ttfont = ttLib.TTFont(BytesIO(known.common), recalcTimestamp=False, lazy=True)
    return bytes(pdf.output())


def release(pdf: FPDF) -> None:
    """Close the fontTools objects of a document that is only measured with, never written
    (fpdf2 closes them when it writes one; a font opened from its file holds that file)."""
    for font in pdf.fonts.values():
        if isinstance(font, TTFFont):
            font.ttfont.close()


def _template(path: str, style: str) -> TTFFont | None:
    with _LOCK:
        key = (path, style)
        if key not in _PARSED:
            scratch = FPDF(unit="pt")
            scratch.add_font("template", style, path)
            [parsed] = scratch.fonts.values()
            assert isinstance(parsed, TTFFont)
            if path not in _FILES:
                _FILES[path] = _cut(Path(path).read_bytes(), parsed)
            parsed.ttfont.close()
            _PARSED[key] = parsed
        template = _PARSED[key]
    if template.color_font is not None or template.is_cff:
        return None
    return template


def _cut(data: bytes, parsed: TTFFont) -> _FontFile:
    """The font cut to the common glyphs, subset with fpdf2's options but names kept."""
    wanted = {
        parsed.cmap[code] for codes in _COMMON_RANGES for code in codes if code in parsed.cmap
    }
    options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True, glyph_names=True)
    options.drop_tables += _DROPPED
    try:
        font = ttLib.TTFont(BytesIO(data), recalcTimestamp=False, lazy=True)
        subsetter = ftsubset.Subsetter(options)
        subsetter.populate(glyphs=sorted(wanted))
        subsetter.subset(font)
        out = BytesIO()
        font.save(out)
        common = out.getvalue()
        glyphs = frozenset(ttLib.TTFont(BytesIO(common), lazy=True).getGlyphOrder())
    except Exception:  # the whole font still works; only the shortcut is lost
        return _FontFile(data, None, frozenset())
    return _FontFile(data, common, glyphs)
