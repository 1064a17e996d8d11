"""What a person faxing from Outlook, Gmail or an iPhone sees, over real SMTP:
Word files faxed, a missing converter named, a short text mail on one page, an HTML-only mail
rendered with its pictures, a preview answered by mail, archives kept out unless allowed.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from io import BytesIO
from typing import Any

from pypdf import PdfReader

from bridge.config import Config
from tests.bridge_runner import BridgeThread
from tests.fixtures_docs import pdf_pages
from tests.fixtures_office import WORD_PAGE_1, WORD_PAGE_2, order_docx, picture
from tests.helpers import smtp_client
from tests.messages import fax_mail
from tests.test_end_to_end import final_job, maildir_messages, sent_pdf

DOCX = "vnd.openxmlformats-officedocument.wordprocessingml.document"


def send(
    bridge: BridgeThread, message: EmailMessage, rcpt: str = "12125550123@fax.localhost"
) -> str:
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        code, text = client.rcpt(rcpt)
        assert code == 250, text
        code, text = client.data(message.as_bytes(policy=SMTP))
    return f"{code} {text.decode()}"


def last(bridge: BridgeThread) -> dict[str, Any]:
    return bridge.store.smtplog.recent(limit=1)[0]


def word_mail(**kwargs: Any) -> EmailMessage:
    message = fax_mail(pdf_pages=0, **kwargs)
    message.add_attachment(
        order_docx(), maintype="application", subtype=DOCX, filename="order.docx"
    )
    return message


def page_texts(reader: PdfReader) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def test_word_order_form_from_outlook_is_faxed_as_its_pages(bridge: BridgeThread) -> None:
    reply = send(bridge, word_mail(subject="Order", body="Order attached."))
    assert reply.startswith("250 2.0.0 Queued as ")
    job = final_job(bridge, "+12125550123")
    cover, first, second = page_texts(sent_pdf(bridge, job))
    assert "FAX" in cover and "3 (including this cover page)" in cover
    assert WORD_PAGE_1[0] in first and WORD_PAGE_2 in second
    [attachment] = last(bridge)["attachments"]
    assert (attachment["detected_type"], attachment["pages"], attachment["used"]) == (
        "docx",
        2,
        True,
    )


def test_without_libreoffice_the_reply_and_the_smtplog_name_the_missing_converter(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(documents={"libreoffice": "/nonexistent/soffice"}))
    reply = send(bridge, word_mail())
    sentence = '"order.docx" is a Word document; this server has no LibreOffice to convert it'
    assert reply == f"554 5.6.1 {sentence}"
    record = last(bridge)
    assert (record["outcome"], record["reply"], record["error"]) == ("rejected", reply, sentence)
    assert record["attachments"][0]["reason"] == sentence
    assert send(bridge, fax_mail()).startswith("250 2.0.0")  # and nothing else is affected


def test_short_text_only_mail_is_one_page_with_the_cover_fields_on_top(
    bridge: BridgeThread,
) -> None:
    body = "Please call me back about the delivery on Monday.\n\nThanks, Alice"
    reply = send(bridge, fax_mail(subject="Delivery", body=body, pdf_pages=0))
    assert reply.startswith("250 2.0.0")
    job = final_job(bridge, "+12125550123")
    [page] = page_texts(sent_pdf(bridge, job))
    assert page.startswith("FAX")
    assert "Subject: Delivery" in page and "1 (including this cover page)" in page
    assert page.index("Subject: Delivery") < page.index("Please call me back about the delivery")
    assert job["pages"] == 1 and last(bridge)["pages"] == 1


def test_long_text_only_mail_continues_after_the_cover_and_counts_its_pages(
    bridge: BridgeThread,
) -> None:
    body = "\n".join(f"Line {n:03d} of the inventory" for n in range(1, 121))
    assert send(bridge, fax_mail(subject="Inventory", body=body, pdf_pages=0)).startswith("250")
    job = final_job(bridge, "+12125550123")
    pages = page_texts(sent_pdf(bridge, job))
    assert len(pages) == job["pages"] == 3
    assert f"{len(pages)} (including this cover page)" in pages[0]
    assert "Line 001" in pages[0] and "Line 120" in pages[-1]
    assert "".join(pages).count("Line 060") == 1  # nothing printed twice, nothing lost


def html_mail(photo: bytes, logo: bytes) -> EmailMessage:
    """Gmail-style HTML-only mail: a photo in the text, a logo in the signature."""
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "12125550123@fax.localhost"
    message["Subject"] = "Damage report"
    message.set_content(
        "<html><body><h2>Damage report</h2><p>Before the photo.</p>"
        '<p><img src="cid:photo1@example.com" width="400"></p><p>After the photo.</p>'
        '<div class="gmail_signature"><p>Alice</p><img src="cid:logo1@example.com"></div>'
        "</body></html>",
        subtype="html",
    )
    message.add_related(photo, "image", "png", cid="<photo1@example.com>", filename="photo.png")
    message.add_related(logo, "image", "png", cid="<logo1@example.com>", filename="logo.png")
    return message


def image_rows(page: Any) -> list[float]:
    """The vertical position (PDF points from the bottom) of each image drawn on the page."""
    from pypdf.generic import ContentStream

    rows, stack, matrix = [], [], [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    for operands, operator in ContentStream(page.get_contents(), page.pdf).operations:
        if operator == b"q":
            stack.append(matrix)
        elif operator == b"Q":
            matrix = stack.pop()
        elif operator == b"cm":
            a, b, c, d, e, f = (float(x) for x in operands)
            m = matrix
            matrix = [
                a * m[0] + b * m[2], a * m[1] + b * m[3], c * m[0] + d * m[2],
                c * m[1] + d * m[3], e * m[0] + f * m[2] + m[4], e * m[1] + f * m[3] + m[5],
            ]  # fmt: skip
        elif operator == b"Do":
            rows.append(matrix[5] + matrix[3] / 2)
    return rows


def text_rows(page: Any, *words: str) -> list[float]:
    found: dict[str, float] = {}

    def visit(text: str, _cm: Any, tm: Any, _font: Any, _size: Any) -> None:
        for word in words:
            if word in text and word not in found:
                found[word] = float(tm[5])

    page.extract_text(visitor_text=visit)
    return [found[word] for word in words]


def test_html_only_mail_is_rendered_with_its_picture_in_place_and_no_logo(
    bridge: BridgeThread,
) -> None:
    message = html_mail(picture((800, 600)), picture((120, 40), "ACME"))
    assert send(bridge, message).startswith("250 2.0.0")
    job = final_job(bridge, "+12125550123")
    reader = sent_pdf(bridge, job)
    assert len(reader.pages) == 2  # the cover (subject) and the rendered mail
    page = reader.pages[1]
    assert "Damage report" in page.extract_text() and "Alice" in page.extract_text()
    [photo_row] = image_rows(page)  # the photo, and not the signature logo
    before, after = text_rows(page, "Before the photo", "After the photo")
    assert before > photo_row > after  # where the sender put it
    parts = {a["filename"]: a for a in last(bridge)["attachments"]}
    assert parts["photo.png"]["used"] is True
    assert parts["logo.png"]["used"] is False
    assert (
        parts["logo.png"]["reason"] == "an image shown inside the HTML text (e.g. a signature logo)"
    )


def test_preview_address_answers_with_the_fax_it_would_be_and_sends_nothing(
    bridge: BridgeThread,
) -> None:
    message = word_mail(subject="Order", body="Order attached.")
    message.add_attachment(
        b"BEGIN:VCARD\r\nEND:VCARD\r\n", maintype="text", subtype="vcard", filename="alice.vcf"
    )
    reply = send(bridge, message, rcpt="preview+12125550123@fax.localhost")
    record = last(bridge)
    assert reply == f"250 2.0.0 Queued as {record['id']} (preview mailed to alice@example.com)"
    assert (record["outcome"], record["preview"], record["fax_ids"]) == ("accepted", True, [])
    assert record["recipients"][0]["preview"] is True
    assert bridge.store.jobs.recent() == []  # nothing is faxed

    [mail] = maildir_messages(bridge)
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "Fax preview for +1 212-555-0123: 3 pages"
    assert mail["Auto-Submitted"] == "auto-replied"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "nothing was faxed" in text
    assert "order.docx [docx]: faxed, 2 pages" in text
    assert 'alice.vcf [vcf]: not faxed: "alice.vcf" is a contact card' in text
    exact, as_received = [part.get_content() for part in mail.iter_attachments()]
    exact_pages = page_texts(PdfReader(BytesIO(exact)))
    assert len(exact_pages) == 3 and exact_pages[0].startswith("FAX")
    assert WORD_PAGE_1[0] in exact_pages[1]
    received = PdfReader(BytesIO(as_received))
    assert len(received.pages) == 3
    [scan] = received.pages[0].images
    assert scan.image is not None and scan.image.mode == "1" and scan.image.width == 1728


def test_preview_is_authorised_exactly_as_sending(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    config = make_config()
    faxbox = config.faxboxes[0].model_copy(update={"allowed_senders": ["*@other.org"]})
    bridge = start_bridge(config.model_copy(update={"faxboxes": [faxbox]}))
    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        code, text = client.rcpt("preview+12125550123@fax.localhost")
    assert (code, text.decode()) == (
        550,
        "5.7.1 alice@example.com may not send faxes through faxbox main",
    )


def stored_zip(*files: tuple[str, bytes]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return out.getvalue()


def zip_mail(data: bytes) -> EmailMessage:
    message = fax_mail(pdf_pages=0, body="Files attached.")
    message.add_attachment(data, maintype="application", subtype="zip", filename="files.zip")
    return message


def test_zip_holding_a_stored_pdf_is_never_faxed_by_default(bridge: BridgeThread) -> None:
    archive = stored_zip(("scan.pdf", pdf_pages("Inside the zip")))
    assert b"%PDF-" in archive[:1024]  # what used to fool the detection
    reply = send(bridge, zip_mail(archive))
    assert reply == (
        '554 5.6.0 No faxable content: "files.zip" is an archive (archives are not unpacked '
        "here; attach the files themselves)"
    )
    assert last(bridge)["attachments"][0]["detected_type"] == "zip"


def test_unpack_archives_faxes_the_files_one_level_deep(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(documents={"unpack_archives": True}))
    inner = stored_zip(("deeper.pdf", pdf_pages("Too deep")))
    archive = stored_zip(
        ("scans/first.pdf", pdf_pages("First file")),
        ("order.docx", order_docx()),
        ("more.zip", inner),
    )
    assert send(bridge, zip_mail(archive)).startswith("250 2.0.0")
    job = final_job(bridge, "+12125550123")
    pages = page_texts(sent_pdf(bridge, job))
    assert pages[1] == "First file" and WORD_PAGE_1[0] in pages[2] and WORD_PAGE_2 in pages[3]
    assert "Too deep" not in " ".join(pages)
    parts = [(a["filename"], a["used"], a["reason"]) for a in last(bridge)["attachments"]]
    assert parts[1:] == [
        ("first.pdf", True, None),
        ("order.docx", True, None),
        ("more.zip", False, "an archive inside an archive (only one level is unpacked)"),
    ]


def test_unpacked_archive_is_held_to_the_message_size_limit(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    config = make_config(documents={"unpack_archives": True}, smtp={"max_message_bytes": 200_000})
    bridge = start_bridge(config)
    bomb = BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", b"0" * 5_000_000)  # 5 MB that packs into a few kB
    reply = send(bridge, zip_mail(bomb.getvalue()))
    assert reply == (
        '554 5.6.0 Attachment "files.zip": the ZIP archive unpacks to 5000000 bytes; the '
        "limit is 200000 bytes"
    )
