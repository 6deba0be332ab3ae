"""Rows printed for people (aligned columns, kubectl-style upper-case headers) or for scripts (JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """An aligned table of `columns` (a missing or empty value shows as "-")."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    header = [c.upper().replace("_", " ") for c in columns]
    widths = [max(len(x) for x in column) for column in zip(header, *cells, strict=True)]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in [header, *cells]
    )


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)
