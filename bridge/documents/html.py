"""An HTML-only mail body as fax pages, its `cid:` images where the sender put them.

Many clients and scanners send HTML with no plain-text version; reading it as stripped text
loses its tables and its pictures. The markup is first cleaned with nh3 (the Ammonia
sanitiser): no scripts, no forms, no frames, and no image but those sent with the mail, so
rendering never fetches anything from the network (no tracking pixels, no waiting on a
remote host). LibreOffice then lays it out as a printed page.

Which inline images are logos: those inside a signature block (decided while parsing, see
`bridge.message.text.signature_cids`) and small ones (neither side over 320 px: icons,
letterhead logos). Only the others are placed on the page.
"""

from __future__ import annotations

from io import BytesIO

import nh3
from PIL import Image

from bridge.documents.convert import Converted
from bridge.documents.detect import sniff
from bridge.documents.external import office_to_pdf
from bridge.documents.office.client import OfficeEndpoint
from bridge.message import MessagePart
from bridge.message.text import norm_cid

LOGO_MAX_PX = 320
_TAGS = nh3.ALLOWED_TAGS | {"font", "center", "big", "small", "tt"}
_CELL = {"colspan", "rowspan", "align", "valign", "width", "height", "bgcolor", "nowrap"}
_ATTRIBUTES = {
    "*": {"style", "align", "title", "dir", "lang"},
    "img": {"src", "alt", "width", "height", "border"},
    "a": {"href"},
    "font": {"color", "face", "size"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor", "align"},
    "td": _CELL,
    "th": _CELL,
    "tr": {"align", "valign", "bgcolor"},
    "col": {"width", "span"},
    "hr": {"width", "size", "noshade"},
}
# Style properties that change how the page looks and can load nothing (no url(), no @import).
_STYLE = frozenset(
    """color background-color font font-family font-size font-style font-weight
    text-align text-decoration text-indent text-transform line-height letter-spacing
    white-space vertical-align width height min-width max-width margin margin-top margin-right
    margin-bottom margin-left padding padding-top padding-right padding-bottom padding-left
    border border-top border-right border-bottom border-left border-color border-style
    border-width border-collapse border-spacing list-style-type display""".split()
)


def is_logo(part: MessagePart) -> bool:
    """A small inline image (or one that cannot even be measured): a logo or an icon."""
    try:
        with Image.open(BytesIO(part.data)) as image:
            return max(image.size) <= LOGO_MAX_PX
    except Exception:
        return True


def html_document(markup: str, images: list[MessagePart], endpoint: OfficeEndpoint) -> Converted:
    """The HTML body with `images` (by Content-ID) in place; raises Unusable."""
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    for number, image in enumerate(images, 1):
        name = f"image-{number}.{sniff(image.data) or 'bin'}"
        files[name] = image.data
        names[norm_cid(image.content_id)] = name

    def local_images_only(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            if value[:4].lower() == "cid:":
                return names.get(norm_cid(value[4:]))
            return value if value[:11].lower() == "data:image/" else None
        return value

    clean = nh3.clean(
        markup,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=local_images_only,
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
        filter_style_properties=set(_STYLE),
        strip_comments=True,
        link_rel=None,
    )
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title></title></head>'
        f"<body>{clean}</body></html>\n"
    )
    return office_to_pdf(endpoint, page.encode("utf-8"), "html", extra_files=files)
