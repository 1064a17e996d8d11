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

CONVERTIBLE = frozenset({"pdf", "tiff", "jpeg", "png", "gif", "bmp", "webp", "heic", "text"})
IMAGE_KINDS = frozenset({"tiff", "jpeg", "png", "gif", "bmp", "webp", "heic"})
# Converted by the managed LibreOffice, or by Ghostscript; `needs` says which one.
OFFICE_KINDS = frozenset(
    {"docx", "doc", "odt", "rtf", "xlsx", "xls", "ods", "csv", "pptx", "ppt", "odp", "html"}
)
POSTSCRIPT_KINDS = frozenset({"ps", "eps"})
ARCHIVE_KINDS = frozenset({"zip", "gzip", "rar", "7z", "bzip2", "xz", "tar"})
LIBREOFFICE = "LibreOffice"
GHOSTSCRIPT = "Ghostscript"

NOT_A_DOCUMENT = "is not a PDF, TIFF, image or text file"
DAMAGED_PDF = "the PDF is damaged and cannot be read"
DAMAGED_IMAGE = "the image is damaged and cannot be read"

_CONVERT = "(convert it to PDF)"
# What a kind is called in a sentence: "…" is a Word document.
KIND_NAMES = {
    "docx": "a Word document",
    "doc": "a Word document",
    "odt": "an OpenDocument text",
    "rtf": "a Rich Text document",
    "xlsx": "an Excel spreadsheet",
    "xls": "an Excel spreadsheet",
    "ods": "an OpenDocument spreadsheet",
    "csv": "a CSV spreadsheet",
    "pptx": "a PowerPoint presentation",
    "ppt": "a PowerPoint presentation",
    "odp": "an OpenDocument presentation",
    "html": "a web page",
    "ps": "a PostScript file",
    "eps": "an EPS drawing",
    "heic": "a HEIC photo",
}
_WORDS = {
    **{kind: f"is {name}" for kind, name in KIND_NAMES.items()},
    "pages": "is a Pages document (export it as PDF)",
    "html-as-pdf": "is a web page (print it to PDF)",
    "office": f"is a Microsoft Office document {_CONVERT}",
    "ooxml-encrypted": "is a password-protected Office document",
    "msg": "is an Outlook message file",
    "eml": "is an e-mail message file",
    "zip": "is an archive",
    "gzip": "is an archive",
    "rar": "is an archive",
    "7z": "is an archive",
    "bzip2": "is an archive",
    "xz": "is an archive",
    "tar": "is an archive",
    "svg": f"is an SVG drawing {_CONVERT}",
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
    "dotx": "docx",
    "dot": "doc",
    "xltx": "xlsx",
    "xlt": "xls",
    "potx": "pptx",
    "pps": "ppt",
    "ppsx": "pptx",
    "pptm": "pptx",
    "docm": "docx",
    "xlsm": "xlsx",
    "key": "pages",
    "numbers": "pages",
    "gz": "gzip",
    "tgz": "gzip",
    "bz2": "bzip2",
    "htm": "html",
    "xhtml": "html",
    "eps": "eps",
    "epsf": "eps",
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
    "application/eps": "eps",
    "image/x-eps": "eps",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "image/heif": "heic",
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
    """The type from magic numbers alone, or None.

    Magic at offset 0 wins: a PDF stored uncompressed in a ZIP shows `%PDF-` within the first
    kilobyte, but the file is an archive. `%PDF-` further in is only believed for files that
    start with no known magic at all (junk a scanner put before the header)."""
    head = data[:1024]
    if head.startswith(b"%PDF-"):
        return "pdf"
    kind = _magic_kind(data, head)
    if kind is not None:
        return kind
    if b"%PDF-" in head:
        return "pdf"
    return _text_kind(head)


def _magic_kind(data: bytes, head: bytes) -> str | None:
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
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heic"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(data)
    if head[:4] == b"\xc5\xd0\xd3\xc6":  # DOS EPS binary header (TIFF/WMF preview + PostScript)
        return "eps"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind == "office":
                return _ole2_kind(data)
            if kind == "ps" and b"EPSF-" in head.split(b"\n", 1)[0]:
                return "eps"
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    return None


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc", b"hevx")


def _ole2_kind(data: bytes) -> str:
    """Which program wrote an OLE2 compound file, by the stream names in its directory
    (UTF-16LE). Word's "Encrypt with password" wraps a .docx/.xlsx/.pptx in one of these."""

    def has(name: str) -> bool:
        return name.encode("utf-16-le") in data

    if has("EncryptedPackage"):
        return "ooxml-encrypted"
    if has("__substg1.0_"):
        return "msg"
    for stream, kind in (("WordDocument", "doc"), ("Workbook", "xls"), ("Book", "xls")):
        if has(stream):
            return kind
    if has("PowerPoint Document"):
        return "ppt"
    return "office"


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
                # Read as a stream, never inflated whole: a "mimetype" can be a zip bomb.
                with archive.open("mimetype") as member:
                    mimetype = member.read(100)
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
    """Decide from the content what the part is and whether it can become fax pages.

    Office files, web pages and PostScript are `convertible` here; whether this server has
    the converter they need is the pipeline's question (`needs`)."""
    kind = sniff(part.data)
    if kind in OFFICE_KINDS and encrypted(part.data, kind):
        return Detection(kind, password_reason(kind), fatal=True)
    if kind in CONVERTIBLE or kind in POSTSCRIPT_KINDS or kind in OFFICE_KINDS - {"html"}:
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
    expected = _DECLARED.get(part.content_type) or _DECLARED_EXT.get(extension)
    if kind == "html" and expected is not None:  # a download that went wrong: an error page
        return Detection(kind, f"{name} {_WORDS['html-as-pdf']}")
    if kind == "ooxml-encrypted":  # Office's own encryption: only its password opens it
        kind = named if named in _CONTAINED["zip"] else "office"
        return Detection(kind, password_reason(kind), fatal=True)
    if kind in OFFICE_KINDS and encrypted(part.data, kind):
        return Detection(kind, password_reason(kind), fatal=True)
    if kind in OFFICE_KINDS or kind in POSTSCRIPT_KINDS or kind == "heic":
        return Detection(kind, None)
    if kind is None:
        return Detection(None, f"{name} {NOT_A_DOCUMENT}")
    return Detection(kind, f"{name} {_WORDS.get(kind, NOT_A_DOCUMENT)}")


def encrypted(data: bytes, kind: str) -> bool:
    """Whether an Office file is locked with a password (LibreOffice, run without a person to
    ask, would only fail to open it). OpenDocument: its manifest lists encryption data. Word
    97-2003: the File Information Block's fEncrypted bit. Excel 97-2003: a FILEPASS record
    right after the workbook's BOF. PowerPoint 97-2003: an EncryptedSummary stream."""
    if kind in ("odt", "ods", "odp"):
        try:
            with zipfile.ZipFile(BytesIO(data)) as archive:
                return b"encryption-data" in archive.read("META-INF/manifest.xml")
        except Exception:
            return False
    if kind == "doc":
        for start in range(0, len(data) - 12, 512):  # streams start on sector boundaries
            if data[start : start + 2] == b"\xec\xa5":  # the FIB's wIdent
                return bool(int.from_bytes(data[start + 10 : start + 12], "little") & 0x0100)
        return False
    if kind == "xls":
        bof = data.find(b"\x09\x08\x10\x00\x00\x06\x05\x00")
        return bof >= 0 and data[bof + 20 : bof + 22] == b"\x2f\x00"
    if kind == "ppt":
        return "EncryptedSummary".encode("utf-16-le") in data
    return False


def password_reason(kind: str | None) -> str:
    what = KIND_NAMES.get(kind or "", "an Office document").split(" ", 1)[1]
    return f"the {what} is password-protected (send it without a password, or as PDF)"


def needs(kind: str | None) -> str | None:
    """The outside converter a kind needs (LIBREOFFICE, GHOSTSCRIPT), or None."""
    if kind in OFFICE_KINDS:
        return LIBREOFFICE
    if kind in POSTSCRIPT_KINDS:
        return GHOSTSCRIPT
    return None
