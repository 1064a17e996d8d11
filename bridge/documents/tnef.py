"""Outlook's winmail.dat (TNEF): the files inside become parts of their own.

Exchange and Outlook wrap a message's attachments in one `application/ms-tnef` part when the
message is in Rich Text format. `tnefparse` decodes it; before it does, the framing is checked
here (every length and count within the data, a bounded number of objects and nesting levels),
because the library trusts its input: a four-byte count of 4 billion would keep it busy for
hours. Pictures shown inside the text (hidden or OLE attachments) are logos, not documents.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from tnefparse import TNEF  # type: ignore[import-untyped]

from bridge.message import MessagePart, decode_text

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
TNEF_MAGIC = b"\x78\x9f\x3e\x22"

DAMAGED_TNEF = "the Outlook winmail.dat (TNEF) file is damaged and cannot be read"
REASON_UNPACKED = "Outlook winmail.dat (TNEF): unpacked, the files in it are listed after it"
REASON_NO_FILES = "Outlook winmail.dat (TNEF) with only the message formatting, no files"
REASON_PICTURE = "a picture shown inside the Outlook message text (e.g. a signature logo)"
REASON_ITEM = "an Outlook item attached to the message (only its attachments are faxed)"

_MAX_OBJECTS = 256  # per level; a message with 40 attachments has about 250
_MAX_LEVELS = 4  # Outlook items attached inside attached items
_MAPI_PROPS, _RECIPIENTS, _ATTACHMENT = 0x9003, 0x9004, 0x9005
_ATTACH_DATA_OBJ, _ATTACH_METHOD, _MIME_TAG = 0x3701, 0x3705, 0x370E
_CONTENT_ID, _HIDDEN, _ATTACH_OLE = 0x3712, 0x7FFE, 6
_IMESSAGE_SIG = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0048: 16}
_FIXED_SIZES |= dict.fromkeys((0x0005, 0x0006, 0x0007, 0x0014, 0x0040), 8)
_VARIABLE = frozenset({0x0000, 0x000D, 0x001E, 0x001F, 0x0102})


class TnefError(Exception):
    """The winmail.dat cannot be decoded."""


def is_tnef(part: MessagePart) -> bool:
    name = (part.filename or "").lower()
    return part.content_type in TNEF_TYPES or name == "winmail.dat" or _has_magic(part.data)


def unpack(part: MessagePart) -> list[tuple[MessagePart, str | None]]:
    """The files inside, each with the reason it is set aside (None: a document to convert).
    They keep the winmail.dat's place in the message. Raises TnefError."""
    if not _has_magic(part.data):
        raise TnefError(DAMAGED_TNEF)
    try:
        _check(part.data, level=0)
        tnef = TNEF(part.data, do_checksum=False)
        return list(_files(tnef, part, level=0))
    except (TnefError, RecursionError):
        raise
    except Exception as exc:  # anything tnefparse raises on a damaged file
        raise TnefError(DAMAGED_TNEF) from exc


def _files(tnef: Any, parent: MessagePart, level: int) -> Iterator[tuple[MessagePart, str | None]]:
    for attachment in tnef.attachments:
        props = {attr.name: attr for attr in attachment.mapi_attrs}
        data = attachment.data if isinstance(attachment.data, bytes) else b""
        mime = _text(props.get(_MIME_TAG)).lower() or "application/octet-stream"
        part = replace(
            parent,
            filename=_name(attachment),
            content_type=mime if "/" in mime else "application/octet-stream",
            data=data,
            content_id=_text(props.get(_CONTENT_ID)).strip("<>") or None,
            disposition="attachment",
            charset=None,
        )
        embedded = getattr(attachment, "embed", None)
        if embedded is not None:
            yield part, REASON_ITEM
            if level + 1 < _MAX_LEVELS:
                yield from _files(embedded, parent, level + 1)
        elif _value(props.get(_HIDDEN)) is True or _value(props.get(_ATTACH_METHOD)) == _ATTACH_OLE:
            yield part, REASON_PICTURE
        else:
            yield part, None


def _name(attachment: Any) -> str | None:
    try:
        name = str(attachment.long_filename() or "")
    except Exception:  # an 8-bit short name tnefparse cannot decode as UTF-8
        raw = getattr(attachment, "_name", b"")
        name = decode_text(raw, "cp1252") if isinstance(raw, bytes) else str(raw)
    name = "".join(ch for ch in name.replace("\\", "/").split("/")[-1] if ch.isprintable())
    return name.strip()[:255] or None


def _value(attr: Any) -> object:
    try:
        return attr.data if attr is not None else None
    except Exception:
        return None


def _text(attr: Any) -> str:
    value = _value(attr)
    if isinstance(value, bytes):
        value = decode_text(value, "cp1252")
    return str(value).strip("\x00 ") if isinstance(value, str) else ""


def _has_magic(data: bytes) -> bool:
    return data[:4] == TNEF_MAGIC


# --- framing check -------------------------------------------------------------------------


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _check(data: bytes, level: int) -> None:
    """Objects that fill the data exactly, at most _MAX_OBJECTS, MAPI blocks consistent."""
    if level >= _MAX_LEVELS or data[:4] != TNEF_MAGIC:
        raise TnefError(DAMAGED_TNEF)
    offset, objects = 6, 0
    try:
        while offset + 12 < len(data):
            name, length = _u16(data, offset + 1), _u32(data, offset + 5)
            end = offset + 9 + length
            if end + 2 > len(data) or objects >= _MAX_OBJECTS:
                raise TnefError(DAMAGED_TNEF)
            body = data[offset + 9 : end]
            if name in (_MAPI_PROPS, _ATTACHMENT):
                _check_mapi(body, 0, level)
            elif name == _RECIPIENTS:
                rows, at = _u32(body, 0), 4
                if rows > len(body) // 4:
                    raise TnefError(DAMAGED_TNEF)
                for _ in range(rows):
                    at = _check_mapi(body, at, level)
            offset, objects = end + 2, objects + 1
    except struct.error as exc:
        raise TnefError(DAMAGED_TNEF) from exc
    if objects == 0 or offset != len(data):
        raise TnefError(DAMAGED_TNEF)


def _check_mapi(data: bytes, offset: int, level: int) -> int:
    """Walk one MAPI property block the way tnefparse will; return the offset after it.
    A property type tnefparse does not know ends its decoding of the block, and so ours."""
    count, offset = _u32(data, offset), offset + 4
    if count > (len(data) - offset) // 4:
        raise TnefError(DAMAGED_TNEF)
    for _ in range(count):
        kind, name, offset = _u16(data, offset), _u16(data, offset + 2), offset + 4
        if name >= 0x8000:  # a named property: GUID, then a number or a UTF-16 name
            offset += 16
            if _u32(data, offset) == 0:
                offset += 8
            else:
                offset += 8 + _pad4(_u32(data, offset + 4))
        values, multi = 1, bool(kind & 0x1000)
        kind &= ~0x1000
        if multi:
            values, offset = _u32(data, offset), offset + 4
            if values > (len(data) - offset) // 2:
                raise TnefError(DAMAGED_TNEF)
        if kind not in _FIXED_SIZES and kind not in _VARIABLE:
            return len(data)
        for _ in range(values):
            offset = _check_value(data, offset, kind, name, multi=multi, level=level)
        if values % 2 and kind in (0x0002, 0x000B):
            offset += 2
        if offset > len(data):
            raise TnefError(DAMAGED_TNEF)
    return offset


def _check_value(data: bytes, offset: int, kind: int, name: int, *, multi: bool, level: int) -> int:
    if kind in _FIXED_SIZES:
        return offset + _FIXED_SIZES[kind]
    items = 1
    if not multi:
        items, offset = _u32(data, offset), offset + 4
    if items > (len(data) - offset) // 4:
        raise TnefError(DAMAGED_TNEF)
    for _ in range(items):
        length, offset = _u32(data, offset), offset + 4
        end = offset + _pad4(length)
        if end > len(data):
            raise TnefError(DAMAGED_TNEF)
        value = data[offset : offset + length]
        if name == _ATTACH_DATA_OBJ and value.startswith(_IMESSAGE_SIG):
            _check(value[len(_IMESSAGE_SIG) :], level + 1)
        offset = end
    return offset


def _pad4(length: int) -> int:
    return length + (-length % 4)
