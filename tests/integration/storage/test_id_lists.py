"""`storage.id_lists.id_in`: thousands of ids as one value, on both databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, func, select

from storage.db import Database
from storage.id_lists import id_in
from storage.models import Friend
from tests.support import add_friends


@pytest.mark.parametrize("pick", ["none", "one", "every_third", "repeated", "unknown"])
def test_selects_exactly_the_given_ids(db: Database, pick: str) -> None:
    ids = add_friends(db, 30)
    wanted = {
        "none": [],
        "one": [ids[4]],
        "every_third": ids[::3],
        "repeated": [ids[1], ids[1], ids[2]],
        "unknown": [max(ids) + 1, ids[0]],
    }[pick]
    with db.read() as session:
        found = session.scalars(
            select(Friend.id).where(id_in(Friend.id, wanted, sqlite=db.is_sqlite))
        ).all()
    assert sorted(found) == sorted(set(wanted) & set(ids))


def test_postgresql_gets_the_ids_as_a_constant_of_the_statement(db: Database) -> None:
    """The array must reach PostgreSQL inside the statement, not as a parameter: a constant
    array is matched through a hash of its ids, a parameter's one id after another. When the
    planner chose a sequential scan (a table not yet analysed after a bulk import, a small
    one), 5,000 ids x 100,000 enrolments took 9.7 s that way instead of 17 ms."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's planner")
    ids = add_friends(db, 40)
    wanted = ids[::4]
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    statement = select(func.count()).where(id_in(Friend.id, wanted, sqlite=False))
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.read() as session:
            assert session.execute(statement).scalar_one() == len(wanted)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    sql, parameters = next((q, p) for q, p in sent if "count(" in q)
    array = "{" + ",".join(map(str, wanted)) + "}"
    assert f"CAST('{array}' AS BIGINT[])" in sql
    assert array not in json.dumps(parameters, default=str)
