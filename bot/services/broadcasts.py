"""Segment broadcasts (セグメント配信): create, run in batches, cancel, report.

A broadcast is a row (`broadcasts`) that goes scheduled → sending → done (or cancelled).
When sending starts its audience is frozen with one INSERT … SELECT into
`broadcast_batches`, `STEPLINE_BROADCAST_BATCH` (5,000) friend ids per row, grouped in the
database (never the whole audience in memory). The batch rows are then the work: each is
taken (PostgreSQL: `FOR UPDATE SKIP LOCKED`, two queuers side by side) and, in one
transaction, written to the outbox — multicasts of ≤ 500 when the messages are the same for
everyone, pushes rendered per friend when they hold a template — and deleted; the rows are
written claimed by the worker's sender and sent right after the commit. Cancelling stops
every batch not yet written and every row not yet claimed (those in flight finish). A worker
holds the broadcast under an owner + lease, so a crashed one is taken over where it stopped
(the batches still there); outbox rows carry retry keys, so nothing is sent twice. A dry run
does all of it but writes its rows as `dry_run`, which no sender takes.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Table, func, insert, literal, or_, select, update

from bot.catalogue import Catalogue
from bot.catalogue.messages import InvalidMessage, build, limit_problems, to_api_json
from bot.catalogue.models import BroadcastDoc, Condition, MessageDef
from bot.catalogue.templates import (
    contains_template,
    make_environment,
    message_template_problems,
)
from bot.delivery.outbox import queue_multicast
from bot.line.limits import MAX_MESSAGES_PER_REQUEST
from bot.runtime import Runtime
from bot.segments.names import unknown_names
from bot.segments.queries import matching_ids_select, sample_matching, tag_ids_for
from bot.segments.resolving import SegmentError, resolve
from bot.services.errors import Conflict, InvalidInput, NotFound
from bot.services.turns import finish_turns
from storage.id_lists import id_in
from storage.models import (
    Broadcast,
    BroadcastBatch,
    BroadcastStatus,
    Friend,
    FriendStatus,
    OutboxMessage,
    OutboxStatus,
)
from storage.upsert import insert_ignore

log = logging.getLogger(__name__)

OPEN = (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING)
# Batches written to the outbox side by side: each is a short transaction that mostly waits on
# the database, so two keep the senders fed where one alone could not.
QUEUERS = 2
MAX_BATCHES_IN_FLIGHT = 3  # written but not yet answered by LINE
_MESSAGES = TypeAdapter(list[MessageDef])
_TEMPLATES = make_environment(ZoneInfo("UTC"))  # compiling only: the zone plays no part
MAX_ID = 2**63 - 1  # broadcast ids are BIGINT
MAX_NAME = 100  # broadcasts.name

SendRows = Callable[[list[OutboxMessage]], "list[Future[Any]]"]


class BroadcastError(InvalidInput):
    """Bad input for a broadcast (unknown ones are `NotFound`, a finished one `Conflict`)."""


@dataclass(frozen=True)
class Planned:
    """A stored broadcast, and what its creator should know (it reaches nobody now)."""

    row: Broadcast
    warnings: list[str]


@dataclass(frozen=True)
class Progress:
    planned: int
    queued: int


# ------------------------------------------------------------------ creating


def check_messages(messages: Any, catalogue: Catalogue) -> list[MessageDef]:
    """Message definitions as in YAML (`[{text: …}]`), 1–5 of them, each buildable within
    LINE's limits, each template compiling and naming only the catalogue's links."""
    if not isinstance(messages, list) or not messages:
        raise BroadcastError("'messages' must be a non-empty list of message objects")
    if len(messages) > MAX_MESSAGES_PER_REQUEST:
        raise BroadcastError(
            f"'messages' holds {len(messages)}; LINE takes at most "
            f"{MAX_MESSAGES_PER_REQUEST} per request"
        )
    try:
        parsed = _MESSAGES.validate_python(messages)
    except ValidationError as exc:
        details = [f"messages.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise BroadcastError("'messages' are not valid message objects", details=details) from exc
    for index, message in enumerate(parsed):
        try:
            api_json = build(message)
        except InvalidMessage as exc:
            raise BroadcastError(
                f"messages.{index} is not a message LINE accepts", details=exc.problems
            ) from exc
        # LINE's limits beyond its schema (5,000 UTF-16 units of text, shorter template
        # texts, 20-character labels, 300-character postback data, HTTPS images): refused
        # here, not at send time.
        problems = limit_problems(api_json)
        if problems:
            raise BroadcastError(f"messages.{index} exceeds LINE's limits", details=problems)
        # A template that fails renders empty at send time (never raw Jinja): the message
        # would be dropped for every friend. Refused here instead, as `stepline check` does.
        problems = message_template_problems(messages[index], _TEMPLATES, catalogue.links)
        if problems:
            raise BroadcastError(
                f"messages.{index} holds a template that does not work", details=problems
            )
    return parsed


def parse_send_at(value: Any, runtime: Runtime) -> datetime:
    """ISO 8601; without an offset it is the account's time zone."""
    if value is None:
        return runtime.clock.now()
    if not isinstance(value, str):
        raise BroadcastError("'send_at' must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BroadcastError(f"'send_at' {value!r} is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=runtime.settings.tz)
    try:
        moment.astimezone(UTC)  # how it is stored: 0001-01-01T00:00+05:00 is before year 1
    except OverflowError as exc:
        raise BroadcastError(f"'send_at' {value!r} is out of the range of dates") from exc
    return moment


def check_broadcast_id(broadcast_id: int) -> None:
    """An id no broadcast can have (ids are 64-bit, from 1) is unknown, not a database error."""
    if not 1 <= broadcast_id <= MAX_ID:
        raise NotFound(f"no broadcast {broadcast_id}")


def _condition(runtime: Runtime, segment: Any) -> Condition:
    if segment is None:
        raise BroadcastError("'segment' is required: a condition or the name of a segment")
    try:
        return resolve(segment, runtime.catalogue)
    except SegmentError as exc:
        raise BroadcastError(str(exc)) from exc


def _reaches_anyone(runtime: Runtime, condition: Condition) -> bool:
    """Whether the condition reaches any friend now (the first match ends the query: no
    count of a large audience); BroadcastError if it names what does not exist (a typo
    would send to nobody, or under a `not` to everyone)."""
    catalogue = runtime.catalogue
    with runtime.db.read() as session:
        unknown = unknown_names(session, condition, catalogue)
        if unknown:
            raise BroadcastError(
                "the segment names what does not exist; nothing was stored", details=unknown
            )
        first = sample_matching(
            session,
            condition,
            catalogue=catalogue,
            tz=runtime.settings.tz,
            now=runtime.clock.now(),
            limit=1,
        )
    return bool(first)


def create_broadcast(
    runtime: Runtime,
    *,
    segment: Any,
    messages: Any,
    send_at: Any = None,
    dry_run: bool = False,
    name: str | None = None,
    key: str | None = None,
) -> Broadcast:
    """`plan_broadcast`'s row, for callers that need no warnings."""
    return plan_broadcast(
        runtime,
        segment=segment,
        messages=messages,
        send_at=send_at,
        dry_run=dry_run,
        name=name,
        key=key,
    ).row


def plan_broadcast(
    runtime: Runtime,
    *,
    segment: Any,
    messages: Any,
    send_at: Any = None,
    dry_run: bool = False,
    name: str | None = None,
    key: str | None = None,
) -> Planned:
    """Validate everything, then store the broadcast (scheduled); nothing on bad input. A
    segment that reaches nobody now is stored (friends may match by the time it is sent),
    with a warning."""
    condition = _condition(runtime, segment)
    check_messages(messages, runtime.catalogue)
    if not isinstance(dry_run, bool):
        raise BroadcastError("'dry_run' must be true or false")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME):
        raise BroadcastError(f"'name' must be a text of 1–{MAX_NAME} characters")
    moment = parse_send_at(send_at, runtime)
    warnings = []
    if not _reaches_anyone(runtime, condition):
        warnings.append(
            "0 recipients: nobody matches this segment now (the audience is counted again "
            "when sending starts)"
        )
    now = runtime.clock.now()
    with runtime.db.write() as session:
        row = Broadcast(
            name=name,
            key=key,
            segment=segment
            if isinstance(segment, dict | str)
            else condition.model_dump(mode="json", by_alias=True, exclude_unset=True),
            messages=messages,
            send_at=moment,
            status=BroadcastStatus.SCHEDULED,
            dry_run=dry_run,
            queued_all=False,
            created_at=now,
        )
        session.add(row)
        session.flush()
        session.expunge(row)
    log.info("broadcast %d planned for %s%s", row.id, moment.isoformat(), " (dry run)" * dry_run)
    return Planned(row, warnings)


def next_broadcast_due_after(runtime: Runtime, now: datetime) -> datetime | None:
    """The earliest `send_at` after `now` of a scheduled broadcast (the worker wakes then)."""
    with runtime.db.read() as session:
        return session.scalar(
            select(func.min(Broadcast.send_at)).where(
                Broadcast.status == BroadcastStatus.SCHEDULED, Broadcast.send_at > now
            )
        )


def cancel_broadcast(runtime: Runtime, broadcast_id: int) -> dict[str, Any]:
    """Stop what is not yet sent: open rows of the broadcast are cancelled."""
    check_broadcast_id(broadcast_id)
    now = runtime.clock.now()
    with runtime.db.write() as session:
        row = session.get(Broadcast, broadcast_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id}")
        if row.status not in OPEN:
            raise Conflict(f"broadcast {broadcast_id} is already {row.status}")
        row.status, row.finished_at = BroadcastStatus.CANCELLED, now
        row.owner, row.lease_until = None, None
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            .values(status=OutboxStatus.CANCELLED, error="broadcast cancelled")
        )
    return broadcast_status(runtime, broadcast_id)


def doc_segment(doc: BroadcastDoc) -> Any:
    """A `broadcast:` document's segment as stored: a name, or the condition's JSON form."""
    if isinstance(doc.segment, str):
        return doc.segment
    return doc.segment.model_dump(mode="json", by_alias=True, exclude_unset=True)


def doc_messages(doc: BroadcastDoc) -> list[Any]:
    return [m.model_dump(mode="json", by_alias=True, exclude_unset=True) for m in doc.messages]


def create_from_catalogue(runtime: Runtime, name: str, *, dry_run: bool = False) -> Planned:
    """`stepline broadcast send NAME`: the catalogue's `broadcast:` document, now."""
    doc = runtime.catalogue.broadcasts.get(name)
    if doc is None:
        known = ", ".join(sorted(runtime.catalogue.broadcasts)) or "none"
        raise NotFound(f"no broadcast document '{name}' (known: {known})")
    return plan_broadcast(
        runtime,
        segment=doc_segment(doc),
        messages=doc_messages(doc),
        dry_run=dry_run or doc.dry_run,
        name=name,
    )


# ------------------------------------------------------------------ reporting


def broadcast_status(runtime: Runtime, broadcast_id: int) -> dict[str, Any]:
    check_broadcast_id(broadcast_id)
    with runtime.db.read() as session:
        row = session.get(Broadcast, broadcast_id)
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id}")
        recipients = func.json_array_length(OutboxMessage.recipients)
        by_status: dict[str, Any] = dict(
            session.execute(
                select(OutboxMessage.status, func.coalesce(func.sum(recipients), 0))
                .where(OutboxMessage.broadcast_id == broadcast_id)
                .group_by(OutboxMessage.status)
            ).all()
        )
        return _status_json(row, {k: int(v) for k, v in by_status.items()})


def _status_json(row: Broadcast, by_status: dict[str, int]) -> dict[str, Any]:
    queued = sum(by_status.values())
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "dry_run": row.dry_run,
        "send_at": row.send_at.isoformat(),
        "segment": row.segment,
        "planned": row.planned,
        "queued": queued,
        "accepted": by_status.get(OutboxStatus.SENT, 0),
        "failed": by_status.get(OutboxStatus.FAILED, 0),
        "skipped": by_status.get(OutboxStatus.SKIPPED, 0),
        "cancelled": by_status.get(OutboxStatus.CANCELLED, 0),
        "pending": by_status.get(OutboxStatus.PENDING, 0) + by_status.get(OutboxStatus.SENDING, 0),
        "dry_run_rows": by_status.get(OutboxStatus.DRY_RUN, 0),
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "error": row.error,
    }


def list_broadcasts(runtime: Runtime, limit: int = 50) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        ids = session.scalars(select(Broadcast.id).order_by(Broadcast.id.desc()).limit(limit)).all()
    return [broadcast_status(runtime, i) for i in ids]


# ------------------------------------------------------------------ running


class Runner:
    """Takes due broadcasts and writes them to the outbox batch by batch."""

    def __init__(self, runtime: Runtime, send: SendRows) -> None:
        self.runtime = runtime
        self.send = send
        self.owner = f"broadcast-{uuid.uuid4().hex[:12]}"
        # The same lease as outbox rows (STEPLINE_OUTBOX_LEASE_SECONDS): how long a worker
        # that stopped answering keeps its broadcast before another one continues it.
        self.lease = timedelta(seconds=runtime.settings.outbox_lease_seconds)
        self.batch = runtime.settings.broadcast_batch  # ten multicasts by default

    def run_due(self, progress: Callable[[int, Progress], None] | None = None) -> int:
        """Run every due broadcast to the end of its queueing; returns how many were run."""
        self.schedule_catalogue()
        ran = 0
        while (broadcast_id := self._claim_next()) is not None:
            self.run(broadcast_id, progress)
            ran += 1
        self._finish_sent()
        return ran

    def run(
        self, broadcast_id: int, progress: Callable[[int, Progress], None] | None = None
    ) -> None:
        """Write the broadcast's batches to the outbox, `QUEUERS` at a time (each batch row is
        taken with SKIP LOCKED and deleted with its outbox rows in one transaction), their
        sends starting as each commits; then mark it queued."""
        in_flight: deque[list[Future[Any]]] = deque()
        renewed = time.monotonic()
        with ThreadPoolExecutor(QUEUERS, thread_name_prefix="broadcast") as queuers:
            running = {queuers.submit(self._queue_batch, broadcast_id) for _ in range(QUEUERS)}
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    step = future.result()
                    if step is None:
                        continue  # nothing left for this queuer (or cancelled, taken over)
                    batch, sends = step
                    # Backpressure: a bounded number of batches between the outbox and
                    # LINE, so neither memory nor a crash's re-send window grows with the
                    # audience.
                    in_flight.append(sends)
                    while len(in_flight) > MAX_BATCHES_IN_FLIGHT:
                        wait(in_flight.popleft())
                    if progress:
                        progress(broadcast_id, batch)
                    running.add(queuers.submit(self._queue_batch, broadcast_id))
                if time.monotonic() - renewed > self.lease.total_seconds() / 4:
                    self._renew(broadcast_id)
                    renewed = time.monotonic()
        for sends in in_flight:
            wait(sends)
        self._mark_queued(broadcast_id)

    def _renew(self, broadcast_id: int) -> None:
        """Keep holding the broadcast while its batches are written."""
        now = self.runtime.clock.now()
        with self.runtime.db.write() as session:
            session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.owner == self.owner)
                .values(lease_until=now + self.lease)
            )

    def _mark_queued(self, broadcast_id: int) -> None:
        """Every batch written: the broadcast is queued (a dry run is then done)."""
        now = self.runtime.clock.now()
        with self.runtime.db.write() as session:
            row = session.get(Broadcast, broadcast_id, with_for_update=True)
            if row is None or row.status != BroadcastStatus.SENDING or row.owner != self.owner:
                return
            left = session.scalar(
                select(func.count())
                .select_from(BroadcastBatch)
                .where(BroadcastBatch.broadcast_id == broadcast_id)
            )
            if left:  # held by another worker meanwhile: taken up again after the lease
                return
            row.queued_all = True
            if row.dry_run:
                row.status, row.finished_at = BroadcastStatus.DONE, now

    # -- claiming and freezing

    def _claim_next(self, only: int | None = None) -> int | None:
        runtime = self.runtime
        now = runtime.clock.now()
        with runtime.db.write() as session:
            statement = (
                select(Broadcast)
                .where(
                    or_(
                        (Broadcast.status == BroadcastStatus.SCHEDULED)
                        & (Broadcast.send_at <= now),
                        (Broadcast.status == BroadcastStatus.SENDING)
                        & ~Broadcast.queued_all
                        & or_(Broadcast.lease_until.is_(None), Broadcast.lease_until < now),
                    )
                )
                .order_by(Broadcast.send_at, Broadcast.id)
                .limit(1)
            )
            if only is not None:
                statement = statement.where(Broadcast.id == only)
            if not runtime.db.is_sqlite:
                statement = statement.with_for_update(skip_locked=True)
            row = session.scalars(statement).first()
            if row is None:
                return None
            row.owner, row.lease_until = self.owner, now + self.lease
            if row.status == BroadcastStatus.SCHEDULED:
                self._freeze(session, row, now)
            return row.id

    def schedule_catalogue(self) -> int:
        """A `broadcast:` document with `send_at` becomes a row once (keyed by its name and
        time), so it fires once however many workers and ticks see it; returns how many."""
        runtime = self.runtime
        made = 0
        now = runtime.clock.now()
        for name, doc in runtime.catalogue.broadcasts.items():
            if doc.send_at is None:
                continue
            send_at = doc.send_at
            if send_at.tzinfo is None:
                send_at = send_at.replace(tzinfo=runtime.settings.tz)
            with runtime.db.write() as session:
                made += insert_ignore(
                    session,
                    cast(Table, Broadcast.__table__),
                    {
                        "name": name,
                        "key": f"yaml:{name}:{send_at.isoformat()}",
                        "segment": doc_segment(doc),
                        "messages": doc_messages(doc),
                        "send_at": send_at,
                        "status": BroadcastStatus.SCHEDULED,
                        "dry_run": doc.dry_run,
                        "queued_all": False,
                        "created_at": now,
                    },
                    ["key"],
                )
        return made

    def claim(self, broadcast_id: int) -> bool:
        """Take this broadcast now if it is due and nobody holds it (the CLI's `send`)."""
        return self._claim_next(only=broadcast_id) is not None

    def _freeze(self, session: Any, row: Broadcast, now: datetime) -> None:
        runtime = self.runtime
        try:
            condition = resolve(row.segment, runtime.catalogue)
        except SegmentError as exc:
            row.status, row.error, row.finished_at = BroadcastStatus.CANCELLED, str(exc), now
            log.error("broadcast %d: %s; cancelled", row.id, exc)
            return
        ids = matching_ids_select(
            condition,
            catalogue=runtime.catalogue,
            tz=runtime.settings.tz,
            now=now,
            tag_ids=tag_ids_for(session, condition, runtime.catalogue),
        ).subquery()
        # One INSERT … SELECT numbers the audience and groups it into batches inside the
        # database: the ids never pass through this process.
        numbered = select(
            ids.c[0].label("friend_id"),
            ((func.row_number().over(order_by=ids.c[0]) - 1) // self.batch).label("position"),
        ).subquery()
        aggregate = func.json_group_array if runtime.db.is_sqlite else func.json_agg
        session.execute(
            insert(BroadcastBatch).from_select(
                ["broadcast_id", "position", "friend_ids", "size"],
                select(
                    literal(row.id),
                    numbered.c.position,
                    aggregate(numbered.c.friend_id),
                    func.count(),
                ).group_by(numbered.c.position),
            )
        )
        planned = session.scalar(
            select(func.coalesce(func.sum(BroadcastBatch.size), 0)).where(
                BroadcastBatch.broadcast_id == row.id
            )
        )
        row.planned, row.status, row.started_at = int(planned or 0), BroadcastStatus.SENDING, now
        log.info("broadcast %d: audience frozen at %d friend(s)", row.id, row.planned)

    # -- batches

    def _queue_batch(self, broadcast_id: int) -> tuple[Progress, list[Future[Any]]] | None:
        """Write one batch to the outbox; None when there is none (left, or free to take)."""
        runtime = self.runtime
        now = runtime.clock.now()
        with runtime.db.write() as session:
            # A shared lock: queuers run side by side, a cancel (which locks the row for
            # update) waits for them and they see it afterwards.
            row = session.get(Broadcast, broadcast_id, with_for_update={"read": True})
            if row is None or row.status != BroadcastStatus.SENDING or row.owner != self.owner:
                return None  # cancelled, or taken over after our lease ran out
            take = (
                select(BroadcastBatch)
                .where(BroadcastBatch.broadcast_id == broadcast_id)
                .order_by(BroadcastBatch.position)
                .limit(1)
            )
            if not runtime.db.is_sqlite:
                take = take.with_for_update(skip_locked=True)
            batch = session.scalars(take).first()
            if batch is None:
                return None
            # Who still follows now (a friend who blocked since the freeze gets nothing, and
            # one deleted since is simply not found). On the Core connection: 5,000 plain
            # rows, without the ORM's per-row loading.
            following = (
                session.connection()
                .execute(
                    select(Friend.id.label("friend_id"), Friend.line_user_id)
                    .where(
                        id_in(Friend.id, batch.friend_ids, sqlite=runtime.db.is_sqlite),
                        Friend.status == FriendStatus.FOLLOWING,
                    )
                    .order_by(Friend.id)
                )
                .all()
            )
            rows = self._queue(session, row, list(following), now) if following else []
            session.delete(batch)
            session.flush()
            left = session.scalar(
                select(func.coalesce(func.sum(BroadcastBatch.size), 0)).where(
                    BroadcastBatch.broadcast_id == broadcast_id
                )
            )
            step = Progress(planned=row.planned or 0, queued=(row.planned or 0) - int(left or 0))
            dry_run = row.dry_run
        # The rows were written claimed by this worker's sender (unless a dry run): they go
        # now, and a cancel from here on stops only the batches not yet written.
        sends = self.send(rows) if rows and not dry_run else []
        return step, sends

    def _queue(
        self, session: Any, row: Broadcast, recipients: list[Any], now: datetime
    ) -> list[OutboxMessage]:
        runtime = self.runtime
        cause = f"broadcast:{row.id}"
        # Written already claimed by this worker's sender, which sends them right after the
        # commit (no second transaction to claim them); a dry run's rows are never claimed.
        owner = None if row.dry_run else runtime.sender.owner
        definitions = _MESSAGES.validate_python(row.messages)
        if not contains_template(json.dumps(row.messages, ensure_ascii=False)):
            # Checked against LINE's schema and limits when the broadcast was created.
            messages = [to_api_json(m) for m in definitions]
            rows = queue_multicast(
                session,
                [line_user_id for _, line_user_id in recipients],
                messages,
                cause=cause,
                now=now,
                claim_for=owner,
                lease=runtime.sender.lease,
                broadcast_id=row.id,
            )
        else:  # personal: rendered for each friend, one push each
            tag_ids = runtime.tag_ids.fork()
            friends = session.scalars(
                select(Friend)
                .where(
                    id_in(Friend.id, [r.friend_id for r in recipients], sqlite=runtime.db.is_sqlite)
                )
                .order_by(Friend.id)
            ).all()
            turns = []
            for friend in friends:
                turn = runtime.new_turn(session, friend, runtime.catalogue, now, tag_ids, cause)
                for message in definitions:
                    turn.send(message)
                turns.append(turn)
            rows = finish_turns(
                runtime, session, turns, now=now, claim_rows=not row.dry_run, broadcast_id=row.id
            )
        if row.dry_run:
            for outbox_row in rows:
                outbox_row.status = OutboxStatus.DRY_RUN
            session.flush()
        return rows

    def _finish_sent(self) -> None:
        """Broadcasts whose every row is queued and settled are done."""
        runtime = self.runtime
        now = runtime.clock.now()
        with runtime.db.write() as session:
            candidates = session.scalars(
                select(Broadcast).where(
                    Broadcast.status == BroadcastStatus.SENDING, Broadcast.queued_all
                )
            ).all()
            for row in candidates:
                open_rows = session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.broadcast_id == row.id,
                        OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
                    )
                )
                if not open_rows:
                    row.status, row.finished_at = BroadcastStatus.DONE, now
                    row.owner, row.lease_until = None, None
