"""Property tests of message → documents: whatever arrives ends in a PreparedDocument or a
DocumentError carrying one clear SMTP reply line, never in any other exception.

Inputs: arbitrary bytes, MIME trees built from odd parts (every transfer encoding, broken
boundaries, real and damaged documents, winmail.dat, split-message pieces), the real-world
fixtures of tests/data/eml with bytes flipped, cut, dropped and repeated, and real documents
mutated inside a message. Derandomized, so CI runs the same examples every time; set
FAXBRIDGE_PROPERTY_SCALE=20 (and FAXBRIDGE_PROPERTY_RANDOM=1 for fresh examples) to soak.
"""

from __future__ import annotations

import base64
import os
import quopri
import re
from io import BytesIO
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from pypdf import PdfReader

from bridge.documents import DocumentOptions, PreparedDocument, prepare_document
from bridge.errors import DocumentError
from tests.fixtures_docs import TnefFile, document_pdf, jpeg, png_with_alpha, scan_tiff, tnef

SCALE = float(os.environ.get("FAXBRIDGE_PROPERTY_SCALE", "1"))
PROPERTY = settings(
    derandomize=not os.environ.get("FAXBRIDGE_PROPERTY_RANDOM"),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OPTIONS = DocumentOptions(max_pages=50, ignore_body_patterns=(r"^Scanned by .*$",))
REPLY = re.compile(r"(554 5\.6\.[015]|552 5\.3\.4|451 4\.3\.0) [ -~]+")
EML = sorted((Path(__file__).parent / "data" / "eml").glob("*.eml"))
FIXTURES = {path.name: path.read_bytes() for path in EML}


def examples(count: int) -> int:
    return max(1, int(count * SCALE))


def check(raw: bytes) -> PreparedDocument | DocumentError:
    """The property itself: a fax or one clear refusal, and either one consistent."""
    try:
        doc = prepare_document(raw, OPTIONS)
    except DocumentError as error:
        assert REPLY.fullmatch(error.reply), error.reply
        assert len(error.reply) <= 400
        for report in error.attachments:
            assert set(report) >= {"filename", "content_type", "used", "reason"}
        label("refused: " + re.sub(r'"[^"]*"', '"…"', error.reply)[10:60])
        return error
    on_cover = 1 if doc.cover_text is not None else 0  # a text-only mail printed on its cover
    assert 1 <= doc.pages + on_cover <= OPTIONS.max_pages
    if doc.pages:
        assert len(PdfReader(BytesIO(doc.pdf)).pages) == doc.pages
    else:
        assert doc.pdf == b""
    assert sum(a.pages for a in doc.attachments if a.used) == doc.pages + on_cover
    assert all(a.reason is None for a in doc.attachments if a.used)
    assert all(a.reason for a in doc.attachments if not a.used)
    used = sorted({a.detected_type or "?" for a in doc.attachments if a.used})
    label(f"faxed: {', '.join(used)}")
    return doc


def label(outcome: str) -> None:
    """Tally outcomes in --hypothesis-show-statistics, so one sees what the inputs reached."""
    if currently_in_test_context():
        event(outcome)


# --- arbitrary bytes -------------------------------------------------------------------------


@settings(PROPERTY, max_examples=examples(300))
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


HEADER_NAMES = [
    "Subject",
    "From",
    "To",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "Auto-Submitted",
    "X-Junk",
]


@settings(PROPERTY, max_examples=examples(200))
@given(
    st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.binary(max_size=200)), max_size=8),
    st.binary(max_size=2048),
)
def test_arbitrary_headers_and_body(headers: list[tuple[str, bytes]], body: bytes) -> None:
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    check(head + b"\r\n" + body)


# --- MIME trees of odd parts -----------------------------------------------------------------

PDF = document_pdf("Property", 2)
PAYLOADS = {
    "pdf": PDF,
    "pdf-cut": PDF[: len(PDF) // 2],
    "tiff": scan_tiff(["p1", "p2"], dpi=50),
    "jpeg": jpeg((200, 150)),
    "png": png_with_alpha((60, 40)),
    "tnef": tnef([TnefFile("in.pdf", PDF, mime="application/pdf")]),
    "text": "Grüße, see the fax.\n".encode(),
    "empty": b"",
    "junk": bytes(range(256)),
}
CONTENT_TYPES = [
    "application/pdf",
    "application/octet-stream",
    "image/tiff",
    "image/jpeg",
    "image/png",
    "text/plain; charset=utf-8",
    "text/html",
    "application/ms-tnef",
    "application/pkcs7-signature",
    'message/partial; id="p"; number=1; total=2',
    "message/external-body",
    "x/y",
    "",
]
ENCODINGS = ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", ""]
NAMES = [None, "scan.pdf", "Größe.pdf", "winmail.dat", "../../etc/passwd", "a" * 300, "\x00.tif"]


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    data = PAYLOADS[draw(st.sampled_from(sorted(PAYLOADS)))]
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding == "base64":
        body = base64.encodebytes(data)
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body)))]
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = data
    head = f"Content-Type: {draw(st.sampled_from(CONTENT_TYPES))}\r\n"
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\r\n"
    name = draw(st.sampled_from(NAMES))
    if name is not None:
        kind = draw(st.sampled_from(["attachment", "inline"]))
        head += f'Content-Disposition: {kind}; filename="{name}"\r\n'
    if draw(st.booleans()):
        head += "Content-ID: <logo@x>\r\n"
    return head.encode() + b"\r\n" + body


def containers(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        kind = draw(st.sampled_from(["mixed", "alternative", "related", "signed", "rfc822"]))
        if kind == "rfc822":
            inner = draw(children)
            return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" + inner
        boundary = draw(st.sampled_from(["b1", "b2", "=_x", "b1 "]))
        declared = draw(st.sampled_from([boundary, boundary, "wrong", None]))
        parts = draw(st.lists(children, max_size=4))
        head = f"Content-Type: multipart/{kind}"
        head += f'; boundary="{declared}"\r\n' if declared is not None else "\r\n"
        body = "".join(f"--{boundary}\r\n" for _ in range(0)).encode()
        for part in parts:
            body += f"--{boundary}\r\n".encode() + part + b"\r\n"
        if draw(st.booleans()):
            body += f"--{boundary}--\r\n".encode()
        return head.encode() + b"\r\n" + body

    return build()


TREES = st.recursive(leaves(), containers, max_leaves=8)


@settings(PROPERTY, max_examples=examples(250))
@given(TREES, st.sampled_from(["", "Subject: Scanned by MFP\r\n", "Subject: =?utf-8?b?w7w=?=\r\n"]))
def test_mime_trees_of_odd_parts(tree: bytes, headers: str) -> None:
    check(headers.encode() + b"From: a@example.com\r\n" + tree)


# --- real fixtures and documents, mutated ----------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        size = len(data)
        at = draw(st.integers(0, size))
        op = draw(st.sampled_from(["flip", "cut", "drop", "repeat", "insert", "line"]))
        if op == "flip" and size:
            data[min(at, size - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at:]
        elif op == "drop":
            del data[at : at + draw(st.integers(1, 4096))]
        elif op == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 4096))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "line":  # drop one whole line: a header, a boundary, a base64 row
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            del data[start : end + 1 if end >= 0 else size]
    return bytes(data)


@settings(PROPERTY, max_examples=examples(300))
@given(st.sampled_from(sorted(FIXTURES)).flatmap(lambda name: mutated(FIXTURES[name])))
def test_real_fixtures_mutated(raw: bytes) -> None:
    check(raw)


def enclose(document: bytes, content_type: str) -> bytes:
    encoded = base64.encodebytes(document).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nSubject: doc\r\nContent-Type: "
        + content_type.encode()
        + b'\r\nContent-Disposition: attachment; filename="doc"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + encoded
    )


DOCUMENTS = {
    "application/pdf": PDF,
    "image/tiff": PAYLOADS["tiff"],
    "image/jpeg": PAYLOADS["jpeg"],
    "image/png": PAYLOADS["png"],
    "application/ms-tnef": PAYLOADS["tnef"],
}


@settings(PROPERTY, max_examples=examples(250))
@given(
    st.sampled_from(sorted(DOCUMENTS)).flatmap(
        lambda kind: st.tuples(st.just(kind), mutated(DOCUMENTS[kind]))
    )
)
def test_real_documents_mutated(case: tuple[str, bytes]) -> None:
    kind, document = case
    check(enclose(document, kind))


def test_the_property_holds_for_every_fixture_unmutated() -> None:
    outcomes = [check(raw) for raw in FIXTURES.values()]
    assert sum(isinstance(o, PreparedDocument) for o in outcomes) == len(outcomes) - 2
