"""The emulator's whole state, in memory, behind one re-entrant lock.

One `EmulatorStore` per app. Every method takes the lock itself; a caller that needs several
steps to be atomic (check a retry key, deliver, remember the key) holds `store.lock` around
them (it is re-entrant). Nothing here does I/O, so the lock is never held across a webhook call.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from bot.emulator import ids
from bot.emulator.richmenu_state import RichMenuState

Via = Literal["reply", "push", "multicast", "broadcast", "narrowcast"]
VIAS: tuple[str, ...] = get_args(Via)
NarrowcastPhase = Literal["waiting", "sending", "succeeded", "failed"]
FriendState = Literal["new", "friend", "blocked"]


class StoreError(Exception):
    """A control-API request that conflicts with the current state (HTTP 404/409)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def iso_millis(at: datetime) -> str:
    """UTC with milliseconds, as LINE writes times in JSON (`2020-12-03T10:15:30.121Z`)."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass
class SimUser:
    """A simulated LINE user. `state`: new (never added the account), friend, blocked."""

    user_id: str
    name: str
    created_at: datetime
    picture_url: str | None = None
    language: str | None = "ja"
    status_message: str | None = None
    state: FriendState = "new"
    followed_at: datetime | None = None
    blocked_at: datetime | None = None

    def profile(self) -> dict[str, Any]:
        """`GET /v2/bot/profile/{userId}` body (optional fields only when set)."""
        out: dict[str, Any] = {"userId": self.user_id, "displayName": self.name}
        if self.picture_url:
            out["pictureUrl"] = self.picture_url
        if self.status_message:
            out["statusMessage"] = self.status_message
        if self.language:
            out["language"] = self.language
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "picture_url": self.picture_url,
            "language": self.language,
            "state": self.state,
            "is_friend": self.state == "friend",
            "created_at": iso(self.created_at),
            "followed_at": iso(self.followed_at) if self.followed_at else None,
            "blocked_at": iso(self.blocked_at) if self.blocked_at else None,
        }


@dataclass
class ReplyToken:
    token: str
    user_id: str | None
    issued_at: datetime
    webhook_event_id: str | None = None
    used_at: datetime | None = None


@dataclass
class AcceptedRetryKey:
    key: str
    request_id: str
    accepted_at: datetime
    path: str
    sent_messages: list[dict[str, str]] | None


@dataclass
class Delivery:
    """One message object that reached one user."""

    seq: int
    user_id: str
    via: Via
    message: dict[str, Any]
    at: datetime
    request_id: str
    message_id: str
    quote_token: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "via": self.via,
            "message": self.message,
            "at": iso(self.at),
            "request_id": self.request_id,
            "id": self.message_id,
            "quoteToken": self.quote_token,
        }


# A one-to-many send (multicast, broadcast, narrowcast) reaches up to 500 users with up to 5
# messages each. Keeping a `Delivery` and a `Billable` per recipient made the emulator's CPU
# (and the garbage collector walking millions of small objects) the bottleneck of throughput
# benchmarks; so such a send is kept as one record, and its `Delivery`s are made on demand.
@dataclass(slots=True)
class BulkDelivery:
    """Every delivery of one one-to-many send: message `k` to the user at `position` has seq
    `first_seq + position * len(messages) + k` and message id `first_message_id` + the same
    offset. It is also the send's billable record (one per user in `user_ids`)."""

    first_seq: int
    user_ids: tuple[str, ...]
    via: Via
    messages: list[dict[str, Any]]
    quotable: tuple[bool, ...]
    at: datetime
    request_id: str
    first_message_id: int
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        """How many deliveries (messages times users) this record stands for."""
        return len(self.user_ids) * len(self.messages)

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    def position(self, user_id: str) -> int | None:
        """Where the user is in `user_ids` (None: not a recipient); the index is built on the
        first question, not on the send."""
        if self._index is None:
            self._index = {uid: i for i, uid in enumerate(self.user_ids)}
        return self._index.get(user_id)

    def delivery(self, position: int, k: int) -> Delivery:
        """Message `k` as delivered to the user at `position`."""
        offset = position * len(self.messages) + k
        message_id = self.first_message_id + offset
        return Delivery(
            seq=self.first_seq + offset,
            user_id=self.user_ids[position],
            via=self.via,
            message=self.messages[k],
            at=self.at,
            request_id=self.request_id,
            message_id=str(message_id),
            quote_token=ids.quote_token_for(message_id) if self.quotable[k] else None,
        )

    def deliveries_to(self, position: int, since: int = 0) -> list[Delivery]:
        """What the user at `position` received, after seq `since`."""
        first = self.first_seq + position * len(self.messages)
        skip = max(0, since + 1 - first)
        return [self.delivery(position, k) for k in range(skip, len(self.messages))]

    def deliveries(self) -> Iterator[Delivery]:
        """Every delivery, in seq order."""
        for position in range(len(self.user_ids)):
            for k in range(len(self.messages)):
                yield self.delivery(position, k)

    def billables(self) -> list[Billable]:
        return [Billable(uid, self.via, self.at, self.request_id) for uid in self.user_ids]


@dataclass
class Dropped:
    """An accepted send that did not reach one recipient (blocked, not a friend, unknown)."""

    seq: int
    user_id: str
    via: Via
    reason: str
    messages: list[dict[str, Any]]
    at: datetime
    request_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "user_id": self.user_id,
            "via": self.via,
            "reason": self.reason,
            "messages": self.messages,
            "at": iso(self.at),
            "request_id": self.request_id,
        }


@dataclass
class UserAction:
    """Something a simulated user did in the chat (typed text, tapped a postback, followed,
    blocked): the simulator shows it on the user's side. `status`/`error` are the bot's answer
    to the webhook, filled in once it has answered."""

    seq: int
    user_id: str
    kind: Literal["text", "postback", "follow", "unfollow"]
    at: datetime
    details: dict[str, Any]
    status: int | None = None
    error: str | None = None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "from": "user",
            "type": self.kind,
            **self.details,
            "at": iso(self.at),
            "status": self.status,
            "error": self.error,
            "done": self.done,
        }


def message_label(message: dict[str, Any]) -> str:
    """A short, stable name of a message object for counting: the text of a text message,
    otherwise `type:what` (image URL, sticker ids, altText, title)."""
    kind = str(message.get("type", "?"))
    if kind in ("text", "textV2"):
        return str(message.get("text", ""))
    if kind in ("image", "video", "audio"):
        return f"{kind}:{message.get('originalContentUrl', '')}"
    if kind == "sticker":
        return f"sticker:{message.get('packageId', '')}/{message.get('stickerId', '')}"
    if kind in ("template", "flex", "imagemap"):
        return f"{kind}:{message.get('altText', '')}"
    if kind == "location":
        return f"location:{message.get('title', '')}"
    return kind


@dataclass
class AcceptedRequest:
    """A send LINE accepted (reply, push, multicast, broadcast, narrowcast), whatever became of
    its response.

    `response_status` is what the client was answered: 200 (202 for a narrowcast), a scripted
    `accept_then_fail` status, or None when chaos dropped the response (`accept_then_drop`)."""

    seq: int
    request_id: str
    path: str
    via: Via
    retry_key: str | None
    recipients: list[str]
    messages: list[dict[str, Any]]
    at: datetime
    response_status: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "request_id": self.request_id,
            "path": self.path,
            "via": self.via,
            "retry_key": self.retry_key,
            "recipients": list(self.recipients),
            "texts": [message_label(m) for m in self.messages],
            "messages": copy.deepcopy(self.messages),
            "at": iso(self.at),
            "response_status": self.response_status,
            "response_dropped": self.response_status is None,
        }


@dataclass
class Billable:
    user_id: str
    via: Via
    at: datetime
    request_id: str


@dataclass
class AudienceJob:
    """One `PUT /v2/bot/audienceGroup/upload`: ids added to an existing audience."""

    job_id: int
    description: str | None
    added: int
    created_at: datetime


@dataclass
class AudienceGroup:
    """An audience for uploading user IDs (`POST /v2/bot/audienceGroup/upload`). `members`
    keeps the uploaded ids in upload order, each once."""

    audience_group_id: int
    description: str
    created_at: datetime
    is_ifa: bool = False
    members: dict[str, None] = field(default_factory=dict)
    jobs: list[AudienceJob] = field(default_factory=list)

    @property
    def count(self) -> int:
        """`audienceCount`: the distinct user ids in it (IFAs never match an emulated user)."""
        return 0 if self.is_ifa else sum(1 for uid in self.members if ids.is_user_id(uid))

    def to_json(self) -> dict[str, Any]:
        """The spec's `AudienceGroup` (manage-audience.yml)."""
        return {
            "audienceGroupId": self.audience_group_id,
            "type": "UPLOAD",
            "description": self.description,
            "status": "READY",
            "audienceCount": self.count,
            "created": int(self.created_at.timestamp()),
            "isIfaAudience": self.is_ifa,
            "permission": "READ_WRITE",
            "createRoute": "MESSAGING_API",
        }


@dataclass
class NarrowcastProgress:
    """What `GET /v2/bot/message/progress/narrowcast` answers for one accepted narrowcast."""

    request_id: str
    accepted_at: datetime
    phase: NarrowcastPhase = "waiting"
    target_count: int | None = None
    success_count: int | None = None
    failure_count: int | None = None
    completed_at: datetime | None = None
    error_code: int | None = None
    failed_description: str | None = None
    recipients: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The spec's `NarrowcastProgressResponse` (optional fields only when known)."""
        out: dict[str, Any] = {"phase": self.phase}
        if self.success_count is not None:
            out["successCount"] = self.success_count
        if self.failure_count is not None:
            out["failureCount"] = self.failure_count
        if self.target_count is not None:
            out["targetCount"] = self.target_count
        if self.phase == "failed":
            if self.failed_description is not None:
                out["failedDescription"] = self.failed_description
            if self.error_code is not None:
                out["errorCode"] = self.error_code
        out["acceptedTime"] = iso_millis(self.accepted_at)
        if self.completed_at is not None and self.phase in ("succeeded", "failed"):
            out["completedTime"] = iso_millis(self.completed_at)
        return out


@dataclass
class Fault:
    """A scripted failure for the next `times` calls of `path` (`*` = any API path).

    mode `fail`: answer `status` without doing anything. mode `accept_then_fail`: do the work
    (deliver, consume the retry key) and then answer `status` anyway (a lost response).
    `latency_ms` delays the call first; with `status` None the call then proceeds normally.
    """

    id: int
    path: str = "*"
    status: int | None = 500
    times: int = 1
    mode: Literal["fail", "accept_then_fail"] = "fail"
    latency_ms: int = 0
    retry_after: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "status": self.status,
            "times": self.times,
            "mode": self.mode,
            "latency_ms": self.latency_ms,
            "retry_after": self.retry_after,
            "message": self.message,
        }


@dataclass
class State:
    users: dict[str, SimUser] = field(default_factory=dict)
    reply_tokens: dict[str, ReplyToken] = field(default_factory=dict)
    retry_keys: dict[str, AcceptedRetryKey] = field(default_factory=dict)
    # `deliver`'s deliveries, and `deliver_many`'s records (each in seq order, their seqs
    # never interleave: a record's block of seqs is taken at once).
    deliveries: list[Delivery] = field(default_factory=list)
    bulk: list[BulkDelivery] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    # In the order sends were accepted; a `BulkDelivery` counts once per user it reached.
    billable: list[Billable | BulkDelivery] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    actions: list[UserAction] = field(default_factory=list)
    accepted: list[AcceptedRequest] = field(default_factory=list)
    audiences: dict[int, AudienceGroup] = field(default_factory=dict)
    narrowcasts: dict[str, NarrowcastProgress] = field(default_factory=dict)
    rich_menus: RichMenuState = field(default_factory=RichMenuState)
    # Running counts (kept as sends happen, so reading them never scans the logs).
    accepted_by_path: Counter[str] = field(default_factory=Counter)
    # Per-user counts. A one-to-many send (`bulk`) and an accepted request (`accepted`) are
    # counted per user when the counts are next read (`EmulatorStore._count_per_user`), not
    # while the request is answered: for a 500-recipient multicast over HTTP that bookkeeping
    # was two thirds of the emulator's CPU per request (3.5 → 1.15 ms), on the path the
    # benchmarks time. Each record is counted once: `bulk_counted` / `accepted_counted` are
    # how many are in.
    # Plain dicts of ints: a Counter per user (built, then updated) cost far more.
    accepted_by_user: dict[str, dict[str, int]] = field(default_factory=dict)
    delivered_by_user: Counter[str] = field(default_factory=Counter)
    delivery_counts: dict[Via, dict[str, dict[str, int]]] = field(default_factory=dict)
    bulk_counted: int = 0
    accepted_counted: int = 0


class EmulatorStore:
    def __init__(self, webhook_url: str | None = None) -> None:
        self.lock = threading.RLock()
        self._state = State()
        self._last_seq = 0  # the last seq handed out (seqs start at 1)
        self._webhook_url = webhook_url

    # --- configuration that can change at run time ---------------------------------------------

    @property
    def webhook_url(self) -> str | None:
        with self.lock:
            return self._webhook_url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        with self.lock:
            self._webhook_url = url

    def reset(self) -> None:
        """Forget users, tokens, keys, deliveries, logs, faults and rich menus. Configuration
        stays, and sequence numbers keep rising so a client polling with `since` never misses
        anything."""
        with self.lock:
            self._state = State()

    def next_seq(self) -> int:
        with self.lock:
            return self._take_seqs()

    def _take_seqs(self, n: int = 1) -> int:
        """The first of `n` new consecutive seqs (call with the lock held)."""
        first = self._last_seq + 1
        self._last_seq += n
        return first

    # --- users ----------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        now: datetime,
        *,
        user_id: str | None = None,
        picture_url: str | None = None,
        language: str | None = "ja",
    ) -> SimUser:
        with self.lock:
            uid = user_id or ids.user_id()
            if uid in self._state.users:
                raise StoreError(f"user {uid} already exists")
            user = SimUser(uid, name, now, picture_url=picture_url, language=language)
            self._state.users[uid] = user
            return copy.copy(user)

    def get_user(self, user_id: str) -> SimUser | None:
        with self.lock:
            user = self._state.users.get(user_id)
            return copy.copy(user) if user else None

    def require_user(self, user_id: str) -> SimUser:
        user = self.get_user(user_id)
        if user is None:
            raise StoreError(f"no user {user_id}", status=404)
        return user

    def users(self) -> list[SimUser]:
        with self.lock:
            return [copy.copy(user) for user in self._state.users.values()]

    def friend_ids(self) -> list[str]:
        """Users who have the account as a friend (not blocked, not new), oldest first."""
        with self.lock:
            return [uid for uid, user in self._state.users.items() if user.state == "friend"]

    def add_friends(self, user_ids: list[str], now: datetime) -> int:
        """Add many users who are already friends of the account (no webhooks): a benchmark's
        or a test's population. All or nothing: an id already present is an error."""
        with self.lock:
            taken = [uid for uid in user_ids if uid in self._state.users]
            if taken or len(set(user_ids)) != len(user_ids):
                raise StoreError(f"user ids already present or repeated: {(taken or user_ids)[:3]}")
            for uid in user_ids:
                user = SimUser(uid, uid[-6:], now, picture_url=None, language="ja")
                user.state, user.followed_at = "friend", now
                self._state.users[uid] = user
            return len(user_ids)

    def follow(self, user_id: str, now: datetime) -> bool:
        """Make the user a friend; returns `isUnblocked` (True when they had blocked before)."""
        with self.lock:
            user = self._state.users.get(user_id)
            if user is None:
                raise StoreError(f"no user {user_id}", status=404)
            if user.state == "friend":
                raise StoreError(f"user {user_id} is already a friend")
            unblocked = user.state == "blocked"
            user.state = "friend"
            user.followed_at = now
            user.blocked_at = None
            return unblocked

    def unfollow(self, user_id: str, now: datetime) -> None:
        """The user blocks the account."""
        with self.lock:
            user = self._state.users.get(user_id)
            if user is None:
                raise StoreError(f"no user {user_id}", status=404)
            if user.state != "friend":
                raise StoreError(f"user {user_id} is not a friend")
            user.state = "blocked"
            user.blocked_at = now

    # --- reply tokens ---------------------------------------------------------------------------

    def issue_reply_token(
        self,
        user_id: str | None,
        now: datetime,
        *,
        webhook_event_id: str | None = None,
        token: str | None = None,
    ) -> str:
        with self.lock:
            value = token or ids.reply_token()
            if value not in self._state.reply_tokens:
                self._state.reply_tokens[value] = ReplyToken(
                    value, user_id, now, webhook_event_id=webhook_event_id
                )
            return value

    def use_reply_token(self, token: str, now: datetime, ttl_seconds: float) -> ReplyToken | None:
        """Mark the token used and return it; None if unknown, used or expired."""
        with self.lock:
            found = self._state.reply_tokens.get(token)
            if found is None or found.used_at is not None:
                return None
            if now - found.issued_at > timedelta(seconds=ttl_seconds):
                return None
            found.used_at = now
            return copy.copy(found)

    # --- retry keys -----------------------------------------------------------------------------

    def accepted_retry_key(
        self, key: str, now: datetime, ttl_seconds: float
    ) -> AcceptedRetryKey | None:
        with self.lock:
            found = self._state.retry_keys.get(key.lower())
            if found and now - found.accepted_at > timedelta(seconds=ttl_seconds):
                del self._state.retry_keys[key.lower()]
                return None
            return found

    def accept_retry_key(self, accepted: AcceptedRetryKey) -> None:
        with self.lock:
            self._state.retry_keys[accepted.key.lower()] = accepted

    # --- deliveries -----------------------------------------------------------------------------

    def deliver(
        self,
        user_id: str,
        via: Via,
        messages: list[dict[str, Any]],
        sent: list[dict[str, str]],
        request_id: str,
        now: datetime,
    ) -> list[Delivery]:
        with self.lock:
            out = []
            for message, ident in zip(messages, sent, strict=True):
                delivery = Delivery(
                    seq=self._take_seqs(),
                    user_id=user_id,
                    via=via,
                    message=copy.deepcopy(message),
                    at=now,
                    request_id=request_id,
                    message_id=ident["id"],
                    quote_token=ident.get("quoteToken"),
                )
                self._state.deliveries.append(delivery)
                out.append(delivery)
            self._state.delivered_by_user[user_id] += len(out)
            labels = Counter(message_label(m) for m in messages)
            _add_counts(self._state.delivery_counts.setdefault(via, {}), user_id, labels)
            if via != "reply":
                self._state.billable.append(Billable(user_id, via, now, request_id))
            return out

    def deliver_many(
        self,
        user_ids: list[str],
        via: Via,
        messages: list[dict[str, Any]],
        drop_reason: Callable[[SimUser | None], str | None],
        request_id: str,
        now: datetime,
        *,
        quotable: Sequence[bool],
    ) -> int:
        """`deliver` (or `drop`) for each of many recipients of one request (multicast,
        broadcast, narrowcast), under one lock, kept as one `BulkDelivery` with one copy of
        the messages they all share; `quotable[k]`: message `k` gets a quote token. Returns
        how many got it."""
        shared = copy.deepcopy(messages)
        per_user = len(shared)
        reached: list[str] = []
        with self.lock:
            users = self._state.users
            for user_id in user_ids:
                reason = drop_reason(users.get(user_id))
                if reason:
                    self._state.dropped.append(
                        Dropped(self._take_seqs(), user_id, via, reason, shared, now, request_id)
                    )
                    continue
                reached.append(user_id)
            if reached:
                count = len(reached) * per_user
                record = BulkDelivery(
                    first_seq=self._take_seqs(count),
                    user_ids=tuple(reached),
                    via=via,
                    messages=shared,
                    quotable=tuple(quotable),
                    at=now,
                    request_id=request_id,
                    first_message_id=ids.message_id_block(count),
                )
                self._state.bulk.append(record)
                if via != "reply":
                    self._state.billable.append(record)
        return len(reached)

    def drop(
        self,
        user_id: str,
        via: Via,
        reason: str,
        messages: list[dict[str, Any]],
        request_id: str,
        now: datetime,
    ) -> Dropped:
        with self.lock:
            dropped = Dropped(
                self._take_seqs(), user_id, via, reason, copy.deepcopy(messages), now, request_id
            )
            self._state.dropped.append(dropped)
            return dropped

    def deliveries_for(self, user_id: str, since: int = 0) -> list[Delivery]:
        """What the user received after seq `since`, in seq order."""
        with self.lock:
            singles = self._state.deliveries
            start = bisect.bisect_right(singles, since, key=_seq_of)
            out = [d for d in itertools.islice(singles, start, None) if d.user_id == user_id]
            bulk = self._state.bulk
            start = bisect.bisect_right(bulk, since, key=_last_seq_of)
            for record in itertools.islice(bulk, start, None):
                position = record.position(user_id)
                if position is not None:
                    out += record.deliveries_to(position, since)
            out.sort(key=_seq_of)
            return out

    def dropped(self) -> list[Dropped]:
        with self.lock:
            return list(self._state.dropped)

    def billable(self) -> list[Billable]:
        """One per recipient of each push, multicast, broadcast and narrowcast, in send order."""
        with self.lock:
            out: list[Billable] = []
            for b in self._state.billable:
                if isinstance(b, BulkDelivery):
                    out += b.billables()
                else:
                    out.append(b)
            return out

    def deliveries(self) -> list[Delivery]:
        """Every delivery, in seq order."""
        with self.lock:
            bulk = (d for record in self._state.bulk for d in record.deliveries())
            return list(heapq.merge(self._state.deliveries, bulk, key=_seq_of))

    def recipients_of(self, request_id: str, vias: set[str]) -> set[str] | None:
        """Users a send with this request id (one of `vias`) reached; None if there was none."""
        with self.lock:
            if not any(a.request_id == request_id and a.via in vias for a in self._state.accepted):
                return None
            reached = {d.user_id for d in self._state.deliveries if d.request_id == request_id}
            for record in self._state.bulk:
                if record.request_id == request_id and record.messages:
                    reached.update(record.user_ids)
            return reached

    # --- audiences and narrowcasts --------------------------------------------------------------

    def create_audience(
        self,
        description: str,
        user_ids: list[str],
        now: datetime,
        *,
        is_ifa: bool = False,
    ) -> AudienceGroup:
        with self.lock:
            group_id = ids.audience_group_id()
            while group_id in self._state.audiences:
                group_id = ids.audience_group_id()
            group = AudienceGroup(group_id, description, now, is_ifa=is_ifa)
            group.members.update(dict.fromkeys(user_ids))
            self._state.audiences[group_id] = group
            return copy.deepcopy(group)

    def add_to_audience(
        self,
        group_id: int,
        user_ids: list[str],
        now: datetime,
        upload_description: str | None = None,
    ) -> AudienceGroup:
        """Add ids (already present ones are ignored); StoreError 404 for an unknown group."""
        with self.lock:
            group = self._state.audiences.get(group_id)
            if group is None:
                raise StoreError(f"no audience group {group_id}", status=404)
            before = len(group.members)
            group.members.update(dict.fromkeys(user_ids))
            added = len(group.members) - before
            group.jobs.append(AudienceJob(self._take_seqs(), upload_description, added, now))
            return copy.deepcopy(group)

    def audience(self, group_id: int) -> AudienceGroup | None:
        with self.lock:
            group = self._state.audiences.get(group_id)
            return copy.deepcopy(group) if group else None

    def audiences(self) -> list[AudienceGroup]:
        with self.lock:
            return [copy.deepcopy(group) for group in self._state.audiences.values()]

    def delete_audience(self, group_id: int) -> bool:
        with self.lock:
            return self._state.audiences.pop(group_id, None) is not None

    def record_narrowcast(self, progress: NarrowcastProgress) -> None:
        with self.lock:
            self._state.narrowcasts[progress.request_id] = copy.deepcopy(progress)

    def narrowcast(self, request_id: str) -> NarrowcastProgress | None:
        with self.lock:
            found = self._state.narrowcasts.get(request_id)
            return copy.deepcopy(found) if found else None

    def narrowcasts(self) -> list[NarrowcastProgress]:
        with self.lock:
            return [copy.deepcopy(p) for p in self._state.narrowcasts.values()]

    # --- rich menus ---------------------------------------------------------------------------

    @contextmanager
    def rich_menus(self) -> Iterator[RichMenuState]:
        """The channel's rich menus, with the store's lock held while the caller uses them
        (`with store.rich_menus() as menus: ...`); keep the block free of I/O."""
        with self.lock:
            yield self._state.rich_menus

    def clear_rich_menus(self) -> None:
        """Forget every rich menu, alias, link, the default and the bulk-request log."""
        with self.lock:
            self._state.rich_menus = RichMenuState()

    # --- accepted sends -------------------------------------------------------------------------

    def record_accepted(
        self,
        *,
        request_id: str,
        path: str,
        via: Via,
        retry_key: str | None,
        recipients: list[str],
        messages: list[dict[str, Any]],
        now: datetime,
        response_status: int | None,
    ) -> AcceptedRequest:
        """Log a send LINE accepted (its recipients, delivered or not, each count once)."""
        with self.lock:
            accepted = AcceptedRequest(
                self._take_seqs(),
                request_id,
                path,
                via,
                retry_key,
                list(recipients),
                messages,
                now,
                response_status,
            )
            self._state.accepted.append(accepted)
            self._state.accepted_by_path[path] += 1
            return accepted

    def accepted(
        self, path: str | None = None, user_id: str | None = None, since: int = 0
    ) -> list[AcceptedRequest]:
        with self.lock:
            return [
                a
                for a in self._state.accepted
                if a.seq > since
                and (path is None or a.path == path)
                and (user_id is None or user_id in a.recipients)
            ]

    def accepted_counts(
        self, path: str | None = None, vias: set[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """`{user_id: {message label: n}}` over accepted sends (delivered or not)."""
        with self.lock:
            out: dict[str, Counter[str]] = {}
            for a in self._state.accepted:
                if (path is not None and a.path != path) or (vias and a.via not in vias):
                    continue
                labels = [message_label(m) for m in a.messages]
                for user_id in dict.fromkeys(a.recipients):
                    out.setdefault(user_id, Counter()).update(labels)
            return {user_id: dict(counts) for user_id, counts in out.items()}

    def delivery_counts(
        self, vias: set[str] | None = None, user_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        """`{user_id: {message label: n}}`: how many times each message reached each user."""
        with self.lock:
            self._count_per_user()
            merged: dict[str, Counter[str]] = {}
            for via, by_user in self._state.delivery_counts.items():
                if vias and via not in vias:
                    continue
                for uid, counts in by_user.items():
                    if user_id is None or uid == user_id:
                        merged.setdefault(uid, Counter()).update(counts)
            return {uid: dict(counts) for uid, counts in merged.items()}

    def usage_in_month(self, now: datetime, timezone: str) -> int:
        """Billable messages counted in the calendar month of `now` (in `timezone`)."""
        zone = ZoneInfo(timezone)
        month = now.astimezone(zone).strftime("%Y-%m")
        with self.lock:
            return sum(
                len(b.user_ids) if isinstance(b, BulkDelivery) else 1
                for b in self._state.billable
                if b.at.astimezone(zone).strftime("%Y-%m") == month
            )

    def stats(self, per_user: bool = True) -> dict[str, Any]:
        """Billable counts (one per recipient per push/multicast/broadcast/narrowcast request;
        replies are free), deliveries, accepted sends; per user too unless `per_user` is False.
        `billable_by_via` and `delivered_messages_by_via` always list reply/push/multicast;
        broadcast and narrowcast appear once something went out that way."""
        with self.lock:
            billable_by_user: Counter[str] = Counter()
            billable_by_via: Counter[str] = Counter()
            for b in self._state.billable:
                if isinstance(b, BulkDelivery):
                    billable_by_user.update(b.user_ids)
                    billable_by_via[b.via] += len(b.user_ids)
                else:
                    billable_by_user[b.user_id] += 1
                    billable_by_via[b.via] += 1
            delivered_by_via = self._delivered_by_via()
            dropped_by_reason = Counter(d.reason for d in self._state.dropped)
            out: dict[str, Any] = {
                "billable_total": billable_by_via.total(),
                "billable_by_user": dict(billable_by_user),
                "billable_by_via": {"push": 0, "multicast": 0, **billable_by_via},
                "delivered_messages_total": sum(delivered_by_via.values()),
                "delivered_messages_by_via": {
                    "reply": 0,
                    "push": 0,
                    "multicast": 0,
                    **delivered_by_via,
                },
                "dropped_total": len(self._state.dropped),
                "dropped_by_reason": dict(dropped_by_reason),
                "api_requests_total": len(self._state.requests),
                "webhooks_total": len(self._state.webhooks),
                "accepted_requests_total": len(self._state.accepted),
                "accepted_requests_by_endpoint": dict(self._state.accepted_by_path),
                "responses_dropped_total": sum(
                    1 for a in self._state.accepted if a.response_status is None
                ),
            }
            if not per_user:
                del out["billable_by_user"]
                return out
            self._count_per_user()
            users = (
                set(billable_by_user)
                | set(self._state.delivered_by_user)
                | set(self._state.accepted_by_user)
            )
            out["users"] = {
                user_id: {
                    "billable": billable_by_user.get(user_id, 0),
                    "delivered_messages": self._state.delivered_by_user.get(user_id, 0),
                    "accepted_requests": dict(self._state.accepted_by_user.get(user_id, {})),
                }
                for user_id in sorted(users)
            }
            return out

    def _count_per_user(self) -> None:
        """Add the one-to-many sends and accepted requests recorded since the last call to
        the per-user counts (see `State.bulk_counted`); call with the lock held."""
        state = self._state
        for record in state.bulk[state.bulk_counted :]:
            per_user = len(record.messages)
            labels = Counter(message_label(m) for m in record.messages)
            by_user = state.delivery_counts.setdefault(record.via, {})
            for user_id in record.user_ids:
                state.delivered_by_user[user_id] += per_user
                _add_counts(by_user, user_id, labels)
        state.bulk_counted = len(state.bulk)
        for accepted in state.accepted[state.accepted_counted :]:
            path = {accepted.path: 1}
            for user_id in dict.fromkeys(accepted.recipients):
                _add_counts(state.accepted_by_user, user_id, path)
        state.accepted_counted = len(state.accepted)

    def _delivered_by_via(self) -> dict[str, int]:
        """Delivered messages by via, the vias in the order of their first delivery."""
        counts: dict[str, int] = {}
        first_seq: dict[str, int] = {}
        for d in self._state.deliveries:
            counts[d.via] = counts.get(d.via, 0) + 1
            first_seq.setdefault(d.via, d.seq)
        for record in self._state.bulk:
            if record.count:
                counts[record.via] = counts.get(record.via, 0) + record.count
                seen = first_seq.get(record.via, record.first_seq)
                first_seq[record.via] = min(seen, record.first_seq)
        return {via: counts[via] for via in sorted(counts, key=first_seq.__getitem__)}

    # --- what users did (the simulator's timeline) ------------------------------------------------

    def record_action(
        self,
        user_id: str,
        kind: Literal["text", "postback", "follow", "unfollow"],
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Log a user's action before its webhook is sent (so its seq precedes the bot's
        answers); returns the seq for `finish_action`."""
        with self.lock:
            action = UserAction(self._take_seqs(), user_id, kind, now, copy.deepcopy(details or {}))
            self._state.actions.append(action)
            return action.seq

    def finish_action(self, seq: int, status: int | None, error: str | None) -> None:
        with self.lock:
            for action in reversed(self._state.actions):
                if action.seq == seq:
                    action.status, action.error, action.done = status, error, True
                    return

    def timeline(self, user_id: str, since: int = 0) -> list[UserAction | Delivery]:
        """What the user did and received after `since`, in seq order (one consistent view:
        every item is appended under the lock that hands out its seq)."""
        with self.lock:
            items: list[UserAction | Delivery] = [
                copy.copy(a) for a in self._state.actions if a.user_id == user_id and a.seq > since
            ]
            items += self.deliveries_for(user_id, since)
            return sorted(items, key=lambda item: item.seq)

    # --- logs -----------------------------------------------------------------------------------

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._state.requests.append({"seq": self._take_seqs(), **entry})

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._state.requests)

    def log_webhook(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._state.webhooks.append({"seq": self._take_seqs(), **entry})

    def webhooks(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self._state.webhooks)

    def remember_event(self, event: dict[str, Any]) -> None:
        """Keep a sent event by `webhookEventId` so it can be redelivered."""
        event_id = event.get("webhookEventId")
        if isinstance(event_id, str):
            with self.lock:
                self._state.events.setdefault(event_id, copy.deepcopy(event))

    def event(self, webhook_event_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._state.events.get(webhook_event_id)
            return copy.deepcopy(found) if found else None

    # --- faults ---------------------------------------------------------------------------------

    def add_fault(self, **fields: Any) -> Fault:
        with self.lock:
            fault = Fault(id=self._take_seqs(), **fields)
            self._state.faults.append(fault)
            return copy.copy(fault)

    def faults(self) -> list[Fault]:
        with self.lock:
            return [copy.copy(f) for f in self._state.faults]

    def clear_faults(self) -> None:
        with self.lock:
            self._state.faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        """The first fault matching `path`, counted down (removed when used up)."""
        with self.lock:
            for fault in self._state.faults:
                if fault.path in ("*", path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._state.faults.remove(fault)
                    return copy.copy(fault)
            return None


def _seq_of(item: Delivery) -> int:
    return item.seq


def _last_seq_of(record: BulkDelivery) -> int:
    return record.last_seq


def _add_counts(counts: dict[str, dict[str, int]], key: str, add: Mapping[str, int]) -> None:
    """`counts[key] += add`, label by label (plain dicts: this runs once per recipient)."""
    mine = counts.get(key)
    if mine is None:
        counts[key] = dict(add)
        return
    for label, n in add.items():
        mine[label] = mine.get(label, 0) + n
