"""Real-world message shapes: each .eml in tests/data/eml becomes what expected.json says.

Outlook (winmail.dat, cid: logos), Apple Mail, Gmail, Thunderbird (RFC 2231), six scanner
families, S/MIME and PGP signed mail, forwarded mail and Canon's split scans. Each case checks
the pages (count, paper size, order), every part's fate and reason, and the cover decision.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bridge.documents import DocumentOptions, PreparedDocument, prepare_document
from bridge.errors import DocumentError, NoFaxableContent
from bridge.models import CoverPolicy
from tests.fixtures_docs import page_contents, page_sizes

EML = Path(__file__).parent / "data" / "eml"
EXPECTED = json.loads((EML / "expected.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = EXPECTED["cases"]
PAPER = {"A4": (595, 842), "letter": (612, 792)}


def options(case: dict[str, Any]) -> DocumentOptions:
    given = dict(case["options"])
    patterns = given.get("ignore_body_patterns", ())
    if isinstance(patterns, str):
        patterns = EXPECTED["pattern_sets"][patterns]
    return DocumentOptions(
        cover_policy=CoverPolicy(given.get("cover_policy", "auto")),
        ignore_body_patterns=tuple(patterns),
        max_pages=given.get("max_pages", 200),
    )


def report_rows(reports: list[dict[str, Any]]) -> list[list[Any]]:
    keys = ("filename", "detected_type", "pages", "used", "reason")
    return [[report[key] for key in keys] for report in reports]


def first_lines(pdf: bytes) -> list[str]:
    return [content.split("\n", 1)[0] for content in page_contents(pdf)]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_message_shape_becomes_the_expected_fax(case: dict[str, Any]) -> None:
    raw = (EML / case["eml"]).read_bytes()
    if "reply" in case:
        with pytest.raises(DocumentError) as caught:
            prepare_document(raw, options(case))
        assert caught.value.reply == case["reply"]
        assert report_rows(caught.value.attachments) == case["attachments"]
        return
    doc = prepare_document(raw, options(case))
    assert doc.pages == case["pages"]
    assert len(page_contents(doc.pdf)) == case["pages"]
    if "page_size" in case:
        width, height = PAPER[case["page_size"]]
        for size in page_sizes(doc.pdf):
            assert abs(size[0] - width) <= 3 and abs(size[1] - height) <= 3, size
    if "pages_show" in case:
        assert first_lines(doc.pdf) == case["pages_show"]
    assert doc.wants_cover is case["cover"]
    if "cover_subject" in case:
        assert doc.cover_subject == case["cover_subject"]
    if "cover_notes" in case:
        assert doc.cover_notes == case["cover_notes"]
    if "attachments" in case:
        assert report_rows([a.as_dict() for a in doc.attachments]) == case["attachments"]
    assert sum(a.pages for a in doc.attachments if a.used) == doc.pages


def test_every_fixture_has_an_expected_result() -> None:
    described = {case["eml"] for case in CASES}
    assert described == {path.name for path in EML.glob("*.eml")}
    assert len({case["name"] for case in CASES}) == len(CASES)


def test_scanner_boilerplate_leaves_no_cover_notes_for_any_scanner() -> None:
    patterns = tuple(EXPECTED["pattern_sets"]["scanner-boilerplate"])
    for path in sorted(EML.glob("scanner-*.eml")):
        doc = prepare_document(path.read_bytes(), DocumentOptions(ignore_body_patterns=patterns))
        assert doc.cover_notes == "", path.name
        never = DocumentOptions(cover_policy=CoverPolicy.NEVER, ignore_body_patterns=patterns)
        assert not prepare_document(path.read_bytes(), never).wants_cover, path.name


def test_boilerplate_patterns_keep_what_a_person_added() -> None:
    raw = (EML / "scanner-xerox-g4-tiff.eml").read_bytes()
    start = b"Please open the attached"
    edited = raw.replace(start, b"Call me back, Kim\r\n\r\n" + start)
    patterns = tuple(EXPECTED["pattern_sets"]["scanner-boilerplate"])
    doc = prepare_document(edited, DocumentOptions(ignore_body_patterns=patterns))
    assert doc.cover_notes == "Call me back, Kim"


def split_pieces() -> list[bytes]:
    """The three Canon pieces, as the forwarded set holds them, each a whole message."""
    raw = (EML / "canon-partial-forwarded-set.eml").read_bytes()
    boundary = b"------------S3tOfThr33P4rtsXyZ0123"
    chunks = raw.split(b"--" + boundary)[2:5]
    return [chunk.split(b"\r\n\r\n", 1)[1] for chunk in chunks]


def forward(*pieces: bytes) -> bytes:
    attached = b"".join(
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + piece + b"\r\n" for piece in pieces
    )
    return (
        b"From: a@example.com\r\nSubject: pieces\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + attached + b"--b--\r\n"
    )


def test_split_scan_pieces_in_any_order_are_put_back_together() -> None:
    first, second, third = split_pieces()
    doc = prepare_document(forward(third, first, second), DocumentOptions())
    assert doc.pages == 3
    assert first_lines(doc.pdf) == ["jpeg", "jpeg", "jpeg"]


def test_split_scan_with_a_piece_missing_is_refused() -> None:
    first, _, third = split_pieces()
    with pytest.raises(NoFaxableContent) as caught:
        prepare_document(forward(first, third), DocumentOptions())
    assert caught.value.reply == (
        "554 5.6.0 No faxable content: the scan was split into 3 messages (message/partial);"
        " set the scanner's maximum e-mail size higher or turn off splitting"
    )


def test_message_sent_as_its_only_piece_is_read_as_the_message() -> None:
    whole = (EML / "forwarded-rfc822.eml").read_bytes()
    head, body = whole.split(b"\r\n\r\n", 1)
    outer = b"From: robin@example.com\r\nSubject: outer\r\n"
    piece = outer + b'Content-Type: message/partial; id="x@y"; number=1; total=1\r\n\r\n'
    doc = prepare_document(piece + head + b"\r\n\r\n" + body, DocumentOptions())
    assert doc.pages == 2
    assert doc.cover_subject == "Fwd: Invoice March"  # the enclosed message's own subject


def test_piece_without_a_number_is_refused_clearly() -> None:
    raw = b'Subject: x\r\nContent-Type: message/partial; id="x"\r\n\r\nJVBERi0x\r\n'
    with pytest.raises(NoFaxableContent) as caught:
        prepare_document(raw, DocumentOptions())
    assert "message/partial" in caught.value.reply


def test_shapes_survive_the_spawned_process_pool() -> None:
    names = ("outlook-winmail-dat.eml", "canon-partial-forwarded-set.eml")
    raws = [(EML / name).read_bytes() for name in names]
    lone = (EML / "canon-partial-1-of-3.eml").read_bytes()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        docs = [pool.submit(prepare_document, raw, DocumentOptions()).result() for raw in raws]
        with pytest.raises(NoFaxableContent):
            pool.submit(prepare_document, lone, DocumentOptions()).result()
    assert [doc.pages for doc in docs] == [2, 3]
    assert all(isinstance(doc, PreparedDocument) for doc in docs)
