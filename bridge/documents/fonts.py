"""TrueType fonts parsed once per process, and cut once to the glyphs mail mostly uses.

fpdf2 reads the whole TTF on every `add_font` (about 40 ms for DejaVu Sans: 6,000 glyph
names and widths) and, when the document is written, subsets it starting from all 6,000
glyphs again (as long once more). A cover page used to pay both for two fonts: ~130 ms of
CPU per recipient. Here each font file is parsed once: every document gets a copy of that
parsed font with fresh per-document state (its glyph subset, its own fontTools object, so
the subsetter, which edits that object in place, never touches the shared one).

When a document is written, a font whose glyphs are all in one of the cuts made once per
process (Western European Latin and punctuation; that and Central European Latin, currency)
is subset from the smallest such cut, made with fpdf2's options but glyph names kept;
anything else (Greek, Cyrillic, symbols) is subset from the whole file as before. The
embedded font is byte for byte the one fpdf2 makes from the whole file.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
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
_PUNCTUATION = (
    range(0x2010, 0x2028),  # dashes, quotes, bullets, "…"
    (0x20AC, 0x2116, 0x2122),  # € № ™
)
# The cuts, smallest first: a document takes the first that holds all its glyphs. Subsetting
# starts by reading every glyph of what it is handed, so a smaller cut is a cheaper cover.
_CUTS: tuple[tuple[Iterable[int], ...], ...] = (
    (range(0x20, 0x7F), range(0xA0, 0x100), *_PUNCTUATION),  # English, Western Europe
    (  # and Central Europe, the rest of the punctuation, currency signs
        range(0x20, 0x7F),
        range(0xA0, 0x180),
        range(0x2000, 0x2070),
        range(0x20A0, 0x20C0),
        (0x2116, 0x2122),
    ),
)


@dataclass(frozen=True)
class _Cut:
    data: bytes
    glyphs: frozenset[str]


@dataclass(frozen=True)
class _FontFile:
    """One TTF file: its bytes, and its cuts (fewer if cutting failed), smallest first."""

    data: bytes
    cuts: tuple[_Cut, ...]


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
    """The finished PDF; a font is subset from the smallest cut holding all its glyphs."""
    for font in pdf.fonts.values():
        if not isinstance(font, TTFFont) or (known := _FILES.get(str(font.ttffile))) is None:
            continue
        needed = set(font.subset.get_all_glyph_names())
        cut = next((cut for cut in known.cuts if needed <= cut.glyphs), None)
        if cut is not None:
            font.ttfont.close()
            font.ttfont = ttLib.TTFont(BytesIO(cut.data), recalcTimestamp=False, lazy=True)
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
    """The font cut to each set of `_CUTS`, subset with fpdf2's options but names kept."""
    options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True, glyph_names=True)
    options.drop_tables += _DROPPED
    cuts = []
    for ranges in _CUTS:
        wanted = {parsed.cmap[code] for codes in ranges for code in codes if code in parsed.cmap}
        try:
            font = ttLib.TTFont(BytesIO(data), recalcTimestamp=False, lazy=True)
            subsetter = ftsubset.Subsetter(options)
            subsetter.populate(glyphs=sorted(wanted))
            subsetter.subset(font)
            out = BytesIO()
            font.save(out)
            glyphs = frozenset(ttLib.TTFont(BytesIO(out.getvalue()), lazy=True).getGlyphOrder())
        except Exception:  # the whole font still works; only this shortcut is lost
            continue
        cuts.append(_Cut(out.getvalue(), glyphs))
    return _FontFile(data, tuple(cuts))
