"""Fixtures of the storage tests: a database with no tables, for the migration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database with no tables yet (the migrations are run by the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('migrate') / 'm.db'}"
        return
    with postgres_schema("m") as url:
        yield url
