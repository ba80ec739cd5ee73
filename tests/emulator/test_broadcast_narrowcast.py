"""Broadcast, narrowcast (with upload audiences) and narrowcast progress, driven through the
official SDK over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from linebot.v3.audience import (
    AddAudienceToAudienceGroupRequest,
    Audience,
    CreateAudienceGroupRequest,
    ManageAudience,
)
from linebot.v3.audience import ApiClient as AudienceApiClient
from linebot.v3.audience import Configuration as AudienceConfiguration
from linebot.v3.messaging import (
    AgeDemographicFilter,
    ApiClient,
    ApiException,
    AudienceRecipient,
    BroadcastRequest,
    Configuration,
    Filter,
    GenderDemographicFilter,
    Limit,
    MessagingApi,
    MulticastRequest,
    NarrowcastRequest,
    OperatorDemographicFilter,
    OperatorRecipient,
    Recipient,
    RedeliveryRecipient,
    TextMessage,
)

from bot.clock import FrozenClock
from tests.emulator.conftest import TOKEN, Emu

BROADCAST = "/v2/bot/message/broadcast"
NARROWCAST = "/v2/bot/message/narrowcast"


def error_body(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body))


def header(exc: ApiException, name: str) -> str | None:
    assert exc.headers is not None
    value = exc.headers.get(name)
    return str(value) if value is not None else None


def texts(emulator: Emu, user_id: str) -> list[tuple[str, str]]:
    """What the user received: (via, text) pairs."""
    got = emulator.client.messages(user_id)["messages"]
    return [(m["via"], m["message"].get("text", "")) for m in got]


def user_ids(n: int, start: int = 0) -> list[str]:
    """Well-formed, distinct, predictable user ids."""
    return [f"U{i:032x}" for i in range(start, start + n)]


def raw_post(emulator: Emu, path: str, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        f"{emulator.url}{path}",
        data=json.dumps(body),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            **headers,
        },
        timeout=10,
    )


def hi(text: str = "お知らせ") -> list[TextMessage]:
    return [TextMessage(text=text)]


@pytest.fixture
def audience_api(emulator: Emu) -> Iterator[ManageAudience]:
    config = AudienceConfiguration(host=emulator.url, access_token=TOKEN)
    with AudienceApiClient(config) as client:
        yield ManageAudience(client)


@pytest.fixture
def make_audience(audience_api: ManageAudience) -> Callable[..., int]:
    def make(members: list[str], description: str = "test audience") -> int:
        request = CreateAudienceGroupRequest(
            description=description, audiences=[Audience(id=uid) for uid in members]
        )
        created = audience_api.create_audience_group(request)
        return int(created.audience_group_id)

    return make


def narrowcast(
    api: MessagingApi,
    recipient: Recipient | None = None,
    *,
    text: str = "お知らせ",
    key: str | None = None,
    **fields: Any,
) -> str:
    """Send a narrowcast; returns its request id (checking LINE's 202 and empty object)."""
    request = NarrowcastRequest(messages=hi(text), recipient=recipient, **fields)
    response = api.narrowcast_with_http_info(request, x_line_retry_key=key)
    assert response.status_code == 202
    assert json.loads(response.raw_data) == {}
    return str(response.headers["x-line-request-id"])


# --- broadcast --------------------------------------------------------------------------------


def test_broadcast_reaches_friends_only(emulator: Emu, api: MessagingApi) -> None:
    friends = [emulator.client.create_user(name)["user_id"] for name in ("花子", "太郎")]
    for uid in friends:
        emulator.client.follow(uid)
    blocked = emulator.client.create_user("ブロック")["user_id"]
    emulator.client.follow(blocked)
    emulator.client.unfollow(blocked)
    stranger = emulator.client.create_user("未登録")["user_id"]

    response = api.broadcast_with_http_info(BroadcastRequest(messages=hi("セール")))
    assert response.status_code == 200
    request_id = response.headers["x-line-request-id"]

    for uid in friends:
        assert texts(emulator, uid) == [("broadcast", "セール")]
    assert texts(emulator, blocked) == [] and texts(emulator, stranger) == []
    assert emulator.client.dropped() == []  # not recipients at all: nothing dropped
    assert emulator.client.delivery_counts(via="broadcast") == {
        uid: {"セール": 1} for uid in friends
    }
    assert emulator.client.accepted_counts(via="broadcast") == {
        uid: {"セール": 1} for uid in friends
    }
    accepted = emulator.client.accepted(path=BROADCAST)
    assert [(a["via"], a["request_id"], sorted(a["recipients"])) for a in accepted] == [
        ("broadcast", request_id, sorted(friends))
    ]
    stats = emulator.client.stats()
    assert stats["billable_by_via"]["broadcast"] == 2
    assert stats["delivered_messages_by_via"]["broadcast"] == 2
    assert stats["accepted_requests_by_endpoint"] == {BROADCAST: 1}
    assert stats["users"][friends[0]]["accepted_requests"] == {BROADCAST: 1}
    assert api.get_message_quota_consumption().total_usage == 2
    # The simulator's timeline shows it as a paid message.
    timeline = requests.get(
        f"{emulator.url}/_emulator/users/{friends[0]}/timeline", timeout=5
    ).json()["items"]
    assert [(i["via"], i["billable"]) for i in timeline if i["from"] == "bot"] == [
        ("broadcast", True)
    ]


def test_broadcast_retry_key_is_accepted_once_then_409(emulator: Emu, api: MessagingApi) -> None:
    emulator.client.add_friends(user_ids(3))
    key = str(uuid.uuid4())
    first = api.broadcast_with_http_info(BroadcastRequest(messages=hi()), x_line_retry_key=key)
    assert first.status_code == 200
    with pytest.raises(ApiException) as caught:
        api.broadcast_with_http_info(BroadcastRequest(messages=hi()), x_line_retry_key=key)
    assert caught.value.status == 409
    assert error_body(caught.value) == {"message": "The retry key is already accepted"}
    assert header(caught.value, "x-line-accepted-request-id") == first.headers["x-line-request-id"]
    assert emulator.client.delivery_counts(via="broadcast") == {
        uid: {"お知らせ": 1} for uid in user_ids(3)
    }
    assert emulator.client.stats()["billable_total"] == 3


def test_broadcast_over_the_monthly_quota_is_429(make_emulator: Callable[..., Emu]) -> None:
    emulator = make_emulator(monthly_quota=2)
    emulator.client.add_friends(user_ids(3))
    with ApiClient(Configuration(host=emulator.url, access_token=TOKEN)) as client:
        api = MessagingApi(client)
        with pytest.raises(ApiException) as caught:
            api.broadcast(BroadcastRequest(messages=hi()))
        assert caught.value.status == 429
        assert error_body(caught.value) == {"message": "You have reached your monthly limit."}
        assert emulator.client.delivery_counts() == {}
        assert emulator.client.accepted() == []
        emulator.client.unfollow(user_ids(3)[0])  # two friends left: within the quota
        api.broadcast(BroadcastRequest(messages=hi()))
        assert api.get_message_quota_consumption().total_usage == 2


def test_broadcast_body_is_validated(emulator: Emu, api: MessagingApi) -> None:
    emulator.client.add_friends(user_ids(1))
    six = [{"type": "text", "text": str(i)} for i in range(6)]
    response = raw_post(emulator, BROADCAST, {"messages": six})
    assert response.status_code == 400
    assert response.json() == {
        "message": "The request body has 1 error(s)",
        "details": [{"message": "Size must be between 1 and 5", "property": "messages"}],
    }
    response = raw_post(emulator, BROADCAST, {"messages": [{"type": "text"}]})
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"message": "must be specified", "property": "messages[0].text"}
    ]
    response = raw_post(
        emulator,
        BROADCAST,
        {"messages": [{"type": "text", "text": "hi"}]},
        **{"X-Line-Retry-Key": "nope"},
    )
    assert response.status_code == 400
    assert emulator.client.delivery_counts() == {}


# --- audiences --------------------------------------------------------------------------------


def test_upload_audience_create_add_and_read(emulator: Emu, audience_api: ManageAudience) -> None:
    created = audience_api.create_audience_group_with_http_info(
        CreateAudienceGroupRequest(
            description="春のキャンペーン", audiences=[Audience(id=uid) for uid in user_ids(3)]
        )
    )
    assert created.status_code == 202
    group = created.data
    assert group.type == "UPLOAD" and group.create_route == "MESSAGING_API"
    assert group.description == "春のキャンペーン" and group.permission == "READ_WRITE"
    assert group.is_ifa_audience is False and group.created > 0
    audience_api.add_audience_to_audience_group(
        AddAudienceToAudienceGroupRequest(
            audience_group_id=group.audience_group_id,
            audiences=[Audience(id=uid) for uid in user_ids(3, start=2)],  # one already in
        )
    )
    data = audience_api.get_audience_data(group.audience_group_id)
    assert data.audience_group.audience_count == 5
    assert data.audience_group.status == "READY"
    assert [(job.type, job.audience_count) for job in data.jobs] == [("DIFF_ADD", 2)]
    listed = emulator.client.audiences()
    assert [(a["audienceGroupId"], a["user_ids"]) for a in listed] == [
        (group.audience_group_id, user_ids(5))
    ]


def test_audience_bodies_are_validated(emulator: Emu) -> None:
    upload = "/v2/bot/audienceGroup/upload"
    response = raw_post(emulator, upload, {"description": "x" * 121, "audiences": [{"id": 5}]})
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"message": "must be of type string", "property": "audiences[0].id"},
        {"message": "Length must be between 0 and 120", "property": "description"},
    ]
    response = raw_post(emulator, upload, {"audiences": []})
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"message": "must be specified", "property": "description"}
    ]
    response = requests.put(
        f"{emulator.url}{upload}",
        json={"audienceGroupId": 12345, "audiences": [{"id": user_ids(1)[0]}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Audience group not found"}


# --- narrowcast -------------------------------------------------------------------------------


def test_narrowcast_to_an_audience_and_its_progress(
    emulator: Emu, api: MessagingApi, make_audience: Callable[..., int], clock: FrozenClock
) -> None:
    friends = user_ids(70)
    emulator.client.add_friends(friends)
    blocked = friends[0]
    emulator.client.unfollow(blocked)
    stranger = emulator.client.create_user("未登録", user_id=user_ids(1, start=500)[0])["user_id"]
    # 60 ids: 55 friends, one who blocked, one who never added the account, 3 unknown ids.
    members = [*friends[:56], stranger, *user_ids(3, start=900)]
    group_id = make_audience(members)

    request_id = narrowcast(api, AudienceRecipient(audience_group_id=group_id), text="限定")

    expected = set(friends[1:56])
    got = emulator.client.delivery_counts(via="narrowcast")
    assert got == {uid: {"限定": 1} for uid in expected}
    assert texts(emulator, blocked) == [] and texts(emulator, stranger) == []
    assert emulator.client.dropped() == []
    progress = api.get_narrowcast_progress(request_id)
    assert progress.phase == "succeeded"
    assert (progress.target_count, progress.success_count, progress.failure_count) == (55, 55, 0)
    assert progress.accepted_time == clock.now() and progress.completed_time == clock.now()
    assert progress.error_code is None and progress.failed_description is None
    raw = requests.get(
        f"{emulator.url}/v2/bot/message/progress/narrowcast",
        params={"requestId": request_id},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()
    assert raw["acceptedTime"] == "2026-11-23T01:00:00.000Z"
    stats = emulator.client.stats()
    assert stats["billable_by_via"]["narrowcast"] == 55
    assert stats["accepted_requests_by_endpoint"] == {NARROWCAST: 1}
    accepted = emulator.client.accepted(path=NARROWCAST)
    assert [(a["request_id"], a["response_status"], len(a["recipients"])) for a in accepted] == [
        (request_id, 202, 55)
    ]


def test_narrowcast_without_recipient_reaches_every_friend(
    emulator: Emu, api: MessagingApi
) -> None:
    emulator.client.add_friends(user_ids(4))
    emulator.client.create_user("未登録")
    request_id = narrowcast(api)
    assert set(emulator.client.delivery_counts(via="narrowcast")) == set(user_ids(4))
    assert api.get_narrowcast_progress(request_id).target_count == 4


def test_narrowcast_operators_and_or_not(
    emulator: Emu, api: MessagingApi, make_audience: Callable[..., int]
) -> None:
    friends = user_ids(110)
    emulator.client.add_friends(friends)
    a = AudienceRecipient(audience_group_id=make_audience(friends[:60], "A"))
    b = AudienceRecipient(audience_group_id=make_audience(friends[40:100], "B"))
    cases: list[tuple[Recipient, set[str]]] = [
        (OperatorRecipient(var_and=[a, b]), set(friends[40:60])),
        (OperatorRecipient(var_or=[a, b]), set(friends[:100])),
        (OperatorRecipient(var_not=a), set(friends[60:])),
        (OperatorRecipient(var_and=[a, OperatorRecipient(var_not=b)]), set(friends[:40])),
        (
            OperatorRecipient(
                var_or=[
                    OperatorRecipient(var_and=[a, b]),
                    OperatorRecipient(var_not=OperatorRecipient(var_or=[a, b])),
                ]
            ),
            set(friends[40:60]) | set(friends[100:]),
        ),
    ]
    for i, (recipient, expected) in enumerate(cases):
        request_id = narrowcast(api, recipient, text=f"case {i}")
        progress = api.get_narrowcast_progress(request_id)
        assert progress.phase == "succeeded", i
        assert progress.target_count == len(expected), i
        reached = {
            uid
            for uid, counts in emulator.client.delivery_counts(via="narrowcast").items()
            if f"case {i}" in counts
        }
        assert reached == expected, i


def test_narrowcast_limit_max_caps_the_recipients(
    emulator: Emu, api: MessagingApi, make_audience: Callable[..., int]
) -> None:
    friends = user_ids(80)
    emulator.client.add_friends(friends)
    group = make_audience(friends[:60])
    request_id = narrowcast(api, AudienceRecipient(audience_group_id=group), limit=Limit(max=7))
    progress = api.get_narrowcast_progress(request_id)
    assert (progress.target_count, progress.success_count) == (7, 7)
    reached = set(emulator.client.delivery_counts(via="narrowcast"))
    assert len(reached) == 7 and reached <= set(friends[:60])
    assert emulator.client.stats()["billable_total"] == 7
    # A max above the audience changes nothing.
    request_id = narrowcast(
        api, AudienceRecipient(audience_group_id=group), text="all", limit=Limit(max=1000)
    )
    assert api.get_narrowcast_progress(request_id).target_count == 60


def test_demographic_filters_are_validated_and_match_everyone(
    emulator: Emu, api: MessagingApi
) -> None:
    emulator.client.add_friends(user_ids(5))
    demographic = OperatorDemographicFilter(
        var_and=[
            GenderDemographicFilter(one_of=["female"]),
            AgeDemographicFilter(gte="age_20", lt="age_40"),
        ]
    )
    request_id = narrowcast(api, filter=Filter(demographic=demographic))
    assert api.get_narrowcast_progress(request_id).success_count == 5
    response = raw_post(
        emulator,
        NARROWCAST,
        {
            "messages": [{"type": "text", "text": "hi"}],
            "filter": {"demographic": {"type": "age", "gte": "age_99"}},
        },
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["property"] == "filter.demographic.gte"


def test_small_audience_or_no_target_fails_asynchronously(
    emulator: Emu, api: MessagingApi, make_audience: Callable[..., int]
) -> None:
    friends = user_ids(60)
    emulator.client.add_friends(friends)
    small = AudienceRecipient(audience_group_id=make_audience(friends[:49]))
    big = AudienceRecipient(audience_group_id=make_audience(friends[:50]))
    # An audience under 50 anywhere in the recipient fails the narrowcast (errorCode 4) ...
    for recipient in (small, OperatorRecipient(var_and=[big, OperatorRecipient(var_not=small)])):
        request_id = narrowcast(api, recipient)
        progress = api.get_narrowcast_progress(request_id)
        assert (progress.phase, progress.error_code) == ("failed", 4)
        assert progress.failed_description and progress.completed_time is not None
        assert progress.success_count == 0
    # ... and a recipient nobody matches fails with errorCode 2.
    nobody = AudienceRecipient(audience_group_id=make_audience(user_ids(50, start=1000)))
    progress = api.get_narrowcast_progress(narrowcast(api, nobody))
    assert (progress.phase, progress.error_code, progress.target_count) == ("failed", 2, 0)
    assert emulator.client.delivery_counts() == {}
    assert emulator.client.stats()["billable_total"] == 0
    # The failed narrowcasts were still accepted (their retry keys would be used up).
    assert [a["recipients"] for a in emulator.client.accepted(path=NARROWCAST)] == [[], [], []]


def test_minimum_audience_size_is_configurable(
    make_emulator: Callable[..., Emu],
) -> None:
    emulator = make_emulator(narrowcast_min_audience=1)
    emulator.client.add_friends(user_ids(3))
    config = AudienceConfiguration(host=emulator.url, access_token=TOKEN)
    with (
        AudienceApiClient(config) as audience_client,
        ApiClient(Configuration(host=emulator.url, access_token=TOKEN)) as client,
    ):
        created = ManageAudience(audience_client).create_audience_group(
            CreateAudienceGroupRequest(description="tiny", audiences=[Audience(id=user_ids(1)[0])])
        )
        api = MessagingApi(client)
        request_id = narrowcast(api, AudienceRecipient(audience_group_id=created.audience_group_id))
        assert api.get_narrowcast_progress(request_id).phase == "succeeded"


def test_narrowcast_quota(make_emulator: Callable[..., Emu]) -> None:
    emulator = make_emulator(monthly_quota=10)
    emulator.client.add_friends(user_ids(20))
    with ApiClient(Configuration(host=emulator.url, access_token=TOKEN)) as client:
        api = MessagingApi(client)
        with pytest.raises(ApiException) as caught:
            narrowcast(api)
        assert caught.value.status == 429
        assert error_body(caught.value) == {"message": "You have reached your monthly limit."}
        # forbidPartialDelivery: cancelled rather than sent to a subset (errorCode 5).
        request_id = narrowcast(
            api, limit=Limit(up_to_remaining_quota=True, forbid_partial_delivery=True)
        )
        progress = api.get_narrowcast_progress(request_id)
        assert (progress.phase, progress.error_code, progress.target_count) == ("failed", 5, 20)
        # upToRemainingQuota: as many as the quota allows, chosen at random.
        request_id = narrowcast(api, limit=Limit(up_to_remaining_quota=True))
        progress = api.get_narrowcast_progress(request_id)
        assert (progress.phase, progress.success_count) == ("succeeded", 10)
        assert api.get_message_quota_consumption().total_usage == 10
        with pytest.raises(ApiException) as caught:  # nothing left at all
            narrowcast(api, limit=Limit(up_to_remaining_quota=True))
        assert caught.value.status == 429


def test_narrowcast_retry_key_409(emulator: Emu, api: MessagingApi) -> None:
    emulator.client.add_friends(user_ids(2))
    key = str(uuid.uuid4())
    request_id = narrowcast(api, key=key)
    with pytest.raises(ApiException) as caught:
        narrowcast(api, key=key)
    assert caught.value.status == 409
    assert error_body(caught.value) == {"message": "The retry key is already accepted"}
    assert header(caught.value, "x-line-accepted-request-id") == request_id
    assert emulator.client.stats()["billable_total"] == 2
    assert len(emulator.client.narrowcasts()) == 1


def test_redelivery_recipient_targets_who_got_an_earlier_send(
    emulator: Emu, api: MessagingApi
) -> None:
    friends = user_ids(6)
    emulator.client.add_friends(friends)
    sent = api.multicast_with_http_info(MulticastRequest(to=friends[:2], messages=hi("first")))
    earlier = sent.headers["x-line-request-id"]
    again = narrowcast(api, RedeliveryRecipient(request_id=earlier), text="again")
    others = narrowcast(
        api, OperatorRecipient(var_not=RedeliveryRecipient(request_id=earlier)), text="others"
    )
    counts = emulator.client.delivery_counts(via="narrowcast")
    assert {uid for uid, c in counts.items() if "again" in c} == set(friends[:2])
    assert {uid for uid, c in counts.items() if "others" in c} == set(friends[2:])
    assert api.get_narrowcast_progress(again).target_count == 2
    assert api.get_narrowcast_progress(others).target_count == 4


def test_narrowcast_bad_bodies_are_400_with_details(
    emulator: Emu, make_audience: Callable[..., int]
) -> None:
    emulator.client.add_friends(user_ids(60))
    group = make_audience(user_ids(60))
    text = [{"type": "text", "text": "hi"}]
    cases: list[tuple[dict[str, Any], list[dict[str, str]]]] = [
        ({}, [{"message": "must be specified", "property": "messages"}]),
        (
            {"messages": text, "limit": {"max": 0}},
            [{"message": "Value must be at least 1", "property": "limit.max"}],
        ),
        (
            {"messages": text, "limit": {"forbidPartialDelivery": True}},
            [
                {
                    "message": "can be true only if upToRemainingQuota is true",
                    "property": "limit.forbidPartialDelivery",
                }
            ],
        ),
        (
            {"messages": text, "recipient": {"type": "audience", "audienceGroupId": "x"}},
            [{"message": "must be of type integer", "property": "recipient.audienceGroupId"}],
        ),
        (
            {"messages": text, "recipient": {"type": "segment"}},
            [
                {
                    "message": "must be one of the following values: [operator, audience, redelivery]",
                    "property": "recipient.type",
                }
            ],
        ),
        (
            {"messages": text, "recipient": {"type": "audience"}},
            [{"message": "must be specified", "property": "recipient.audienceGroupId"}],
        ),
        (
            {
                "messages": text,
                "recipient": {
                    "type": "operator",
                    "and": [{"type": "audience", "audienceGroupId": group}],
                    "or": [{"type": "audience", "audienceGroupId": group}],
                },
            },
            [{"message": "must have exactly one of and, or, not", "property": "recipient"}],
        ),
        (
            {"messages": text, "recipient": {"type": "operator", "and": []}},
            [{"message": "Size must be at least 1", "property": "recipient.and"}],
        ),
        (
            {
                "messages": text,
                "recipient": {
                    "type": "operator",
                    "or": [
                        {"type": "audience", "audienceGroupId": group},
                        {"type": "audience", "audienceGroupId": 1},
                    ],
                },
            },
            [
                {
                    "message": "Audience group not found",
                    "property": "recipient.or[1].audienceGroupId",
                }
            ],
        ),
        (
            {"messages": text, "recipient": {"type": "redelivery", "requestId": "nope"}},
            [
                {
                    "message": "no multicast, broadcast or narrowcast has this request ID",
                    "property": "recipient.requestId",
                }
            ],
        ),
    ]
    for body, details in cases:
        response = raw_post(emulator, NARROWCAST, body)
        assert response.status_code == 400, body
        assert response.json()["details"] == details, body
        assert response.json()["message"] == f"The request body has {len(details)} error(s)"
    assert emulator.client.narrowcasts() == [] and emulator.client.accepted() == []


def test_progress_of_unknown_or_missing_request_id(emulator: Emu, api: MessagingApi) -> None:
    with pytest.raises(ApiException) as caught:
        api.get_narrowcast_progress(str(uuid.uuid4()))
    assert caught.value.status == 404
    response = requests.get(
        f"{emulator.url}/v2/bot/message/progress/narrowcast",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["details"] == [{"message": "must be specified", "property": "requestId"}]


def test_counts_accept_the_new_vias(emulator: Emu, api: MessagingApi) -> None:
    emulator.client.add_friends(user_ids(2))
    api.broadcast(BroadcastRequest(messages=hi("b")))
    narrowcast(api, text="n")
    assert emulator.client.delivery_counts(via="broadcast,narrowcast") == {
        uid: {"b": 1, "n": 1} for uid in user_ids(2)
    }
    assert emulator.client.delivery_counts(via="push") == {}
    response = requests.get(
        f"{emulator.url}/_emulator/deliveries/counts", params={"via": "fax"}, timeout=5
    )
    assert response.status_code == 400
    assert "broadcast" in response.json()["error"]


def test_narrowcast_accept_then_fail_still_delivers_and_uses_the_key(
    emulator: Emu, api: MessagingApi
) -> None:
    emulator.client.add_friends(user_ids(3))
    emulator.client.add_fault(path=NARROWCAST, status=500, mode="accept_then_fail")
    key = str(uuid.uuid4())
    with pytest.raises(ApiException) as lost:
        narrowcast(api, key=key)
    assert lost.value.status == 500
    with pytest.raises(ApiException) as retried:
        narrowcast(api, key=key)
    assert retried.value.status == 409
    accepted = emulator.client.accepted(path=NARROWCAST)
    assert [a["response_status"] for a in accepted] == [500]
    assert header(retried.value, "x-line-accepted-request-id") == accepted[0]["request_id"]
    assert api.get_narrowcast_progress(accepted[0]["request_id"]).success_count == 3
