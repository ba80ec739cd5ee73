"""`column IN (<many ids>)` as one bound parameter instead of one per id.

SQLAlchemy expands `in_([...])` into a placeholder per value, which costs more to compile
than the statement costs to run when there are thousands; a JSON array (SQLite `json_each`) or
an array parameter (PostgreSQL `= ANY`) is one parameter whatever its length."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, any_, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute


def id_in(
    column: ColumnElement[Any] | QueryableAttribute[Any], ids: Sequence[int], *, sqlite: bool
) -> ColumnElement[bool]:
    if sqlite:
        values = func.json_each(json.dumps(list(ids))).table_valued("value")
        return column.in_(select(values.c.value))
    # The array is written into the statement as its text form, `CAST('{1,2,3}' AS BIGINT[])`
    # (`literal_execute`: rendered at execution, so SQLAlchemy's statement cache still holds
    # one entry), not sent as a parameter:
    # - psycopg's adapter for a Python list of ints costs ~8 ms per 5,000 ids, a join of
    #   strings well under one;
    # - as a literal it is a constant to the planner, which then knows how many ids there are
    #   and matches them through a hash table. As a parameter (or a cast parameter), `= ANY`
    #   tests each row against the ids one by one: when the planner chose a sequential scan
    #   (a table not yet analysed after a bulk import, a small table), 5,000 ids against
    #   100,000 rows took 9.7 s instead of 17 ms.
    text_form = "{" + ",".join(map(str, map(int, ids))) + "}"
    return column == any_(cast(literal(text_form, Text, literal_execute=True), ARRAY(BigInteger)))
