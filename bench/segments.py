#!/usr/bin/env python3
"""Segments benchmark: count and preview a 5-clause segment over N generated friends, then
broadcast to a B-friend segment through the LINE emulator.

    .venv/bin/python bench/segments.py --friends 1000000 --backend sqlite|postgresql \\
        --broadcast 200000 [--repeat 5] [--skip-broadcast] [--seed 42]

Seeding (deterministic: `--seed`; times are relative to the moment the run starts): N friends
(3% blocked) with ~10 tags each out of 50 of skewed popularity (the first held by 70%, the
last by ~10%), typed fields (age 90% of them, gender, prefecture, points, last_visit) and clicks
on three tracked links over the last 60 days; plus the tag 冬キャンペーン held by exactly B
following friends (~16 rows per friend in all, 10 of them tags). A child process
generates the rows in chunks of 20,000 friends while this one writes them with the driver's
bulk path (SQLite executemany, PostgreSQL COPY), plain indexes and PostgreSQL's foreign keys
dropped meanwhile and made again at the end; then ANALYZE. The catalogue (fields, tags, links
and the two named segments) is `bench/flows_segments/`.

Count: `bot.segments.queries.count_matching` and `sample_matching` (limit 10) of the segment
`bench_target` (tag 会員, not tag 購入済み, age between 30 and 49, clicked coupon within 30d,
prefecture 東京都 or 神奈川県; ~1% of the friends): median and max of `--repeat` runs after a
warm-up, each in its own read session as an API request has. Cross-checks: the count the
generator expects, a hand-written SQL count (IN / NOT EXISTS over the same indexes, timed
too; not NOT IN, which PostgreSQL runs row by row over a large subquery) and every sampled
friend being one the generator expects. On SQLite the counts are timed as loaded
(as a bulk import leaves them) and again after ANALYZE (which `stepline db upgrade` runs).

Broadcast: starts `stepline emulator --rate-limits default` and `stepline worker --tick 0.2`
as processes, registers the B recipients at the emulator, creates the broadcast
(`create_broadcast(runtime, segment=<bench_broadcast's condition>, messages=[{text}])`) and
measures from the creation until `broadcast_status(...)["status"] == "done"` (polled every
0.2 s): the requests the emulator accepted, the recipients billed, a timeline from the rows'
timestamps (claimed, batches queued, requests accepted, done), the worker's RSS (sampled every
50 ms) and the CPU seconds of the worker and the emulator. The floor is what LINE's multicast
limit alone needs: multicasts / 200 per second. (The named segments' conditions are passed as
conditions: the figures are the same as by name.)

Goals: count under 1 s on PostgreSQL and 3 s on SQLite; broadcast within 1.5x of the floor;
worker peak RSS under 200 MB. Mautic rebuilds a 260k-contact segment in about 40 minutes
(2,400 s); stepline should be three orders of magnitude faster.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import multiprocessing
import os
import platform
import queue
import random
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import psutil
import requests
from sqlalchemy import bindparam, create_engine, func, select, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sequences import register, start_worker  # noqa: E402
from webhook import (  # noqa: E402
    SECRET,
    TOKEN,
    bench_env,
    cpu_seconds,
    database,
    emulator_command,
    free_port,
    process,
)

from bot.catalogue import Catalogue  # noqa: E402
from bot.catalogue.loader import load_catalogue  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.line.ratelimit import DEFAULT_LIMITS  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Broadcast, OutboxMessage, UTCDateTime  # noqa: E402

FLOWS = ROOT / "bench" / "flows_segments"
TARGET = "bench_target"  # the 5-clause segment (bench/flows_segments/segments.yaml)
AUDIENCE = "bench_broadcast"  # {tag: 冬キャンペーン}
MULTICAST_PER_SECOND = DEFAULT_LIMITS["multicast"]  # LINE's: 200 requests/s
MAUTIC_SECONDS = 40 * 60  # Mautic rebuilding a 260k-contact segment
GOAL_COUNT = {"postgresql": 1.0, "sqlite": 3.0}
GOAL_BROADCAST_RATIO = 1.5
GOAL_RSS_MB = 200.0

# Most popular first: the generator gives them the shares `tag_shares` makes (~70% … ~10%).
TAGS = [
    "会員",
    "メルマガ希望",
    "アンケート回答",
    "クーポン取得",
    "購入済み",
    "リピーター",
    "来店済み",
    "予約経験",
    "口コミ投稿",
    "紹介者あり",
    *(
        f"興味:{t}"
        for t in [
            "スキンケア",
            "ヘアケア",
            "ネイル",
            "アロマ",
            "ヨガ",
            "ダイエット",
            "食事",
            "旅行",
            "育児",
            "ペット",
            "ファッション",
            "メイク",
            "サプリ",
            "睡眠",
            "腰痛",
            "肩こり",
            "冷え性",
            "更年期",
            "産後ケア",
            "眼精疲労",
        ]
    ),
    *(
        f"流入:{t}"
        for t in [
            "Instagram",
            "X",
            "チラシ",
            "店頭QR",
            "検索広告",
            "紹介",
            "イベント",
            "YouTube",
            "TikTok",
            "LINE広告",
        ]
    ),
    "VIP",
    "ゴールド会員",
    "シルバー会員",
    "休眠",
    "誕生月",
    "平日希望",
    "週末希望",
    "朝希望",
    "夜希望",
    "オンライン希望",
]
CAMPAIGN_TAG = "冬キャンペーン"
TAG_A, TAG_B = "会員", "購入済み"
TAG_IDS = {name: i + 1 for i, name in enumerate([*TAGS, CAMPAIGN_TAG])}
BLOCKED_SHARE = 0.03
PREFECTURES = {
    "東京都": 20,
    "神奈川県": 10,
    "大阪府": 9,
    "愛知県": 7,
    "埼玉県": 7,
    "千葉県": 6,
    "兵庫県": 5,
    "福岡県": 5,
    "北海道": 5,
    "京都府": 3,
    "静岡県": 3,
    "広島県": 3,
    "宮城県": 3,
    "茨城県": 3,
    "新潟県": 3,
    "長野県": 2,
    "岡山県": 2,
    "熊本県": 2,
    "沖縄県": 2,
}
TARGET_PREFECTURES = ("東京都", "神奈川県")
AGE_BANDS = [((18, 29), 25), ((30, 39), 22), ((40, 49), 20), ((50, 59), 16), ((60, 79), 17)]
GENDERS = {"female": 60, "male": 37, "other": 3}
LINKS = {"coupon": 0.40, "campaign": 0.25, "survey": 0.10}  # share of friends who clicked
CLICK_DAYS = 60
TARGET_CLICK_LINK, TARGET_CLICK_DAYS = "coupon", 30
FIELD_SHARES = {"age": 0.90, "gender": 0.95, "prefecture": 0.85, "points": 0.70, "last_visit": 0.6}

T = TypeVar("T")


def tag_shares(count: int, mean: float, skew: float = 0.6, cap: float = 0.7) -> list[float]:
    """Zipf-like shares c / rank^skew (at most `cap`) whose sum is `mean` tags per friend."""

    def total(c: float) -> float:
        return sum(min(cap, c / (k + 1) ** skew) for k in range(count))

    low, high = 0.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if total(middle) < mean else (low, middle)
    return [min(cap, low / (k + 1) ** skew) for k in range(count)]


def cumulative(weights: Sequence[float]) -> list[float]:
    out, running = [], 0.0
    for w in weights:
        running += w
        out.append(running)
    return out


# --------------------------------------------------------------------------- writing rows

SEEDED_TABLES = ("friends", "tags", "friend_tags", "field_values", "link_clicks")


def sqlite_time() -> Callable[[datetime], Any]:
    """How SQLAlchemy stores a `UTCDateTime` on SQLite (text that orders as time does)."""
    dialect = sqlite_dialect.dialect()
    processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    return cast(Callable[[datetime], Any], processor)


class Writer:
    """Bulk rows into one table at a time: SQLite executemany, PostgreSQL COPY."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            database_path = make_url(url).database
            assert database_path
            self.sqlite = sqlite3.connect(database_path, isolation_level=None)
            # A throwaway database: no journal, no syncs while seeding (WAL again at close).
            self.sqlite.execute("PRAGMA journal_mode=OFF")
            self.sqlite.execute("PRAGMA synchronous=OFF")
            self.sqlite.execute("PRAGMA cache_size=-262144")  # 256 MiB while seeding
            self._sqlite_time = sqlite_time()
        else:
            self.engine = create_engine(url)
            self.raw = self.engine.raw_connection()
            self.pg: Any = self.raw.driver_connection

    def time(self, moment: datetime | None) -> Any:
        """A UTC datetime as the driver takes it (SQLite: the text SQLAlchemy would store)."""
        if moment is None:
            return None
        return self._sqlite_time(moment) if self.is_sqlite else moment

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.is_sqlite:
            self.sqlite.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.sqlite.execute("ROLLBACK")
                raise
            self.sqlite.execute("COMMIT")
        else:
            try:
                yield
            except BaseException:
                self.pg.rollback()
                raise
            self.pg.commit()

    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.is_sqlite:
            marks = ", ".join("?" for _ in columns)
            self.sqlite.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            return
        with (
            self.pg.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.is_sqlite:
            return list(self.sqlite.execute(sql))
        with self.pg.cursor() as cursor:
            cursor.execute(sql)
            rows = list(cursor.fetchall())
        self.pg.commit()
        return rows

    def execute(self, sql: str) -> None:
        if self.is_sqlite:
            self.sqlite.execute(sql)
        else:
            with self.pg.cursor() as cursor:
                cursor.execute(sql)
            self.pg.commit()

    def drop_for_loading(self) -> list[str]:
        """Drop the seeded tables' plain indexes and (PostgreSQL) foreign keys, whose per-row
        checks cost more than the rows; the DDL that makes them again once the rows are in
        (one index build and one validating join each). Primary keys and unique
        constraints stay. SQLite's bare connection does not check foreign keys anyway."""
        tables = ", ".join(f"'{t}'" for t in SEEDED_TABLES)
        if self.is_sqlite:
            found = self.query(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                f"AND tbl_name IN ({tables}) AND sql IS NOT NULL AND sql NOT LIKE '%UNIQUE%'"
            )
            for name, _ in found:
                self.execute(f'DROP INDEX "{name}"')
            return [ddl for _, ddl in found]
        indexes = self.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            f"AND tablename IN ({tables}) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint) AND indexdef NOT LIKE '%UNIQUE%'"
        )
        foreign_keys = self.query(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            f"WHERE c.contype = 'f' AND n.nspname = current_schema() "
            f"AND c.conrelid::regclass::text IN ({tables})"
        )
        for table, name, _ in foreign_keys:
            self.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            self.execute(f'DROP INDEX "{name}"')
        return [ddl for _, ddl in indexes] + [
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
            for table, name, definition in foreign_keys
        ]

    def close(self) -> None:
        if self.is_sqlite:
            self.sqlite.execute("PRAGMA journal_mode=WAL")
            self.sqlite.close()
        else:
            self.raw.close()
            self.engine.dispose()


# --------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    """What the generator made, and what the segments must find in it."""

    now: datetime
    friends: int = 0
    blocked: int = 0
    tag_rows: int = 0
    field_rows: int = 0
    clicks: int = 0
    target: set[str] = field(default_factory=set)  # LINE user ids `bench_target` must match
    recipients: list[str] = field(default_factory=list)  # following holders of the campaign tag
    seconds: float = 0.0
    index_seconds: float = 0.0

    @property
    def following(self) -> int:
        return self.friends - self.blocked


def hits(size: int, share: float, rnd: Callable[[], float]) -> list[int]:
    """The positions in range(size) that a Bernoulli(share) trial picks, drawn by skipping
    geometric gaps (one draw per pick rather than one per position)."""
    if share <= 0:
        return []
    if share >= 1:
        return list(range(size))
    log_miss = math.log(1.0 - share)
    out: list[int] = []
    i = -1
    while True:
        i += 1 + int(math.log(1.0 - rnd()) / log_miss)
        if i >= size:
            return out
        out.append(i)


FRIEND_COLUMNS = (
    "id",
    "line_user_id",
    "display_name",
    "status",
    "followed_at",
    "blocked_at",
    "created_at",
)
FIELD_COLUMNS = (
    "friend_id",
    "name",
    "type",
    "value_json",
    "value_number",
    "value_text",
    "value_datetime",
    "updated_at",
)


@dataclass
class Chunk:
    done: int  # friends generated so far
    friends: list[tuple[Any, ...]]
    tags: list[tuple[Any, ...]]
    fields: list[tuple[Any, ...]]
    clicks: list[tuple[Any, ...]]


def generate(
    seeded: Seeded, broadcast: int, rng: random.Random, to_db: Callable[[datetime], Any], chunk: int
) -> Iterator[Chunk]:
    """The rows of `seeded.friends` friends, chunk by chunk; fills in what `seeded` expects."""
    now, friends = seeded.now, seeded.friends
    blocked_ids = set(rng.sample(range(1, friends + 1), round(friends * BLOCKED_SHARE)))
    seeded.blocked = len(blocked_ids)
    if broadcast > seeded.following:
        raise SystemExit(f"--broadcast {broadcast} > {seeded.following} following friends")
    campaign_share = broadcast / seeded.following if seeded.following else 0.0
    shares = tag_shares(len(TAGS), mean=10.0 - campaign_share)
    campaign_id, a_id, b_id = TAG_IDS[CAMPAIGN_TAG], TAG_IDS[TAG_A], TAG_IDS[TAG_B]
    prefectures, prefecture_cum = list(PREFECTURES), cumulative(list(PREFECTURES.values()))
    bands, band_cum = [b for b, _ in AGE_BANDS], cumulative([w for _, w in AGE_BANDS])
    genders, gender_cum = list(GENDERS), cumulative(list(GENDERS.values()))
    click_since = now - timedelta(days=TARGET_CLICK_DAYS)
    rnd, randint = rng.random, rng.randint
    # Algorithm S: exactly `broadcast` of the following friends get the campaign tag.
    need, left = broadcast, seeded.following

    for start in range(0, friends, chunk):
        size = min(chunk, friends - start)
        followed = [now - timedelta(seconds=int(rnd() * 730 * 86400)) for _ in range(size)]
        at = [to_db(moment) for moment in followed]
        tag_rows: list[tuple[Any, ...]] = []
        held: dict[int, set[int]] = {}
        for tid, share in enumerate(shares, start=1):
            picked = hits(size, share, rnd)
            tag_rows += [(start + i + 1, tid, at[i], "bench") for i in picked]
            if tid in (a_id, b_id):
                held[tid] = set(picked)
        has_a, has_b = held[a_id], held[b_id]
        friend_rows: list[tuple[Any, ...]] = []
        field_rows: list[tuple[Any, ...]] = []
        click_rows: list[tuple[Any, ...]] = []
        for i in range(size):
            fid = start + i + 1
            user = f"U{rng.getrandbits(128):032x}"
            is_blocked = fid in blocked_ids
            if is_blocked:
                blocked_at = followed[i] + (now - followed[i]) * rnd()
                friend_rows.append((fid, user, "", "blocked", at[i], to_db(blocked_at), at[i]))
                if rnd() < campaign_share:
                    tag_rows.append((fid, campaign_id, at[i], "bench"))
            else:
                friend_rows.append((fid, user, "", "following", at[i], None, at[i]))
                if rnd() * left < need:
                    tag_rows.append((fid, campaign_id, at[i], "bench"))
                    seeded.recipients.append(user)
                    need -= 1
                left -= 1

            age: int | None = None
            prefecture: str | None = None
            if rnd() < FIELD_SHARES["age"]:
                low, high = bands[bisect.bisect(band_cum, rnd() * band_cum[-1])]
                age = randint(low, high)
                field_rows.append((fid, "age", "integer", str(age), float(age), None, None, at[i]))
            if rnd() < FIELD_SHARES["gender"]:
                gender = genders[bisect.bisect(gender_cum, rnd() * gender_cum[-1])]
                field_rows.append(
                    (fid, "gender", "choice", f'"{gender}"', None, gender, None, at[i])
                )
            if rnd() < FIELD_SHARES["prefecture"]:
                prefecture = prefectures[bisect.bisect(prefecture_cum, rnd() * prefecture_cum[-1])]
                field_rows.append(
                    (
                        fid,
                        "prefecture",
                        "text",
                        json.dumps(prefecture),
                        None,
                        prefecture,
                        None,
                        at[i],
                    )
                )
            if rnd() < FIELD_SHARES["points"]:
                points = randint(0, 5000)
                field_rows.append(
                    (fid, "points", "integer", str(points), float(points), None, None, at[i])
                )
            if rnd() < FIELD_SHARES["last_visit"]:
                visit = now - timedelta(seconds=int(rnd() * 365 * 86400))
                iso = f'"{visit.isoformat().replace("+00:00", "Z")}"'
                field_rows.append(
                    (fid, "last_visit", "datetime", iso, None, None, to_db(visit), at[i])
                )

            clicked_recently = False
            for link, share in LINKS.items():
                if rnd() >= share:
                    continue
                for _ in range(1 + (rnd() < 0.4) + (rnd() < 0.15)):
                    moment = now - timedelta(seconds=int(rnd() * CLICK_DAYS * 86400))
                    click_rows.append((fid, link, "broadcast:bench", to_db(moment)))
                    if link == TARGET_CLICK_LINK and moment >= click_since:
                        clicked_recently = True

            if (
                not is_blocked
                and i in has_a
                and i not in has_b
                and age is not None
                and 30 <= age <= 49
                and clicked_recently
                and prefecture in TARGET_PREFECTURES
            ):
                seeded.target.add(user)

        yield Chunk(start + size, friend_rows, tag_rows, field_rows, click_rows)


def produce(
    out: Any, now: datetime, friends: int, broadcast: int, rng_seed: int, sqlite: bool, chunk: int
) -> None:
    """The generator's process: chunks of rows into `out`, then the filled-in `Seeded`."""
    try:
        to_db = sqlite_time() if sqlite else (lambda moment: moment)
        seeded = Seeded(now=now, friends=friends)
        for item in generate(seeded, broadcast, random.Random(rng_seed), to_db, chunk):
            out.put(item)
        out.put(seeded)
    except BaseException as exc:
        out.put(RuntimeError(f"generator: {exc!r}"))


def seed(url: str, friends: int, broadcast: int, rng_seed: int, chunk: int = 20_000) -> Seeded:
    """Rows generated in a child process while this one writes them (a thread would hold
    the GIL the driver needs between rows)."""
    now = datetime.now(UTC).replace(microsecond=0)
    context = multiprocessing.get_context("fork")
    chunks: Any = context.Queue(maxsize=3)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    child = context.Process(
        target=produce, args=(chunks, now, friends, broadcast, rng_seed, sqlite, chunk)
    )
    child.start()
    writer = Writer(url)
    rebuild = writer.drop_for_loading()
    with writer.transaction():
        writer.write("tags", ("id", "name"), [(i, name) for name, i in TAG_IDS.items()])
    started = time.perf_counter()
    tag_rows = field_rows = clicks = 0
    while True:
        try:
            item = chunks.get(timeout=1)
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"the generator died (exit code {child.exitcode})") from None
            continue
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Seeded):
            seeded = item
            break
        with writer.transaction():
            writer.write("friends", FRIEND_COLUMNS, item.friends)
            writer.write("friend_tags", ("friend_id", "tag_id", "added_at", "reason"), item.tags)
            writer.write("field_values", FIELD_COLUMNS, item.fields)
            writer.write("link_clicks", ("friend_id", "link", "source", "clicked_at"), item.clicks)
        tag_rows += len(item.tags)
        field_rows += len(item.fields)
        clicks += len(item.clicks)
        elapsed = time.perf_counter() - started
        rows = item.done + tag_rows + field_rows + clicks
        print(
            f"  seeded {item.done:,}/{friends:,} friends, {rows:,} rows "
            f"({rows / elapsed:,.0f} rows/s)   ",
            end="\r",
            flush=True,
        )
    child.join()
    seeded.tag_rows, seeded.field_rows, seeded.clicks = tag_rows, field_rows, clicks
    print(flush=True)
    seeded.seconds = time.perf_counter() - started
    started = time.perf_counter()
    for ddl in rebuild:
        writer.execute(ddl)
    seeded.index_seconds = time.perf_counter() - started
    if not writer.is_sqlite:
        for table in ("friends", "tags"):
            writer.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    writer.close()
    return seeded


def analyze(url: str) -> float:
    """ANALYZE (PostgreSQL's autovacuum would; stepline never does it on SQLite)."""
    started = time.perf_counter()
    writer = Writer(url)
    if writer.is_sqlite:
        writer.execute("ANALYZE")
    else:
        writer.pg.autocommit = True
        writer.execute("VACUUM ANALYZE")
    writer.close()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- counting


def timed(function: Callable[[], T], repeat: int) -> tuple[T, float, float]:
    """The result, median and max seconds of `repeat` runs after one warm-up."""
    result = function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - started)
    return result, statistics.median(samples), max(samples)


HAND_WRITTEN = """
SELECT count(*) FROM friends f
WHERE f.status <> 'blocked'
  AND f.id IN (SELECT friend_id FROM friend_tags WHERE tag_id = :a)
  AND NOT EXISTS (SELECT 1 FROM friend_tags nb WHERE nb.friend_id = f.id AND nb.tag_id = :b)
  AND f.id IN (SELECT friend_id FROM field_values
               WHERE name = 'age' AND value_number BETWEEN 30 AND 49)
  AND f.id IN (SELECT friend_id FROM link_clicks WHERE link = :link AND clicked_at >= :since)
  AND f.id IN (SELECT friend_id FROM field_values
               WHERE name = 'prefecture' AND value_text IN (:p1, :p2))
"""


def measure_counts(
    url: str, backend: str, catalogue: Catalogue, seeded: Seeded, repeat: int, label: str
) -> float:
    """Times count_matching / sample_matching of the target; returns the count's median."""
    from bot.segments.queries import count_matching, sample_matching

    db = Database(url)
    tz = Settings().tz
    target, audience = catalogue.segments[TARGET].condition, catalogue.segments[AUDIENCE].condition

    def count(condition: Any) -> Callable[[], int]:
        def run() -> int:
            with db.read() as session:
                return count_matching(
                    session, condition, catalogue=catalogue, tz=tz, now=seeded.now
                )

        return run

    def sample() -> list[dict[str, Any]]:
        with db.read() as session:
            return sample_matching(
                session, target, catalogue=catalogue, tz=tz, now=seeded.now, limit=10
            )

    def hand_written() -> int:
        with db.read() as session:
            tag_id = {
                name: i
                for i, name in session.execute(
                    text("SELECT id, name FROM tags WHERE name IN (:a, :b)"),
                    {"a": TAG_A, "b": TAG_B},
                )
            }
            since = seeded.now - timedelta(days=TARGET_CLICK_DAYS)
            return int(
                session.execute(
                    text(HAND_WRITTEN).bindparams(bindparam("since", type_=UTCDateTime())),
                    {
                        "a": tag_id[TAG_A],
                        "b": tag_id[TAG_B],
                        "link": TARGET_CLICK_LINK,
                        "since": since,
                        "p1": TARGET_PREFECTURES[0],
                        "p2": TARGET_PREFECTURES[1],
                    },
                ).scalar_one()
            )

    goal = GOAL_COUNT[backend]
    n, median, worst = timed(count(target), repeat)
    share = n / seeded.friends if seeded.friends else 0.0
    check = "ok" if n == len(seeded.target) else f"MISMATCH: generator expects {len(seeded.target)}"
    print(
        f"  [{label}] count {TARGET} (5 clauses): {n:,} friends ({share:.2%}; {check}) — "
        f"median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms "
        f"(goal {goal:.0f} s: {median / goal:.3f}× of it; Mautic's 2,400 s / median = "
        f"{MAUTIC_SECONDS / median:,.0f}×, goal ≥ 1,000×)",
        flush=True,
    )
    rows, s_median, s_worst = timed(sample, repeat)
    strangers = [r["line_user_id"] for r in rows if r["line_user_id"] not in seeded.target]
    sample_check = (
        "ok"
        if len(rows) == min(10, n) and not strangers
        else f"MISMATCH: {len(rows)} rows, {strangers}"
    )
    print(
        f"  [{label}] sample {TARGET} (limit 10): {len(rows)} rows ({sample_check}) — "
        f"median {s_median * 1000:.1f} ms, max {s_worst * 1000:.1f} ms",
        flush=True,
    )

    def by_name() -> int:
        """The same count with tags looked up by name in a subquery (before tag ids were
        resolved first): the in-run baseline for that change."""
        from sqlalchemy import func, select

        from bot.segments.compile import FRIENDS, segment_clause

        clause = segment_clause(target, catalogue=catalogue, tz=tz, now=seeded.now)
        statement = (
            select(func.count()).select_from(FRIENDS).where(clause, FRIENDS.c.status != "blocked")
        )
        with db.read() as session:
            return int(session.execute(statement).scalar_one())

    o, o_median, o_worst = timed(by_name, repeat)
    print(
        f"  [{label}] same count, tags by name in a subquery: {o:,} "
        f"({'ok' if o == n else 'MISMATCH'}) — median {o_median * 1000:.1f} ms, "
        f"max {o_worst * 1000:.1f} ms (tags by id: {o_median / median:.2f}× faster)",
        flush=True,
    )
    h, h_median, h_worst = timed(hand_written, repeat)
    print(
        f"  [{label}] hand-written SQL count (IN / NOT EXISTS): {h:,} "
        f"({'ok' if h == n else 'MISMATCH'}) — median {h_median * 1000:.1f} ms, "
        f"max {h_worst * 1000:.1f} ms",
        flush=True,
    )
    b, b_median, b_worst = timed(count(audience), repeat)
    b_check = "ok" if b == len(seeded.recipients) else f"MISMATCH: expects {len(seeded.recipients)}"
    print(
        f"  [{label}] count {AUDIENCE} ({{tag: {CAMPAIGN_TAG}}}): {b:,} ({b_check}) — "
        f"median {b_median * 1000:.1f} ms, max {b_worst * 1000:.1f} ms",
        flush=True,
    )
    db.dispose()
    return median


# --------------------------------------------------------------------------- broadcasting


class PeakRss(threading.Thread):
    """The peak RSS of a process, sampled every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.first = self.peak = self.process.memory_info().rss
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.05):
            with suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> float:
        self.halt.set()
        self.join()
        return self.peak / 2**20


def timeline(url: str, broadcast_id: int) -> dict[str, float]:
    """Seconds from the broadcast's creation to each step, from the rows' own timestamps:
    claimed (the audience freezing starts), first and last batch queued, first and last
    request accepted, marked done."""
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            select(Broadcast.created_at, Broadcast.started_at, Broadcast.finished_at).where(
                Broadcast.id == broadcast_id
            )
        ).one()
        queued = conn.execute(
            select(
                func.min(OutboxMessage.created_at),
                func.max(OutboxMessage.created_at),
                func.min(OutboxMessage.sent_at),
                func.max(OutboxMessage.sent_at),
            ).where(OutboxMessage.broadcast_id == broadcast_id)
        ).one()
    engine.dispose()
    moments = {
        "claimed": row.started_at,
        "first batch queued": queued[0],
        "last batch queued": queued[1],
        "first accepted": queued[2],
        "last accepted": queued[3],
        "done": row.finished_at,
    }
    return {
        step: (moment - row.created_at).total_seconds()
        for step, moment in moments.items()
        if moment is not None
    }


def segment_json(catalogue: Catalogue, name: str) -> dict[str, Any]:
    """A named segment's condition in its JSON form (what the admin API is given)."""
    condition = catalogue.segments[name].condition
    return dict(condition.model_dump(mode="json", by_alias=True, exclude_unset=True))


def measure_broadcast(url: str, catalogue: Catalogue, seeded: Seeded) -> None:
    from bot.services.broadcasts import broadcast_status, create_broadcast

    port = free_port()
    emulator_url = f"http://127.0.0.1:{port}"
    env = bench_env(url, FLOWS, port)
    with process(
        emulator_command(port, "--rate-limits", "default"), env, f"{emulator_url}/_emulator/health"
    ) as emulator:
        started = time.perf_counter()
        register(emulator_url, seeded.recipients)
        print(
            f"  registered {len(seeded.recipients):,} recipients at the emulator in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        worker, log = start_worker(env)
        runtime = Runtime(
            Settings(
                database_url=url,
                channel_secret=SECRET,
                channel_access_token=TOKEN,
                line_api_base_url=emulator_url,
                flows_dir=FLOWS,
            )
        )
        try:
            rss = PeakRss(worker.pid)
            rss.start()
            worker_cpu, emulator_cpu = cpu_seconds(worker.pid), cpu_seconds(emulator.pid)
            started = time.perf_counter()
            row = create_broadcast(
                runtime,
                segment=segment_json(catalogue, AUDIENCE),
                messages=[{"text": "冬の限定キャンペーンのお知らせ: 全メニュー10%オフ"}],
            )
            deadline = started + max(300.0, 20 * len(seeded.recipients) / 500 / 200)
            while True:
                status = broadcast_status(runtime, row.id)
                if status["status"] in ("done", "cancelled"):
                    break
                if worker.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"broadcast not done: {status}\n{log.read_text(errors='replace')[-3000:]}"
                    )
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            worker_cpu = cpu_seconds(worker.pid) - worker_cpu
            emulator_cpu = cpu_seconds(emulator.pid) - emulator_cpu
            peak = rss.stop()
        finally:
            worker.terminate()
            worker.wait(30)
            runtime.close()
        stats = requests.get(
            f"{emulator_url}/_emulator/stats", params={"per_user": "false"}, timeout=120
        ).json()
    by_endpoint = stats.get("accepted_requests_by_endpoint", {})
    multicasts = int(by_endpoint.get("/v2/bot/message/multicast", 0))
    billed = int(stats.get("billable_by_via", {}).get("multicast", 0))
    floor = multicasts / MULTICAST_PER_SECOND
    ratio = elapsed / floor if floor else float("nan")
    steps = timeline(url, row.id)
    refused = int(stats.get("api_requests_total", 0)) - int(stats.get("accepted_requests_total", 0))
    print(
        f"  broadcast to {status['planned']:,} friends: {elapsed:.2f} s from creation to done "
        f"(status {status['status']}: accepted {status['accepted']:,}, failed {status['failed']}, "
        f"skipped {status['skipped']}, pending {status['pending']})",
        flush=True,
    )
    print(
        f"  emulator: {multicasts:,} multicasts accepted ({by_endpoint}), {billed:,} recipients "
        f"billed ({'ok' if billed == len(seeded.recipients) else 'MISMATCH'}), "
        f"{stats.get('api_requests_total', 0):,} requests in all "
        f"(429s and other refusals: {refused:,})",
        flush=True,
    )
    print(
        f"  LINE floor {floor:.2f} s ({multicasts} / {MULTICAST_PER_SECOND:.0f} per s): "
        f"ratio {ratio:.2f} (goal ≤ {GOAL_BROADCAST_RATIO}: "
        f"{'met' if ratio <= GOAL_BROADCAST_RATIO else 'NOT met'})",
        flush=True,
    )
    print(
        "  timeline from creation (s): " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()),
        flush=True,
    )
    if multicasts and emulator_cpu > floor:
        print(
            f"  note: the emulator spent {emulator_cpu / multicasts * 1000:.0f} ms of CPU per "
            f"multicast ({emulator_cpu:.2f} s in all, more than the {floor:.2f} s floor): "
            "here the emulator, not LINE's rate limit, bounds the time",
            flush=True,
        )
    print(
        f"  worker RSS {rss.first / 2**20:.0f} MiB before, peak {peak:.0f} MiB "
        f"(goal < {GOAL_RSS_MB:.0f} MB: {peak * 2**20 / 1e6 / GOAL_RSS_MB:.2f}× of it); "
        f"CPU worker {worker_cpu:.2f} s, emulator {emulator_cpu:.2f} s",
        flush=True,
    )


# --------------------------------------------------------------------------- main


def machine(url: str, backend: str) -> str:
    memory = psutil.virtual_memory().total / 2**30
    if backend == "sqlite":
        version = f"SQLite {sqlite3.sqlite_version}"
    else:
        engine = create_engine(url)
        with engine.connect() as conn:
            version = str(conn.scalar(text("SELECT version()"))).split(" on ")[0]
        engine.dispose()
    return (
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, {memory:.1f} GiB RAM, "
        f"python {platform.python_version()}, {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--friends", type=int, default=1_000_000)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--broadcast", type=int, default=200_000, help="following friends in the broadcast"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each count")
    parser.add_argument("--skip-broadcast", action="store_true")
    parser.add_argument("--seed", type=int, default=42, help="the generator's RNG seed")
    args = parser.parse_args()
    following = args.friends - round(args.friends * BLOCKED_SHARE)
    if not 0 <= args.broadcast <= following or args.repeat < 1:
        parser.error(f"--broadcast must be 0…{following} (the following friends), --repeat ≥ 1")
    catalogue = load_catalogue(FLOWS)
    missing = [t for t in [*TAGS, CAMPAIGN_TAG] if t not in catalogue.tags]
    if missing or not {TARGET, AUDIENCE} <= set(catalogue.segments):
        raise SystemExit(f"{FLOWS} does not declare the bench's tags/segments: {missing}")
    with database(args.backend) as url:
        print(machine(url, args.backend), flush=True)
        upgrade(url)
        print(
            f"seeding {args.friends:,} friends on {args.backend} (seed {args.seed}) …", flush=True
        )
        seeded = seed(url, args.friends, args.broadcast, args.seed)
        rows = seeded.friends + seeded.tag_rows + seeded.field_rows + seeded.clicks
        print(
            f"seeded in {seeded.seconds:.1f} s ({rows / seeded.seconds:,.0f} rows/s): "
            f"{seeded.friends:,} friends ({seeded.blocked:,} blocked), {seeded.tag_rows:,} tags "
            f"({seeded.tag_rows / max(1, seeded.friends):.2f} per friend), "
            f"{seeded.field_rows:,} field values, {seeded.clicks:,} clicks "
            f"(indexes and foreign keys made after: {seeded.index_seconds:.1f} s); "
            f"{len(seeded.target):,} in {TARGET}, {len(seeded.recipients):,} in {AUDIENCE}",
            flush=True,
        )
        if args.backend == "sqlite":
            print("count (as loaded, no ANALYZE):", flush=True)
            measure_counts(url, args.backend, catalogue, seeded, args.repeat, "no ANALYZE")
        print(f"ANALYZE: {analyze(url):.1f} s", flush=True)
        print("count (after ANALYZE):", flush=True)
        measure_counts(url, args.backend, catalogue, seeded, args.repeat, "ANALYZE")
        if not args.skip_broadcast:
            print(f"broadcast to {AUDIENCE} through the emulator (LINE's rate limits):", flush=True)
            measure_broadcast(url, catalogue, seeded)


if __name__ == "__main__":
    main()
