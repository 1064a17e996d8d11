"""ZIP attachments, unpacked one level deep when an admin allows it (`documents.unpack_archives`).

Off by default: an archive may hold anything, and its sender cannot see what a fax of it would
look like. When on, each file inside becomes a part of its own, in the archive's place, and
meets the same limits as any attachment: the files' total unpacked size is held to the
message size limit (a ZIP bomb is refused before anything is inflated), their number to the
message's part limit, and archives inside the archive are not opened.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import replace
from io import BytesIO

from bridge.message import MessagePart
from bridge.message.tree import MAX_LEAVES

DAMAGED_ZIP = "the ZIP archive is damaged and cannot be read"
ENCRYPTED_ZIP = "the ZIP archive is password-protected (send the files themselves)"
EMPTY_ZIP = "ZIP archive without files"
REASON_UNPACKED = "ZIP archive: unpacked, the files in it are listed after it"
REASON_NESTED = "an archive inside an archive (only one level is unpacked)"
ONLY_ZIP = "is an archive of a kind that is not unpacked (only ZIP archives are)"
NOT_UNPACKED = "is an archive (archives are not unpacked here; attach the files themselves)"


class ArchiveError(Exception):
    """The archive as a whole cannot be used; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unpack_zip(part: MessagePart, max_bytes: int) -> list[MessagePart]:
    """The files inside, in archive order, each named by its own file name. Raises ArchiveError."""
    try:
        archive = zipfile.ZipFile(BytesIO(part.data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(DAMAGED_ZIP) from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if any(m.flag_bits & 0x1 for m in members):
            raise ArchiveError(ENCRYPTED_ZIP)
        if len(members) > MAX_LEAVES:
            raise ArchiveError(f"the ZIP archive holds more than {MAX_LEAVES} files")
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise ArchiveError(
                f"the ZIP archive unpacks to {total} bytes; the limit is {max_bytes} bytes"
            )
        files = []
        for member in members:
            name = posixpath.basename(member.filename.replace("\\", "/"))
            if name.startswith(("._", ".DS_Store")) or "__MACOSX/" in member.filename:
                continue  # macOS resource forks, not files anyone chose to send
            try:
                data = _read(archive, member, max_bytes)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
                raise ArchiveError(DAMAGED_ZIP) from exc
            files.append(
                replace(
                    part,
                    filename=name or None,
                    content_type="application/octet-stream",
                    data=data,
                    content_id=None,
                    charset=None,
                )
            )
    if not files:
        raise ArchiveError(EMPTY_ZIP)
    return files


def _read(archive: zipfile.ZipFile, member: zipfile.ZipInfo, max_bytes: int) -> bytes:
    """The member's bytes, never more than its declared size (a lying header is damage)."""
    with archive.open(member) as stream:
        data = stream.read(min(member.file_size, max_bytes) + 1)
    if len(data) > member.file_size:
        raise ValueError("member larger than declared")
    return data
