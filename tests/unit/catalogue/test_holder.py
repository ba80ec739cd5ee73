"""The catalogue in force and one catalogue across processes: holders sharing a list of
versions (the database's part is tests/integration/catalogue), on a fake monotonic clock."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

import bot.catalogue.holder as holder_module
from bot.catalogue import CatalogueError, Problem
from bot.catalogue.holder import CatalogueHolder
from bot.catalogue.loader import folder_hash
from bot.catalogue.versions import Version

CHECK = 2.0


class FakeVersions:
    """`catalogue_versions` as a list; counts the looks, can be made to fail."""

    def __init__(self) -> None:
        self.rows: list[tuple[Version, str]] = []
        self.looks = 0
        self.down = False

    def newest(self) -> Version | None:
        self.looks += 1
        if self.down:
            raise ConnectionError("database down")
        return self.rows[-1][0] if self.rows else None

    def record(self, content_hash: str, origin: str) -> Version:
        if self.down:
            raise ConnectionError("database down")
        if self.rows and self.rows[-1][0].content_hash == content_hash:
            return self.rows[-1][0]
        version = Version(len(self.rows) + 1, content_hash)
        self.rows.append((version, origin))
        return version


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def keywords(folder: Path, reply: str) -> Path:
    """A flows folder holding one keyword `hi` answered with `reply`."""
    folder.mkdir(exist_ok=True)
    (folder / "keywords.yaml").write_text(
        f"keywords:\n  - {{match: hi, reply: {reply}}}\n", encoding="utf-8"
    )
    return folder


def reply(holder: CatalogueHolder) -> str | None:
    return holder.current.keywords[0].reply


@pytest.fixture
def versions() -> FakeVersions:
    return FakeVersions()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def holder(
    folder: Path, versions: FakeVersions, clock: Clock, process: str = "serve"
) -> CatalogueHolder:
    """A process's holder as `Runtime` builds it: loaded at once, then joined."""
    made = CatalogueHolder(folder, versions=versions, check_seconds=CHECK, monotonic=clock)
    assert made.reload().ok
    made.join(process)
    return made


# ---------------------------------------------------------------------------- start and reload


def test_a_start_records_its_catalogue_once(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    first = holder(folder, versions, clock)
    second = holder(folder, versions, clock, "worker")
    assert len(versions.rows) == 1  # the same files: the second adopts the first's row
    row, origin = versions.rows[0]
    assert row.content_hash == folder_hash(folder) == first.content_hash
    assert origin.startswith("serve pid ") and origin.endswith(" at start")
    assert first.running == second.running == row


def test_a_start_with_other_files_is_a_new_version(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    holder(keywords(tmp_path / "a", "v1"), versions, clock)
    deployed = holder(keywords(tmp_path / "b", "v2"), versions, clock)
    assert [row.id for row, _ in versions.rows] == [1, 2]
    assert deployed.running == versions.rows[-1][0]


def test_an_asked_reload_records_the_version_an_unasked_one_does_not(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one = holder(folder, versions, clock)
    keywords(folder, "v2")
    result = one.reload(how="via API")
    assert result.ok and result.version == Version(2, folder_hash(folder))
    assert versions.rows[-1][1].endswith(" via API")
    assert one.running == result.version

    keywords(folder, "v3")
    assert one.reload().ok  # not asked (nor joined): in force here only
    assert len(versions.rows) == 2 and one.running is None
    assert one.status()["in_sync"] is False


def test_a_process_that_has_not_joined_records_nothing(
    tmp_path: Path, versions: FakeVersions
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one_shot = CatalogueHolder(folder, versions=versions)
    assert one_shot.reload(how="via API").version is None
    one_shot.follow()
    assert versions.rows == [] and versions.looks == 0


def test_a_failing_reload_keeps_the_last_good_catalogue_and_records_nothing(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one = holder(folder, versions, clock)
    (folder / "broken.yaml").write_text("flow: x\nsteps: [{ask: a}]\n", encoding="utf-8")
    result = one.reload(how="via API")
    assert not result.ok and result.problems and one.last_problems
    assert reply(one) == "v1" and len(versions.rows) == 1


# ---------------------------------------------------------------------------- following


def test_every_process_moves_to_a_reload_made_in_another(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    answered, other, worker = (
        holder(folder, versions, clock, p) for p in ("serve", "serve", "worker")
    )
    keywords(folder, "v2")
    assert answered.reload(how="via API").ok  # the gunicorn worker that answered the API

    other.follow()
    worker.follow()
    assert reply(other) == reply(worker) == "v1"  # not looked yet: CHECK has not passed

    clock.now += CHECK
    other.follow()
    worker.follow()
    assert reply(other) == reply(worker) == "v2"
    newest = versions.rows[-1][0]
    assert other.running == worker.running == answered.running == newest
    assert other.status() == {
        "running": newest.json(),
        "newest": newest.json(),
        "in_sync": True,
        "problem": None,
    }
    assert len(versions.rows) == 2  # following writes no row


def test_a_look_is_one_read_per_check_interval(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    one = holder(keywords(tmp_path / "flows", "v1"), versions, clock)
    looks = versions.looks
    for _ in range(1000):
        one.follow()
    assert versions.looks == looks
    clock.now += CHECK
    for _ in range(1000):
        one.follow()
    assert versions.looks == looks + 1


def test_the_same_files_recorded_elsewhere_are_adopted_without_a_reload(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one = holder(folder, versions, clock)
    catalogue = one.current
    versions.rows.append((Version(7, one.content_hash), "another host, same files"))
    clock.now += CHECK
    one.follow()
    assert one.current is catalogue and one.running == Version(7, one.content_hash)


def test_a_folder_that_does_not_hold_the_newest_version_keeps_its_catalogue(
    tmp_path: Path, versions: FakeVersions, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    here = holder(keywords(tmp_path / "here", "v1"), versions, clock)
    there = holder(keywords(tmp_path / "there", "v1 there"), versions, clock)
    keywords(tmp_path / "there", "v2 there")
    assert there.reload(how="via API").ok
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            clock.now += CHECK
            here.follow()
            there.follow()
    assert reply(here) == "v1" and reply(there) == "v2 there"
    status = here.status()
    assert status["in_sync"] is False and status["newest"] == there.running.json()  # type: ignore[union-attr]
    assert "the flows folder here holds" in status["problem"]
    assert caplog.text.count("the flows folder here holds") == 1  # said once, not every look
    # No flip-flop: only the asked reload and the starts wrote rows.
    assert len(versions.rows) == 3


def test_a_broken_edit_is_not_followed_and_its_fix_is(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    answered, other = holder(folder, versions, clock), holder(folder, versions, clock)
    keywords(folder, "v2")
    assert answered.reload(how="via API").ok
    saved = (folder / "keywords.yaml").read_bytes()
    (folder / "keywords.yaml").write_text("keywords: [{match: hi\n", encoding="utf-8")
    clock.now += CHECK
    other.follow()  # the files changed again before this process looked: not version 2
    assert reply(other) == "v1" and other.status()["problem"]
    (folder / "keywords.yaml").write_bytes(saved)
    clock.now += CHECK
    other.follow()
    assert reply(other) == "v2" and other.status()["problem"] is None


def test_files_that_hash_right_but_fail_to_load_here_are_tried_once(
    tmp_path: Path, versions: FakeVersions, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one = holder(folder, versions, clock)
    keywords(folder, "v2")
    versions.record(folder_hash(folder), "elsewhere")
    loads = []

    def failing(path: Path) -> None:
        loads.append(path)
        raise CatalogueError([Problem("image.png", 1, 1, "missing here")])

    monkeypatch.setattr(holder_module, "load_catalogue", failing)
    for _ in range(3):
        clock.now += CHECK
        one.follow()
    assert len(loads) == 1 and reply(one) == "v1"
    assert [str(p) for p in one.last_problems] == ["image.png:1:1: missing here"]
    assert "1 problem(s)" in one.status()["problem"]


def test_the_request_path_moves_in_a_thread_of_its_own(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    answered, other = holder(folder, versions, clock), holder(folder, versions, clock)
    keywords(folder, "v2")
    assert answered.reload(how="via API").ok
    clock.now += CHECK
    other.follow(wait=False)
    assert other._mover is not None
    other._mover.join(10)
    assert reply(other) == "v2"


def test_sighup_reloads_in_a_thread_of_its_own(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one = holder(folder, versions, clock)
    keywords(folder, "v2")
    one.reload_soon("via SIGHUP")
    for thread in threading.enumerate():
        if thread.name == "catalogue-reload":
            thread.join(10)
    assert reply(one) == "v2" and versions.rows[-1][1].endswith(" via SIGHUP")


def test_a_database_outage_costs_the_versions_not_the_catalogue(
    tmp_path: Path, versions: FakeVersions, clock: Clock
) -> None:
    folder = keywords(tmp_path / "flows", "v1")
    one = holder(folder, versions, clock)
    versions.down = True
    keywords(folder, "v2")
    result = one.reload(how="via API")
    assert result.ok and result.version is None and reply(one) == "v2"
    clock.now += CHECK
    one.follow()  # logged, nothing else
    assert one.status() == {
        "running": {"id": None, "hash": one.content_hash},
        "newest": None,
        "in_sync": False,
        "problem": None,
    }
    versions.down = False
    assert one.reload(how="via API").version == Version(2, one.content_hash)
