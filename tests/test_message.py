"""MIME → ParsedMessage: what is the text, what may be a document, what is set aside."""

from __future__ import annotations

import base64
import pickle
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from bridge.message import (
    REASON_EMPTY,
    REASON_EXTERNAL,
    REASON_FRAGMENT,
    REASON_HTML_VERSION,
    REASON_INNER_TEXT,
    REASON_LOGO,
    REASON_REPORT,
    REASON_SIGNATURE,
    parse_message,
)
from tests.fixtures_docs import message, pdf_pages

PDF = pdf_pages("one")


def test_headers_are_decoded_from_encoded_words() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.com>\r\n"
        b'To: "Jane Doe" <12125550123@FAX.example.com>, 12125550124@fax.example.com\r\n'
        b"Cc: =?iso-8859-1?q?Ren=E9?= <15551234567@fax.example.com>\r\n"
        b"Subject: =?utf-8?b?R3LDvMOfZSDigJM=?= the\r\n   folded    subject\r\n"
        b"Message-ID: <abc@example.com>\r\n"
        b"\r\nhello\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.from_name == "Jürgen Müller"
    assert parsed.from_address == "jm@example.com"
    assert parsed.subject == "Grüße \u2013 the folded subject"
    assert parsed.message_id == "<abc@example.com>"
    assert parsed.to_names == {
        "12125550123@fax.example.com": "Jane Doe",
        "15551234567@fax.example.com": "René",
    }


def test_raw_utf8_headers_are_decoded() -> None:
    raw = "From: Zoë <z@example.com>\r\nSubject: Überweisung für März\r\n\r\nx\r\n".encode()
    parsed = parse_message(raw)
    assert parsed.subject == "Überweisung für März"
    assert parsed.from_name == "Zoë"


def test_auto_submitted_is_lower_cased_and_none_when_absent() -> None:
    assert (
        parse_message(b"Auto-Submitted:  Auto-Replied \r\n\r\nx").auto_submitted == "auto-replied"
    )
    assert parse_message(b"Subject: hi\r\n\r\nx").auto_submitted is None


def test_missing_headers_give_empty_values() -> None:
    parsed = parse_message(b"\r\n")
    assert (parsed.subject, parsed.from_name, parsed.from_address) == ("", "", "")
    assert parsed.message_id is None
    assert parsed.to_names == {}
    assert parsed.body_text == ""
    assert parsed.parts == []


def test_rfc2231_split_filename_is_decoded() -> None:
    raw = (
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment;\r\n"
        b" filename*0*=UTF-8''Bericht%20%C3%BCber%20Z%C3%B6lle;\r\n"
        b" filename*1*=%20%E2%80%93%202024.pdf\r\n\r\n"
        b"JVBERi0xLjQK\r\n"
        b"--b--\r\n"
    )
    [part] = parse_message(raw).parts
    assert part.filename == "Bericht über Zölle \u2013 2024.pdf"
    assert part.data == b"%PDF-1.4\n"
    assert part.disposition == "attachment"


def test_rfc2047_encoded_filename_is_decoded() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: application/pdf; name="=?UTF-8?B?UmVjaG51bmcgw5wucGRm?="\r\n'
        b'Content-Disposition: attachment; filename="=?UTF-8?B?UmVjaG51bmcgw5wucGRm?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    [part] = parse_message(raw).parts
    assert part.filename == "Rechnung Ü.pdf"


def test_filename_path_is_reduced_to_the_name() -> None:
    msg = message((PDF, "application/pdf", "C:\\Users\\bob\\scan.pdf"))
    assert [p.filename for p in parse_message(bytes(msg)).parts] == ["scan.pdf"]


def test_plain_text_is_the_body_and_its_html_version_is_ignored() -> None:
    msg = message(text="Plain words\n", html="<p>HTML words</p>")
    parsed = parse_message(bytes(msg))
    assert parsed.body_text == "Plain words"
    assert parsed.parts == []
    assert [p.content_type for p in parsed.ignored] == ["text/html"]
    assert parsed.ignored_reasons == [REASON_HTML_VERSION]


def test_html_only_body_is_converted_to_text() -> None:
    html = (
        "<html><head><style>p {color: red}</style><title>t</title></head><body>"
        "<p>Dear&nbsp;Jane,</p><p>see <b>the</b>\n  report</p><ul><li>one</li><li>two</li></ul>"
        "<script>alert(1)</script>Regards<br>Alice &amp; Bob</body></html>"
    )
    parsed = parse_message(bytes(message(text=None, html=html)))
    expected = "Dear Jane,\n\nsee the report\n\n• one\n• two\n\nRegards\nAlice & Bob"
    assert parsed.body_text == expected
    assert parsed.body_type == "text/html"
    assert parsed.ignored == []


def test_empty_plain_alternative_falls_back_to_the_html_text() -> None:
    parsed = parse_message(bytes(message(text="\n", html="<p>Only here</p>")))
    assert parsed.body_text == "Only here"


def test_cid_logo_is_ignored_but_an_unreferenced_inline_image_is_a_part() -> None:
    msg = message(text="Hi", html='<p>Hi</p><img src="cid:logo@x">')
    html_part = msg.get_payload()[1]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(b"\x89PNG-logo", maintype="image", subtype="png", cid="<logo@x>")
    html_part.add_related(b"\x89PNG-photo", maintype="image", subtype="png", cid="<photo@x>")
    parsed = parse_message(bytes(msg))
    assert [p.data for p in parsed.parts] == [b"\x89PNG-photo"]
    assert parsed.ignored_reasons == [REASON_HTML_VERSION, REASON_LOGO]
    assert parsed.ignored[1].content_id == "logo@x"


def test_signatures_and_empty_parts_are_ignored_with_reasons() -> None:
    msg = message(
        (b"sig", "application/pkcs7-signature", "smime.p7s"),
        (b"-----BEGIN PGP SIGNATURE-----", "application/pgp-signature", "signature.asc"),
        (b"\x78\x9f\x3e\x22tnef", "application/ms-tnef", "winmail.dat"),
        (b"", "application/pdf", "empty.pdf"),
        (PDF, "application/pdf", "real.pdf"),
    )
    parsed = parse_message(bytes(msg))
    # winmail.dat is a container the documents pipeline unpacks, so it is a part here
    assert [p.filename for p in parsed.parts] == ["winmail.dat", "real.pdf"]
    assert [p.filename for p in parsed.ignored] == ["smime.p7s", "signature.asc", "empty.pdf"]
    assert parsed.ignored_reasons == [REASON_SIGNATURE, REASON_SIGNATURE, REASON_EMPTY]


def test_attached_email_contributes_its_attachments_not_its_text() -> None:
    inner = message((PDF, "application/pdf", "inner.pdf"), text="Inner text")
    outer = message(text="Outer text")
    outer.add_attachment(inner)
    parsed = parse_message(bytes(outer))
    assert parsed.body_text == "Outer text"
    assert [p.filename for p in parsed.parts] == ["inner.pdf"]
    assert parsed.ignored_reasons == [REASON_INNER_TEXT]


def test_bare_pdf_message_is_a_single_part() -> None:
    msg = MIMEApplication(PDF, "pdf")
    msg["Subject"] = "scan"
    parsed = parse_message(msg.as_bytes())
    assert parsed.body_text == ""
    assert [(p.content_type, p.data, p.filename) for p in parsed.parts] == [
        ("application/pdf", PDF, None)
    ]


def test_text_pieces_around_an_inline_attachment_join_into_the_body() -> None:
    msg = MIMEMultipart("mixed")
    msg.attach(MIMEText("First piece", "plain"))
    pdf = MIMEApplication(PDF, "pdf")
    pdf.add_header("Content-Disposition", "inline", filename="scan.pdf")
    msg.attach(pdf)
    msg.attach(MIMEText("Second piece", "plain"))
    parsed = parse_message(msg.as_bytes())
    assert parsed.body_text == "First piece\n\nSecond piece"
    assert [p.filename for p in parsed.parts] == ["scan.pdf"]
    assert parsed.parts[0].disposition == "inline"


def test_named_text_attachment_is_a_part_with_its_charset() -> None:
    msg = message()
    msg.add_attachment("Größe".encode("latin-1"), maintype="text", subtype="plain")
    attachment = msg.get_payload()[-1]
    assert isinstance(attachment, EmailMessage)
    attachment.set_param("charset", "iso-8859-1")
    attachment.set_param("filename", "notes.txt", header="Content-Disposition")
    [part] = parse_message(bytes(msg)).parts
    assert (part.filename, part.content_type, part.charset) == (
        "notes.txt",
        "text/plain",
        "iso-8859-1",
    )
    assert part.data == "Größe".encode("latin-1")


def test_format_flowed_text_is_unwrapped() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"This line was \r\nwrapped by the client.\r\n \r\nNext paragraph.\r\n"
    )
    assert parse_message(raw).body_text == "This line was wrapped by the client.\n\nNext paragraph."


def test_parts_keep_message_order() -> None:
    msg = message(
        (b"a", "application/octet-stream", "a.bin"),
        (b"", "application/pdf", "b.pdf"),
        (b"c", "application/octet-stream", "c.bin"),
    )
    parsed = parse_message(bytes(msg))
    order = sorted([*parsed.parts, *parsed.ignored], key=lambda p: p.index)
    assert [p.filename for p in order] == ["a.bin", "b.pdf", "c.bin"]


def test_malformed_messages_never_raise() -> None:
    samples = [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b'Subject: =?bogus-charset?q?x?= =?utf-8?b?####?=\r\nFrom: <<<@>>>, "unclosed\r\n\r\n',
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n',
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64",
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n\xe9t\xe9",
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody",
    ]
    for raw in samples:
        parsed = parse_message(raw)
        assert isinstance(parsed.body_text, str)
    assert parse_message(samples[6]).body_text == "été"


def test_parsed_message_survives_pickling() -> None:
    parsed = parse_message(bytes(message((PDF, "application/pdf", "a.pdf"))))
    assert pickle.loads(pickle.dumps(parsed)) == parsed


def test_missing_and_wrong_boundaries_are_found_in_the_body() -> None:
    body = (
        b"--real\r\nContent-Type: text/plain\r\n\r\nthe text\r\n"
        b"--real\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;"
        b' filename="a.pdf"\r\n\r\n%PDF-1.4 x\r\n--real--\r\n'
    )
    for content_type in (b"multipart/mixed", b'multipart/mixed; boundary="other"'):
        parsed = parse_message(b"Subject: s\r\nContent-Type: " + content_type + b"\r\n\r\n" + body)
        assert parsed.body_text == "the text"
        assert [p.filename for p in parsed.parts] == ["a.pdf"]
        assert parsed.problems == []


def test_base64_encoded_attached_message_is_decoded_and_read() -> None:
    inner = bytes(message((PDF, "application/pdf", "inner.pdf"), text="inner"))
    raw = (
        b'Subject: fwd\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner)
        + b"--b--\r\n"
    )
    parsed = parse_message(raw)
    assert [p.filename for p in parsed.parts] == ["inner.pdf"]
    assert parsed.ignored_reasons == [REASON_INNER_TEXT]


def test_split_message_takes_its_headers_as_rfc_2046_says() -> None:
    enclosed = bytes(message((PDF, "application/pdf", "scan.pdf"), subject="Inner subject"))
    head = (
        b"From: Scanner <scan@example.com>\r\nSubject: Outer subject\r\n"
        b'Content-Type: message/partial; id="abc"; number=1; total=1\r\n\r\n'
    )
    parsed = parse_message(head + enclosed)
    assert (parsed.from_address, parsed.subject) == ("scan@example.com", "Inner subject")
    assert [p.filename for p in parsed.parts] == ["scan.pdf"]


def test_lone_piece_of_a_split_message_is_a_problem() -> None:
    raw = b'Subject: s\r\nContent-Type: message/partial; id="abc"; number=2\r\n\r\nQUJD\r\n'
    parsed = parse_message(raw)
    assert parsed.problems == [
        "the scan was split into several messages (message/partial); set the scanner's"
        " maximum e-mail size higher or turn off splitting"
    ]
    assert parsed.ignored_reasons == [REASON_FRAGMENT]


def test_too_deep_nesting_is_a_problem_not_a_recursion_error() -> None:
    raw = b"Subject: deep\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 3000 + b"x"
    parsed = parse_message(raw)
    assert parsed.subject == "deep"
    assert parsed.problems == ["the message is nested more than 40 levels deep"]


def test_delivery_reports_and_external_bodies_are_set_aside() -> None:
    raw = (
        b'Subject: s\r\nContent-Type: multipart/report; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"Final-Recipient: rfc822; a@b\r\n--b\r\n"
        b'Content-Type: message/external-body; access-type=URL; URL="http://x/a.pdf"\r\n\r\n'
        b"Content-Type: application/pdf\r\n\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.parts == []
    assert parsed.ignored_reasons == [REASON_REPORT, REASON_EXTERNAL]


def test_raw_8bit_file_name_is_decoded() -> None:
    raw = (
        b"Content-Type: application/pdf\r\n"
        + 'Content-Disposition: attachment; filename="Größe.pdf"\r\n'.encode()
        + b"\r\n%PDF-1.4"
    )
    assert [p.filename for p in parse_message(raw).parts] == ["Größe.pdf"]
