"""`POST /callbacks/{provider}`: the one door through which providers report.

The request is turned into a framework-free `CallbackRequest` (so adapters and their tests do
not depend on Starlette), handed to the adapter to authenticate and parse, and what it yields
goes to the store.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from bridge.models import CallbackRequest

MAX_CALLBACK_BYTES = 64 * 1024 * 1024


async def to_callback_request(request: Request) -> CallbackRequest:
    """Read the whole request once; decode form fields and file parts when it is a form."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        parsed = await request.form(max_part_size=MAX_CALLBACK_BYTES)
        for key, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                files[key] = await value.read()
            else:
                form[key] = value
        await parsed.close()
    return CallbackRequest(
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        content_type=content_type,
        form=form,
        files=files,
    )
