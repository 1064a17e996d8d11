"""MIME → ParsedMessage (documents, cover-note text, recipients' names); no I/O.

tree.py      parse safely, repair broken boundaries, walk the tree without recursion
partial.py   message/partial pieces put back together (or why they cannot be)
headers.py   header values as text (8-bit, RFC 2047, RFC 2231)
text.py      text parts and HTML as readable text
parse.py     the walk that sorts leaves into body text, parts and parts set aside
"""

from __future__ import annotations

from bridge.message.headers import decode_text
from bridge.message.parse import (
    REASON_EMPTY,
    REASON_EXTERNAL,
    REASON_FRAGMENT,
    REASON_HTML_VERSION,
    REASON_INNER_TEXT,
    REASON_LOGO,
    REASON_PGP_CONTROL,
    REASON_REPORT,
    REASON_SIGNATURE,
    SIGNATURE_TYPES,
    MessagePart,
    ParsedMessage,
    parse_headers,
    parse_message,
)
from bridge.message.text import html_to_text

__all__ = [
    "REASON_EMPTY",
    "REASON_EXTERNAL",
    "REASON_FRAGMENT",
    "REASON_HTML_VERSION",
    "REASON_INNER_TEXT",
    "REASON_LOGO",
    "REASON_PGP_CONTROL",
    "REASON_REPORT",
    "REASON_SIGNATURE",
    "SIGNATURE_TYPES",
    "MessagePart",
    "ParsedMessage",
    "decode_text",
    "html_to_text",
    "parse_headers",
    "parse_message",
]
