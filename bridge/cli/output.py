"""What the commands print: tables, records, JSON, and one-paragraph errors."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from datetime import UTC, date, datetime
from typing import Any

Columns = list[tuple[str, str]]  # (record key, column title)


class CommandError(Exception):
    """A one-paragraph message for the user; exit status 1."""


def paragraph(text: str) -> str:
    """One line of prose ending in a full stop, whatever shape the source text had."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line] or ["(no details)"]
    joined = [line if line.endswith((".", "!", "?", ":")) else f"{line}." for line in lines[:-1]]
    last = lines[-1] if lines[-1].endswith((".", "!", "?")) else f"{lines[-1]}."
    return " ".join([*joined, last])


def mask_url(url: str) -> str:
    """A URL with its password (`user:secret@host`) and any `token=` value hidden."""
    url = re.sub(r"^([a-z0-9+.-]+://[^/:@]*):[^/@]*@", r"\1:***@", url, flags=re.IGNORECASE)
    return re.sub(r"([?&]token=)[^&#]*", r"\1***", url)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    json.dump(_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def cell(value: Any) -> str:
    """A value as a table cell or record line shows it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    return "" if value is None else " ".join(str(value).split())


def print_table(rows: list[dict[str, Any]], columns: Columns) -> None:
    """Left-aligned columns under upper-case titles; the last column runs free."""
    if not rows:
        print("(none)")
        return
    cells = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (_, title) in enumerate(columns)]
    widths[-1] = 0
    print("  ".join(t.ljust(w) for (_, t), w in zip(columns, widths, strict=True)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())


def print_record(record: dict[str, Any]) -> None:
    """`key  value` lines; lists of dicts (recipients, history) as indented items."""
    width = max(len(k) for k in record)
    for key, value in record.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{key}:")
            for item in value:
                line = ", ".join(f"{k}={cell(v)}" for k, v in item.items())
                print(textwrap.fill(line, 100, initial_indent="  - ", subsequent_indent="      "))
        else:
            print(f"{key.ljust(width)}  {cell(value)}".rstrip())


def show(value: dict[str, Any] | list[dict[str, Any]], as_json: bool, columns: Columns) -> None:
    """A list as a table (or JSON), one record as key/value lines (or JSON)."""
    if as_json:
        print_json(value)
    elif isinstance(value, list):
        print_table(value, columns)
    else:
        print_record(value)
