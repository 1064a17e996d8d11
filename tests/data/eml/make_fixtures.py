# ruff: noqa: E501  (header lines and HTML are kept as long as the clients write them)
"""Write the real-world message shapes in this folder (run once; the .eml files are kept).

    python tests/data/eml/make_fixtures.py

Each message is written the way its client or scanner really writes it: header order and
folding, boundary style, transfer encodings, file naming. The documents inside are made by
`tests/fixtures_docs.py`, so every page carries a label the tests can read back. What each
message must become is in `expected.json`, written by hand, not by this script. Re-running
changes a few bytes that carry no meaning: the S/MIME signature (ECDSA is randomised) and the
/ID of the scanners' PDFs (img2pdf makes a new one each run).
"""

from __future__ import annotations

import base64
import quopri
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.fixtures_docs import (  # noqa: E402
    TnefFile,
    document_pdf,
    png_bytes,
    scan_jpeg,
    scan_pdf,
    scan_tiff,
    tnef,
)

FAX = "12125550123@fax.example.com"


def b64(data: bytes, width: int = 76) -> str:
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


def qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode()


def crlf(text: str) -> bytes:
    """Lines as they travel over SMTP."""
    return text.strip("\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n"


def logo(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (120, 40), colour)
    ImageDraw.Draw(image).text((8, 12), "ACME", fill=(255, 255, 255))
    return png_bytes(image)


# --- mail clients ----------------------------------------------------------------------------


def outlook_winmail_dat() -> bytes:
    """Outlook 2016 through Exchange, Rich Text message: the files are inside winmail.dat."""
    boundary = "_000_DM6PR11MB41080A1B2C3D4E5F6A7B8C9DD1234DM6PR11MB4108namp_"
    winmail = tnef(
        [
            TnefFile(
                "Signed contract.pdf",
                document_pdf("Signed contract", 2),
                mime="application/pdf",
                short_name="SIGNED~1.PDF",
            ),
            TnefFile(
                "image001.png",
                logo((0, 70, 140)),
                mime="image/png",
                content_id="image001.png@01DA76E1.2C3B4D50",
                hidden=True,
            ),
        ],
        rtf=b"\x9f\x00\x00\x00\xd8\x00\x00\x00LZFu\x8e\x1b\x9a\x1c" + bytes(140),
    )
    return crlf(f"""
Received: from DM6PR11MB4108.namprd11.prod.outlook.com (2603:10b6:5:1c8::21) by
 mail.example.com with HTTPS; Fri, 15 Mar 2024 14:02:12 +0000
From: "Miller, Dana" <dana.miller@corp.example.com>
To: Front Desk Fax <{FAX}>
Subject: Signed contract - please fax
Thread-Topic: Signed contract - please fax
Thread-Index: AdpWqL3x7uJ9Xk0nRZ2m8kq2c1Bv4w==
Date: Fri, 15 Mar 2024 14:02:11 +0000
Message-ID: <DM6PR11MB41080A1B2C3D4E5F6A7B8C9DD1234@DM6PR11MB4108.namprd11.prod.outlook.com>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach: yes
X-MS-TNEF-Correlator: <DM6PR11MB41080A1B2C3D4E5F6A7B8C9DD1234@DM6PR11MB4108.namprd11.prod.outlook.com>
x-originating-ip: [10.0.0.42]
Content-Type: multipart/mixed;
\tboundary="{boundary}"
MIME-Version: 1.0

--{boundary}
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Hi,

please fax the signed contract to the number above.

Thanks,
Dana Miller
ACME Corp. | Legal

--{boundary}
Content-Type: application/ms-tnef; name="winmail.dat"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="winmail.dat"

{b64(winmail)}

--{boundary}--
""")


def outlook_html_cid_logo() -> bytes:
    """Outlook 365, HTML message with two signature logos (cid:) and a PDF attachment."""
    mixed, related, alternative = (
        f"_00{n}_BY5PR04MB6920C1D2E3F4A5B6C7D8E9F0A1B2BY5PR04MB6920namp_" for n in (4, 3, 0)
    )
    cid1, cid2 = "image001.png@01DA76E1.2C3B4D50", "image002.png@01DA76E1.2C3B4D50"
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "<style><!-- p.MsoNormal {margin:0cm; font-family:Calibri} --></style></head>"
        '<body lang="EN-US"><div class="WordSection1"><p class="MsoNormal">Hello,</p>'
        '<p class="MsoNormal">please find invoice 4711 attached.</p>'
        '<p class="MsoNormal">Kind regards<br>Chris Novak</p>'
        f'<p class="MsoNormal"><img width="120" height="40" id="Picture_x0020_1" src="cid:{cid1}"'
        ' alt="ACME"></p>'
        f'<p class="MsoNormal"><img width="120" height="40" src="cid:{cid2}" alt="LinkedIn">'
        "</p></div></body></html>"
    )
    text = "Hello,\n\nplease find invoice 4711 attached.\n\nKind regards\nChris Novak\n"
    invoice = document_pdf("Invoice 4711", 1)

    def image(name: str, cid: str, data: bytes) -> str:
        return f"""--{related}
Content-Type: image/png; name="{name}"
Content-Description: {name}
Content-Disposition: inline; filename="{name}"; size={len(data)};
\tcreation-date="Fri, 15 Mar 2024 09:12:40 GMT";
\tmodification-date="Fri, 15 Mar 2024 09:12:40 GMT"
Content-ID: <{cid}>
Content-Transfer-Encoding: base64

{b64(data)}
"""

    return crlf(f"""
From: Chris Novak <chris.novak@acme.example>
To: "Accounts Payable" <{FAX}>
Subject: Invoice 4711
Thread-Topic: Invoice 4711
Thread-Index: AQHadrD3k9mXc2Vq0kGm1x8n2b4c5w==
Date: Fri, 15 Mar 2024 09:12:40 +0000
Message-ID: <BY5PR04MB6920C1D2E3F4A5B6C7D8E9F0A1B2@BY5PR04MB6920.namprd04.prod.outlook.com>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach: yes
X-MS-TNEF-Correlator:
Content-Type: multipart/mixed;
\tboundary="{mixed}"
MIME-Version: 1.0

--{mixed}
Content-Type: multipart/related;
\tboundary="{related}";
\ttype="multipart/alternative"

--{related}
Content-Type: multipart/alternative;
\tboundary="{alternative}"

--{alternative}
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: base64

{b64(text.encode())}

--{alternative}
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

{b64(html.encode())}

--{alternative}--

{image("image001.png", cid1, logo((0, 70, 140)))}
{image("image002.png", cid2, logo((10, 102, 194)))}
--{related}--

--{mixed}
Content-Type: application/pdf; name="Invoice 4711.pdf"
Content-Description: Invoice 4711.pdf
Content-Disposition: attachment; filename="Invoice 4711.pdf"; size={len(invoice)};
\tcreation-date="Fri, 15 Mar 2024 09:12:00 GMT";
\tmodification-date="Fri, 15 Mar 2024 09:12:40 GMT"
Content-Transfer-Encoding: base64

{b64(invoice)}

--{mixed}--
""")


def apple_mail_inline_pdf() -> bytes:
    """Apple Mail, plain text: the PDF sits inline between two pieces of text."""
    boundary = "Apple-Mail=_5C2B0F3A-7E1D-4B8C-9A63-2D4E8F1A0B7C"
    form = document_pdf("Form W-9", 2)
    return crlf(f"""
From: Sam Porter <sam.porter@icloud.example>
Content-Type: multipart/mixed;
\tboundary="{boundary}"
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.500.171.1.1\\))
Subject: Form W-9
Message-Id: <8E4F2A61-3B7C-4D9E-A0F1-5C6B7D8E9F01@icloud.example>
Date: Fri, 15 Mar 2024 11:48:03 -0700
To: {FAX}
X-Mailer: Apple Mail (2.3774.500.171.1.1)


--{boundary}
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
\tcharset=us-ascii

Hello,

here is the completed form:

--{boundary}
Content-Disposition: inline;
\tfilename="Form W-9.pdf"
Content-Type: application/pdf;
\tx-unix-mode=0644;
\tname="Form W-9.pdf"
Content-Transfer-Encoding: base64

{b64(form)}
--{boundary}
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
\tcharset=us-ascii



Best regards,
Sam
--{boundary}--
""")


def apple_mail_rich_inline_pdf() -> bytes:
    """Apple Mail, rich text: plain alternative, then HTML / inline PDF / HTML."""
    outer = "Apple-Mail=_0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"
    inner = "Apple-Mail=_F9E8D7C6-B5A4-9382-7160-5F4E3D2C1B0A"
    form = document_pdf("Form W-9", 2)
    return crlf(f"""
From: Sam Porter <sam.porter@icloud.example>
Content-Type: multipart/alternative;
\tboundary="{outer}"
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.500.171.1.1\\))
Subject: Form W-9 (signed)
Message-Id: <1F2E3D4C-5B6A-4798-8A9B-0C1D2E3F4A5B@icloud.example>
Date: Fri, 15 Mar 2024 11:52:30 -0700
To: {FAX}
X-Mailer: Apple Mail (2.3774.500.171.1.1)


--{outer}
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
\tcharset=us-ascii

Hello, here is the signed form.

Best regards,
Sam
--{outer}
Content-Type: multipart/mixed;
\tboundary="{inner}"


--{inner}
Content-Transfer-Encoding: 7bit
Content-Type: text/html;
\tcharset=us-ascii

<html><head><meta http-equiv="content-type" content="text/html; charset=us-ascii"></head><body style="overflow-wrap: break-word;"><div>Hello, here is the signed form.</div></body></html>
--{inner}
Content-Disposition: inline;
\tfilename="Form W-9.pdf"
Content-Type: application/pdf;
\tx-unix-mode=0644;
\tname="Form W-9.pdf"
Content-Transfer-Encoding: base64

{b64(form)}
--{inner}
Content-Transfer-Encoding: 7bit
Content-Type: text/html;
\tcharset=us-ascii

<html><head><meta http-equiv="content-type" content="text/html; charset=us-ascii"></head><body style="overflow-wrap: break-word;"><div><br></div><div>Best regards,</div><div>Sam</div></body></html>
--{inner}--

--{outer}--
""")


def gmail_alternative_attachment() -> bytes:
    """Gmail web: mixed(alternative(plain, html), attachment) with an attachment Content-ID."""
    mixed, alternative = "000000000000f1a2b3060b9c4d5e", "000000000000f1a2b1060b9c4d5c"
    text = "Hi,\n\nattached is the signed lease \u2013 two pages.\n\nThanks,\nJordan\n"
    html = (
        '<div dir="ltr">Hi,<div><br></div><div>attached is the signed lease \u2013 two pages.'
        "</div><div><br></div><div>Thanks,</div><div>Jordan</div></div>\n"
    )
    lease = document_pdf("Lease agreement", 2)
    return crlf(f"""
MIME-Version: 1.0
Date: Fri, 15 Mar 2024 10:21:37 -0400
Message-ID: <CAKx7Qp=3mZ0vR1s2T3u4V5w6X7y8Z9a0B1c2D3e4F5g6H7i8J9@mail.gmail.com>
Subject: Lease agreement
From: Jordan Lee <jordan.lee@gmail.example>
To: {FAX}
Content-Type: multipart/mixed; boundary="{mixed}"

--{mixed}
Content-Type: multipart/alternative; boundary="{alternative}"

--{alternative}
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{qp(text)}
--{alternative}
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{qp(html)}
--{alternative}--
--{mixed}
Content-Type: application/pdf; name="lease.pdf"
Content-Disposition: attachment; filename="lease.pdf"
Content-Transfer-Encoding: base64
Content-ID: <f_ltsm0x1q0>
X-Attachment-Id: f_ltsm0x1q0

{b64(lease)}
--{mixed}--
""")


def thunderbird_rfc2231_filename() -> bytes:
    """Thunderbird: a long UTF-8 file name split into RFC 2231 continuations; format=flowed."""
    boundary = "------------0aBcDeFgHiJkLmNoPqRsTuVw"
    quote = document_pdf("Kostenvoranschlag", 1, paper="A4")
    part1 = "UTF-8''Kostenvoranschlag%20f%C3%BCr%20die%20Renovierung%20der%20B%C3%BC"
    part2 = "ro-%20und%20Lagerr%C3%A4ume%202024.pdf"
    return crlf(f"""
Message-ID: <7b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e@example.de>
Date: Fri, 15 Mar 2024 15:30:12 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: de-DE
To: =?UTF-8?Q?B=C3=BCro_Fax?= <{FAX}>
From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg.mueller@example.de>
Subject: =?UTF-8?Q?Kostenvoranschlag_f=C3=BCr_die_Renovierung?=
Content-Type: multipart/mixed; boundary="{boundary}"

This is a multi-part message in MIME format.
--{boundary}
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Sehr geehrte Damen und Herren,

anbei der Kostenvoranschlag für die Renovierung der Büro- und 
Lagerräume.

Mit freundlichen Grüßen
Jörg Müller

--{boundary}
Content-Type: application/pdf;
 name*0*={part1};
 name*1*={part2}
Content-Disposition: attachment;
 filename*0*={part1};
 filename*1*={part2}
Content-Transfer-Encoding: base64

{b64(quote, 72)}

--{boundary}--
""")


# --- scanners --------------------------------------------------------------------------------


def scanner_mail(
    *,
    sender: str,
    subject: str,
    date: str,
    message_id: str,
    boundary: str,
    body: str | None,
    files: list[tuple[str, str, bytes]],
    extra_headers: str = "",
) -> bytes:
    """The shape most MFPs share: mixed(text?, file…), base64, one file per attachment."""
    parts = []
    if body is not None:
        parts.append(
            "Content-Type: text/plain; charset=US-ASCII\nContent-Transfer-Encoding: 7bit\n\n" + body
        )
    for content_type, name, data in files:
        parts.append(
            f'Content-Type: {content_type}; name="{name}"\n'
            "Content-Transfer-Encoding: base64\n"
            f'Content-Disposition: attachment; filename="{name}"\n\n{b64(data)}'
        )
    joined = "".join(f"--{boundary}\n{part}\n" for part in parts)
    return crlf(f"""
From: {sender}
To: {FAX}
Subject: {subject}
Date: {date}
Message-ID: {message_id}
MIME-Version: 1.0
{extra_headers}Content-Type: multipart/mixed; boundary="{boundary}"

{joined}--{boundary}--
""")


def hp_scan() -> bytes:
    """HP LaserJet MFP: a PDF sent as application/octet-stream, named .pdf, fixed text."""
    return scanner_mail(
        sender="HP Color LaserJet MFP M479fdw <scanner@office.example.com>",
        subject="Scanned Document",
        date="Fri, 15 Mar 2024 14:05:12 +0000",
        message_id="<1710511512.0.NPI8A2B3C@office.example.com>",
        boundary="=_HPMFP_20240315140512_000001",
        body="This document was scanned by HP Color LaserJet MFP M479fdw (NPI8A2B3C).\n",
        files=[
            (
                "application/octet-stream",
                "DOC031524-03152024140512.pdf",
                scan_pdf(["HP page 1", "HP page 2", "HP page 3"]),
            )
        ],
    )


XEROX_BODY = """Please open the attached document. It was scanned and sent to you using a Xerox \
multifunction printer.

Attachment File Type: TIFF, Multi-Page

Multifunction Printer Location: 2nd floor copy room
Device Name: XRX9C934E8A2B3C

For more information on Xerox products and solutions, please visit http://www.xerox.com
"""


def xerox_scan() -> bytes:
    """Xerox WorkCentre: fixed subject and body, a multi-page CCITT G4 TIFF (Letter, 200 dpi)."""
    return scanner_mail(
        sender="Xerox WorkCentre 7845 <xerox7845@office.example.com>",
        subject="Scanned from a Xerox Multifunction Printer",
        date="Fri, 15 Mar 2024 14:06:40 +0000",
        message_id="<XRX9C934E8A2B3C1710511600@office.example.com>",
        boundary="--XEROX_MIME_BOUNDARY_1710511600",
        body=XEROX_BODY,
        files=[
            (
                "image/tiff",
                "Scanned from a Xerox Multifunction Printer.tif",
                scan_tiff(["Xerox page 1", "Xerox page 2"], paper="letter"),
            )
        ],
        extra_headers="X-Mailer: Xerox WorkCentre 7845\n",
    )


def canon_scan() -> bytes:
    """Canon imageRUNNER ADVANCE: no text at all, an octet-stream PDF with an upper-case name."""
    return scanner_mail(
        sender='"iR-ADV C5535" <canon@office.example.com>',
        subject="Attached Image",
        date="Fri, 15 Mar 2024 14:07:02 +0000",
        message_id="<20240315140702.0001.iR-ADV-C5535@office.example.com>",
        boundary="CanonMFP_boundary_20240315140702",
        body=None,
        files=[
            (
                "application/octet-stream",
                "SCAN0001.PDF",
                scan_pdf(["Canon page 1", "Canon page 2"], dpi=150, jpeg=True),
            )
        ],
    )


def ricoh_scan() -> bytes:
    """Ricoh MP: an octet-stream PDF whose name has no extension, device text in the body."""
    body = (
        'This E-mail was sent from "RNP0026736A2B3C" (MP C3004).\n\n'
        "Queue ID: 24USR004211\nScan Date: 03.15.2024 14:08:30 (+0000)\n"
    )
    return scanner_mail(
        sender="RICOH MP C3004 <ricoh@office.example.com>",
        subject="Scan Data from MP C3004",
        date="Fri, 15 Mar 2024 14:08:30 +0000",
        message_id="<20240315140830.24USR004211@RNP0026736A2B3C>",
        boundary="RICOH_MFP_20240315140830_BOUNDARY",
        body=body,
        files=[
            (
                "application/octet-stream",
                "20240315140830123",
                scan_pdf(["Ricoh page 1", "Ricoh page 2"], paper="letter"),
            )
        ],
    )


def brother_scan() -> bytes:
    """Brother MFC: one JPEG per page, no text."""
    return scanner_mail(
        sender="Brother MFC-L2750DW <brother@office.example.com>",
        subject='Message from "BRN3C2AF4A1B2C3"',
        date="Fri, 15 Mar 2024 14:09:15 +0000",
        message_id="<3C2AF4A1B2C3.20240315140915@brother.office.example.com>",
        boundary="----=_Part_Brother_20240315140915",
        body=None,
        files=[
            ("image/jpeg", f"img-315140915-000{n}.jpg", scan_jpeg(f"Brother page {n}", dpi=150))
            for n in (1, 2)
        ],
        extra_headers="X-Mailer: Brother Internet Fax / Scan to E-mail\n",
    )


def kyocera_scan() -> bytes:
    """Kyocera TASKalfa: a multi-page G4 TIFF as octet-stream (A4, 200 dpi)."""
    return scanner_mail(
        sender="TASKalfa 3554ci <kyocera@office.example.com>",
        subject="Message from KM_3554ci",
        date="Fri, 15 Mar 2024 14:10:01 +0000",
        message_id="<202403151410010012.KM3554ci@office.example.com>",
        boundary="KYOCERA_MFP_BOUNDARY_202403151410",
        body="Scanned on TASKalfa 3554ci\nDate and Time: 2024/03/15 14:10\n",
        files=[
            (
                "application/octet-stream",
                "doc00012320240315141001.tif",
                scan_tiff(["Kyocera page 1", "Kyocera page 2", "Kyocera page 3"]),
            )
        ],
    )


# --- signed, forwarded, split ----------------------------------------------------------------


def _order_part(boundary: str) -> str:
    order = document_pdf("Purchase order 2024-118", 1)
    return f"""Content-Type: multipart/mixed; boundary="{boundary}"

This is a multi-part message in MIME format.
--{boundary}
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

Please fax the attached purchase order to our supplier.

Regards,
Pat

--{boundary}
Content-Type: application/pdf; name="Purchase order 2024-118.pdf"
Content-Disposition: attachment; filename="Purchase order 2024-118.pdf"
Content-Transfer-Encoding: base64

{b64(order, 72)}

--{boundary}--
"""


def smime_signature(content: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(0x5EED_FA11, ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pat@example.org")])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1F2E3D)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
    )


def smime_signed() -> bytes:
    """Thunderbird S/MIME: multipart/signed(mixed(text, PDF), application/pkcs7-signature)."""
    outer, inner = "------------ms010203040506070809000102", "------------b9kLmN0pQrStUvWxYz012345"
    signed = crlf(_order_part(inner))
    signature = smime_signature(signed)
    signed_text = signed.decode().replace("\r\n", "\n").rstrip()
    return crlf(f"""
Message-ID: <5d6e7f80-9a1b-2c3d-4e5f-60718293a4b5@example.org>
Date: Fri, 15 Mar 2024 16:01:44 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: Pat Quinn <pat@example.org>
To: {FAX}
Subject: Purchase order 2024-118
Content-Type: multipart/signed; protocol="application/pkcs7-signature";
 micalg=sha-256; boundary="{outer}"

This is a cryptographically signed message in MIME format.

--{outer}
{signed_text}

--{outer}
Content-Type: application/pkcs7-signature; name="smime.p7s"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="smime.p7s"
Content-Description: S/MIME Cryptographic Signature

{b64(signature)}

--{outer}--
""")


def pgp_signed() -> bytes:
    """Thunderbird OpenPGP/MIME (RFC 3156) with protected headers."""
    outer, inner = "------------3fZ1x2y3Z4a5B6c7D8e9F0g1", "------------Q1w2E3r4T5y6U7i8O9p0A1s2"
    body = _order_part(inner).replace(
        f'boundary="{inner}"\n',
        f'boundary="{inner}";\n protected-headers="v1"\n'
        f"From: Pat Quinn <pat@example.org>\nTo: {FAX}\n"
        "Message-ID: <0a1b2c3d-pgp@example.org>\nSubject: Purchase order 2024-118\n",
        1,
    )
    signature = base64.b64encode(bytes(range(7, 7 + 119)) * 2).decode()
    return crlf(f"""
Message-ID: <0a1b2c3d-pgp@example.org>
Date: Fri, 15 Mar 2024 16:03:02 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: Pat Quinn <pat@example.org>
To: {FAX}
Subject: Purchase order 2024-118
Content-Type: multipart/signed; micalg=pgp-sha256;
 protocol="application/pgp-signature";
 boundary="{outer}"

This is an OpenPGP/MIME signed message (RFC 4880 and 3156)
--{outer}
{body.rstrip()}

--{outer}
Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"
Content-Description: OpenPGP digital signature
Content-Disposition: attachment; filename="OpenPGP_signature.asc"

-----BEGIN PGP SIGNATURE-----

wsF5BAABCAAjFiEE{signature[:60]}
{signature[60:124]}
=Xq9z
-----END PGP SIGNATURE-----

--{outer}--
""")


def forwarded_rfc822() -> bytes:
    """Thunderbird "Forward as Attachment": the original e-mail is a message/rfc822 part."""
    outer, inner = "------------Fw0rD1aBcDeFgHiJkLmNoP", "_000_SA1PR12MB7777INVOICE2024_"
    invoice = document_pdf("Invoice 2024-03", 2)
    return crlf(f"""
Message-ID: <f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f@example.com>
Date: Fri, 15 Mar 2024 17:15:00 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: Robin Hale <robin@example.com>
To: {FAX}
Subject: Fwd: Invoice March
Content-Type: multipart/mixed; boundary="{outer}"

This is a multi-part message in MIME format.
--{outer}
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

Please fax the invoice in the attached e-mail.

Robin

--{outer}
Content-Type: message/rfc822; name="Invoice March.eml"
Content-Disposition: attachment; filename="Invoice March.eml"

Received: from SA1PR12MB7777.namprd12.prod.outlook.com by mail.example.com;
 Thu, 14 Mar 2024 08:00:01 +0000
From: Billing <billing@vendor.example>
To: Robin Hale <robin@example.com>
Subject: Invoice March
Date: Thu, 14 Mar 2024 08:00:00 +0000
Message-ID: <SA1PR12MB7777INVOICE2024@SA1PR12MB7777.namprd12.prod.outlook.com>
Content-Type: multipart/mixed;
\tboundary="{inner}"
MIME-Version: 1.0

--{inner}
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Dear customer, your invoice for March is attached.

--{inner}
Content-Type: application/pdf; name="Invoice-2024-03.pdf"
Content-Description: Invoice-2024-03.pdf
Content-Disposition: attachment; filename="Invoice-2024-03.pdf"; size={len(invoice)}
Content-Transfer-Encoding: base64

{b64(invoice)}

--{inner}--

--{outer}--
""")


CANON_SPLIT_ID = "20240315141122.3F2A7C@iR-ADV-C5535"


def canon_split_pieces() -> list[bytes]:
    """A Canon scan split into three e-mails (message/partial), as sent over SMTP."""
    boundary = "CanonMFP_boundary_20240315141122"
    scan = scan_pdf([f"Split scan page {n}" for n in (1, 2, 3)], dpi=100, jpeg=True)
    enclosed = crlf(f"""
Message-ID: <20240315141122.0000.iR-ADV-C5535@office.example.com>
Subject: Attached Image
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="{boundary}"

--{boundary}
Content-Type: application/pdf; name="20240315141122.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="20240315141122.pdf"

{b64(scan)}
--{boundary}--
""")
    lines = enclosed.split(b"\r\n")
    third = len(lines) // 3
    chunks = [lines[:third], lines[third : 2 * third], lines[2 * third :]]
    pieces = []
    for number, chunk in enumerate(chunks, 1):
        body = b"\r\n".join(chunk) + (b"\r\n" if number < 3 else b"")
        head = crlf(f"""
From: "iR-ADV C5535" <canon@office.example.com>
To: {FAX}
Subject: Attached Image
Date: Fri, 15 Mar 2024 14:11:2{number} +0000
Message-ID: <20240315141122.000{number}.iR-ADV-C5535@office.example.com>
MIME-Version: 1.0
Content-Type: message/partial; id="{CANON_SPLIT_ID}"; number={number}; total=3
""")
        pieces.append(head + b"\r\n" + body)
    return pieces


def canon_split_forwarded_set() -> bytes:
    """All three pieces forwarded together as attachments: they can be put back together."""
    boundary = "------------S3tOfThr33P4rtsXyZ0123"
    attached = "".join(
        f"--{boundary}\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
        + piece.decode().replace("\r\n", "\n")
        + "\n"
        for piece in canon_split_pieces()
    )
    return crlf(f"""
Message-ID: <a9b8c7d6-e5f4-0312-2130-4f5e6d7c8b9a@office.example.com>
Date: Fri, 15 Mar 2024 14:20:00 +0000
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: Office Manager <office@office.example.com>
To: {FAX}
Subject: Fwd: Attached Image (3 parts)
Content-Type: multipart/mixed; boundary="{boundary}"

This is a multi-part message in MIME format.
--{boundary}
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

The scanner split this scan into three e-mails; here are all of them.

{attached}--{boundary}--
""")


FIXTURES = {
    "outlook-winmail-dat.eml": outlook_winmail_dat,
    "outlook-html-cid-logo.eml": outlook_html_cid_logo,
    "apple-mail-inline-pdf.eml": apple_mail_inline_pdf,
    "apple-mail-rich-inline-pdf.eml": apple_mail_rich_inline_pdf,
    "gmail-alternative-attachment.eml": gmail_alternative_attachment,
    "thunderbird-rfc2231-filename.eml": thunderbird_rfc2231_filename,
    "scanner-hp-octet-pdf.eml": hp_scan,
    "scanner-xerox-g4-tiff.eml": xerox_scan,
    "scanner-canon-octet-pdf.eml": canon_scan,
    "scanner-ricoh-pdf-no-extension.eml": ricoh_scan,
    "scanner-brother-jpeg-pages.eml": brother_scan,
    "scanner-kyocera-octet-tiff.eml": kyocera_scan,
    "smime-signed.eml": smime_signed,
    "pgp-mime-signed.eml": pgp_signed,
    "forwarded-rfc822.eml": forwarded_rfc822,
    "canon-partial-1-of-3.eml": lambda: canon_split_pieces()[0],
    "canon-partial-3-of-3.eml": lambda: canon_split_pieces()[2],
    "canon-partial-forwarded-set.eml": canon_split_forwarded_set,
}


def main() -> None:
    for name, make in FIXTURES.items():
        (HERE / name).write_bytes(make())
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
