"""`column IN (<many ids>)` as one bound parameter instead of one per id.

SQLAlchemy expands `in_([...])` into a placeholder per value, which costs more to compile
than the statement costs to run when there are thousands; a JSON array (SQLite `json_each`) or
an array parameter (PostgreSQL `= ANY`) is one parameter whatever its length."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, any_, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def id_in(column: ColumnElement[Any], ids: Sequence[int], *, sqlite: bool) -> ColumnElement[bool]:
    if sqlite:
        values = func.json_each(json.dumps(list(ids))).table_valued("value")
        return column.in_(select(values.c.value))
    return column == any_(cast(list(ids), ARRAY(BigInteger)))
