"""What a part really is, judged by its bytes: scanners send everything as octet-stream.

The declared type and the file name are only used to decide whether something is text (a
text file has no magic number) and to name a refused file the way its sender knows it
("a Word document"), so the reply tells them what to do.
"""

from __future__ import annotations

import unicodedata
import zipfile
from dataclasses import dataclass
from io import BytesIO

from bridge.message import MessagePart, decode_text

CONVERTIBLE = frozenset({"pdf", "tiff", "jpeg", "png", "gif", "bmp", "webp", "text"})
IMAGE_KINDS = frozenset({"tiff", "jpeg", "png", "gif", "bmp", "webp"})

NOT_A_DOCUMENT = "is not a PDF, TIFF, image or text file"
DAMAGED_PDF = "the PDF is damaged and cannot be read"
DAMAGED_IMAGE = "the image is damaged and cannot be read"

_CONVERT = "(convert it to PDF)"
_WORDS = {
    "docx": f"is a Word document {_CONVERT}",
    "doc": f"is a Word document {_CONVERT}",
    "odt": f"is an OpenDocument text {_CONVERT}",
    "rtf": f"is a Rich Text document {_CONVERT}",
    "pages": "is a Pages document (export it as PDF)",
    "xlsx": f"is an Excel spreadsheet {_CONVERT}",
    "xls": f"is an Excel spreadsheet {_CONVERT}",
    "ods": f"is an OpenDocument spreadsheet {_CONVERT}",
    "csv": f"is a CSV spreadsheet {_CONVERT}",
    "pptx": f"is a PowerPoint presentation {_CONVERT}",
    "ppt": f"is a PowerPoint presentation {_CONVERT}",
    "odp": f"is an OpenDocument presentation {_CONVERT}",
    "office": f"is a Microsoft Office document {_CONVERT}",
    "msg": "is an Outlook message file",
    "eml": "is an e-mail message file",
    "zip": "is an archive",
    "gzip": "is an archive",
    "rar": "is an archive",
    "7z": "is an archive",
    "bzip2": "is an archive",
    "xz": "is an archive",
    "tar": "is an archive",
    "heic": "is a HEIC photo (send it as JPEG or PDF)",
    "svg": f"is an SVG drawing {_CONVERT}",
    "ps": f"is a PostScript file {_CONVERT}",
    "html": "is a web page (print it to PDF)",
    "ics": "is a calendar invitation",
    "vcf": "is a contact card",
    "pgp": "is PGP-encrypted (send it unencrypted)",
    "smime": "is an S/MIME encrypted or signed message (send it unencrypted)",
    "tnef": "is an Outlook winmail.dat (TNEF) file",
    "audio": "is a sound file",
    "video": "is a video",
}
_EXTENSIONS = {
    **{ext: ext for ext in ("docx", "doc", "odt", "rtf", "pages", "xlsx", "xls", "ods", "csv")},
    **{ext: ext for ext in ("pptx", "ppt", "odp", "msg", "eml", "zip", "rar", "7z", "tar")},
    **{ext: ext for ext in ("svg", "ps", "html", "ics", "vcf", "heic")},
    "docm": "docx",
    "xlsm": "xlsx",
    "key": "pages",
    "numbers": "pages",
    "gz": "gzip",
    "tgz": "gzip",
    "bz2": "bzip2",
    "htm": "html",
    "eps": "ps",
    "heif": "heic",
    "p7m": "smime",
    "asc": "pgp",
    "gpg": "pgp",
}
_CONTENT_TYPES = {
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "text/csv": "csv",
    "text/html": "html",
    "text/calendar": "ics",
    "text/vcard": "vcf",
    "text/x-vcard": "vcf",
    "application/zip": "zip",
    "application/postscript": "ps",
    "application/pkcs7-mime": "smime",
    "application/x-pkcs7-mime": "smime",
    "image/heic": "heic",
    "image/svg+xml": "svg",
}
# Declared types and extensions whose content we would recognise: if we do not, it is broken.
_DECLARED = {
    "application/pdf": "pdf",
    "image/tiff": "tiff",
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
}
# What the name may say a zip or an OLE2 compound file really is.
_CONTAINED = {
    "zip": frozenset({"docx", "xlsx", "pptx", "odt", "ods", "odp", "pages"}),
    "office": frozenset({"doc", "xls", "ppt", "msg"}),
}
_DECLARED_EXT = {"pdf": "pdf", "tif": "tiff", "tiff": "tiff", "jpg": "jpeg", "jpeg": "jpeg"}
_DECLARED_EXT |= {"png": "png", "gif": "gif"}


@dataclass(frozen=True)
class Detection:
    kind: str | None  # short name for the smtplog: "pdf", "docx", "zip", … or None
    reason: str | None  # why it cannot be faxed (a phrase naming the part), None if it can
    fatal: bool = False  # the sender clearly meant it as a document, but it is broken

    @property
    def convertible(self) -> bool:
        return self.reason is None


def label(part: MessagePart) -> str:
    """How replies name a part: its file name in quotes, else what it is."""
    if part.filename:
        return '"' + "".join(c if c.isprintable() else "?" for c in part.filename) + '"'
    return f"an unnamed {part.content_type} part"


def sniff(data: bytes) -> str | None:
    """The type from magic numbers alone, or None."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 18 and head[14] in (12, 40, 52, 56, 108, 124):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "heic"
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(data)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    return _text_kind(head)


_MAGIC = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "office"),
    (b"{\\rtf", "rtf"),
    (b"\x1f\x8b", "gzip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"%!PS", "ps"),
    (b"\x78\x9f\x3e\x22", "tnef"),
)


def _zip_kind(data: bytes) -> str:
    """Office files are zip archives; their member names say which application made them."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100]
                for suffix, kind in ((b"text", "odt"), (b"spreadsheet", "ods")):
                    if mimetype.endswith(suffix):
                        return kind
                if mimetype.endswith(b"presentation"):
                    return "odp"
    except Exception:
        return "zip"
    for prefix, kind in (("word/", "docx"), ("xl/", "xlsx"), ("ppt/", "pptx")):
        if any(name.startswith(prefix) for name in names):
            return kind
    return "zip"


def _text_kind(head: bytes) -> str | None:
    start = head.lstrip()[:64].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return "html"
    if start.startswith(b"-----begin pgp message"):  # signed-only text stays readable text
        return "pgp"
    if start.startswith(b"begin:vcalendar"):
        return "ics"
    if start.startswith(b"begin:vcard"):
        return "vcf"
    return None


def text_of(part: MessagePart) -> str | None:
    """The part as text if it is text a person wrote (no NULs, hardly any control bytes)."""
    text = decode_text(part.data, part.charset)
    if "\x00" in text:
        return None
    sample = text[:65536]  # enough to judge; a whole 20 MB log would take seconds
    odd = sum(
        1
        for ch in sample
        if (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\x1b") or ch == "\ufffd"
    )
    return text if odd <= max(2, len(sample) // 50) else None


def detect(part: MessagePart) -> Detection:
    """Decide from the content what the part is and whether it can become fax pages."""
    kind = sniff(part.data)
    if kind in CONVERTIBLE:
        return Detection(kind, None)
    name_parts = (part.filename or "").rsplit(".", 1)
    extension = name_parts[1].lower() if len(name_parts) == 2 else ""
    textual = part.content_type == "text/plain" or extension == "txt"
    if kind in (None, "html", "ics", "vcf") and textual and text_of(part) is not None:
        return Detection("text", None)
    name = label(part)
    named = _EXTENSIONS.get(extension)
    if kind in ("zip", "office") and named in _CONTAINED.get(kind, ()):
        kind = named  # a damaged .docx is still best called a Word document
    if kind is None:
        kind = named or _CONTENT_TYPES.get(part.content_type)
        if kind is None and part.content_type.split("/")[0] in ("audio", "video"):
            kind = part.content_type.split("/")[0]
        expected = _DECLARED.get(part.content_type) or _DECLARED_EXT.get(extension)
        if kind is None and expected is not None:
            damaged = DAMAGED_PDF if expected == "pdf" else DAMAGED_IMAGE
            return Detection(expected, damaged, fatal=True)
    if kind is None:
        return Detection(None, f"{name} {NOT_A_DOCUMENT}")
    return Detection(kind, f"{name} {_WORDS.get(kind, NOT_A_DOCUMENT)}")
