"""Tracked links: `{{ link('id') }}` sends a signed `/r/<token>` address; opening it records
the click, runs `on_click` in the friend's turn (at most once per friend and link within the
window) and redirects to the catalogue's URL only; too many clicks a minute answer 429."""

from __future__ import annotations

import logging
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
from sqlalchemy import select

from bot.catalogue.models import LinkDef
from bot.config import Settings
from bot.engine.link_tokens import MAX_TOKEN_CHARS, LinkTokens, derive_key
from bot.engine.templates import Templates
from bot.engine.turn import Turn
from storage.models import Friend, LinkClick
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import SECRET, LineUser, Stack

PUBLIC_URL = "https://links.example.jp"
LINK_SECRET = "test-link-secret-0123456789abcdef"
SPRING_URL = "https://shop.example.com/spring?utm_source=line&x=1"

LINKS_YAML = f"""\
tags: [クーポンクリック]
links:
  spring:
    url: "{SPRING_URL}"
    on_click: [{{tag: クーポンクリック}}, {{say: ご利用ください}}, {{increment: {{points: 1}}}}]
  lonely: {{url: "https://shop.example.com/lonely"}}
---
keywords:
  - {{match: クーポン, reply: "限定クーポン → {{{{ link('spring') }}}}"}}
"""

TRACKED = re.compile(re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9_-]+)")
PREVIEW_AGENT = "Line/1.0 (compatible; Line-Crawler; +https://help.line.me/)"


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, folder)
    (folder / "links.yaml").write_text(LINKS_YAML, encoding="utf-8")
    return folder


@pytest.fixture
def stack(make_stack: StackFactory, flows: Path) -> Stack:
    return make_stack(flows, public_url=PUBLIC_URL, link_secret=LINK_SECRET)


def idle_friend(stack: Stack, name: str = "花子") -> LineUser:
    """A friend with no questionnaire running (welcome starts only on a new follow)."""
    user = stack.user(name)
    user.follow()
    user.unfollow()
    user.follow()
    user.received()
    assert stack.friend(user)["conversation"] is None
    return user


def tracked_token(stack: Stack, user: LineUser) -> str:
    user.say("クーポン")
    [delivery] = user.received()
    text = delivery["message"]["text"]
    match = TRACKED.fullmatch(text.removeprefix("限定クーポン → "))
    assert match, text
    return match.group(1)


def open_link(stack: Stack, token: str, **kwargs: Any) -> requests.Response:
    return requests.get(f"{stack.bot.url}/r/{token}", allow_redirects=False, timeout=30, **kwargs)


def clicks(stack: Stack) -> list[LinkClick]:
    with stack.db.read() as session:
        return list(session.scalars(select(LinkClick).order_by(LinkClick.id)))


def friend_id(stack: Stack, user: LineUser) -> int:
    with stack.db.read() as session:
        return session.scalars(select(Friend.id).where(Friend.line_user_id == user.user_id)).one()


def assert_not_found(response: requests.Response) -> None:
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "このリンクは無効です" in response.text


def test_click_records_tags_pushes_and_redirects_to_the_catalogue_url(stack: Stack) -> None:
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    assert len(token) <= 110  # a packed LINE id, the link id, a cut source, a 16-byte MAC

    response = open_link(stack, token)
    assert response.status_code == 302
    assert response.headers["Location"] == SPRING_URL
    assert response.headers["Cache-Control"] == "no-store"

    friend = stack.friend(user)
    assert "クーポンクリック" in friend["tags"]
    [click] = clicks(stack)
    assert (click.friend_id, click.link) == (friend_id(stack, user), "spring")
    assert click.source.startswith("webhook:")  # the message that carried the link
    assert click.clicked_at == stack.clock.now()
    # on_click's `say` goes out as a push (there is no reply token on a click).
    [pushed] = user.received()
    assert (pushed["via"], pushed["message"]["text"]) == ("push", "ご利用ください")

    # A double click is two clicks; the tag stays one tag.
    assert open_link(stack, token).status_code == 302
    assert len(clicks(stack)) == 2
    assert stack.friend(user)["tags"].count("クーポンクリック") == 1


def test_on_click_runs_once_per_friend_and_link_within_the_window(stack: Stack) -> None:
    """Twenty reloads of one link (at once) are twenty clicks, one `on_click`: one push."""
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: open_link(stack, token), range(20)))
    assert [(a.status_code, a.headers["Location"]) for a in answers] == [(302, SPRING_URL)] * 20
    assert [d["message"]["text"] for d in user.received()] == ["ご利用ください"]
    assert stack.friend(user)["fields"]["points"] == 1
    recorded = clicks(stack)
    assert len(recorded) == 20
    assert sum(click.actions_ran for click in recorded) == 1
    assert stack.friend(user)["tags"].count("クーポンクリック") == 1

    # Still inside the 24 hours of the click that ran them: counted only.
    stack.clock.advance(timedelta(hours=23, minutes=59))
    assert open_link(stack, token).status_code == 302
    assert [c.actions_ran for c in clicks(stack)[20:]] == [False]
    assert user.received() == []
    # 24 hours after it, the next click runs them again (once).
    stack.clock.advance(timedelta(minutes=1))
    assert open_link(stack, token).status_code == 302
    assert open_link(stack, token).status_code == 302
    assert [c.actions_ran for c in clicks(stack)[21:]] == [True, False]
    assert [d["message"]["text"] for d in user.received()] == ["ご利用ください"]
    assert stack.friend(user)["fields"]["points"] == 2


def test_the_window_is_per_friend_and_link(stack: Stack) -> None:
    first, second = idle_friend(stack, "花子"), idle_friend(stack, "太郎")
    for user in (first, second):
        token = tracked_token(stack, user)
        assert open_link(stack, token).status_code == 302
        assert open_link(stack, token).status_code == 302
        assert [d["message"]["text"] for d in user.received()] == ["ご利用ください"]
    # Another message's token of the same friend and link is the same link: not again.
    again = tracked_token(stack, first)
    assert open_link(stack, again).status_code == 302
    assert first.received() == []
    assert [c.actions_ran for c in clicks(stack)] == [True, False, True, False, False]


def test_too_many_clicks_a_minute_answer_429_and_record_nothing(
    make_stack: StackFactory, flows: Path
) -> None:
    stack = make_stack(
        flows, public_url=PUBLIC_URL, link_secret=LINK_SECRET, link_clicks_per_minute=5
    )
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    assert [open_link(stack, token).status_code for _ in range(5)] == [302] * 5
    refused = open_link(stack, token)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"  # the clock stands still: a whole minute
    assert refused.headers["Cache-Control"] == "no-store"
    assert "Location" not in refused.headers
    assert [d["message"]["text"] for d in user.received()] == ["ご利用ください"]
    # Every token of this friend and link shares the budget (the token only adds the message).
    assert open_link(stack, tracked_token(stack, user)).status_code == 429
    assert len(clicks(stack)) == 5
    # A link preview is no click: redirected, never limited.
    preview = open_link(stack, token, headers={"User-Agent": PREVIEW_AGENT})
    assert (preview.status_code, preview.headers["Location"]) == (302, SPRING_URL)

    stack.clock.advance(timedelta(seconds=45))
    assert open_link(stack, token).headers["Retry-After"] == "15"
    stack.clock.advance(timedelta(seconds=15))  # the five clicks leave the minute
    assert [open_link(stack, token).status_code for _ in range(6)] == [302] * 5 + [429]
    assert len(clicks(stack)) == 10


def test_each_friend_gets_their_own_token(stack: Stack) -> None:
    first, second = idle_friend(stack, "花子"), idle_friend(stack, "太郎")
    token_1, token_2 = tracked_token(stack, first), tracked_token(stack, second)
    assert token_1 != token_2
    assert open_link(stack, token_2).status_code == 302
    assert "クーポンクリック" not in stack.friend(first)["tags"]
    assert "クーポンクリック" in stack.friend(second)["tags"]
    [click] = clicks(stack)
    assert click.friend_id == friend_id(stack, second)


def test_a_changed_token_is_404_and_records_nothing(stack: Stack) -> None:
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    for position in (0, 1, len(token) // 2, len(token) - 2, len(token) - 1):
        for replacement in ("A", "B", "_", "-", "z"):
            if token[position] == replacement:
                continue
            changed = token[:position] + replacement + token[position + 1 :]
            assert_not_found(open_link(stack, changed))
    for garbled in (
        "x",
        token[:-1],
        token + "A",
        token[:20],
        "A" * 40,
        "A" * (MAX_TOKEN_CHARS + 4),
    ):
        assert_not_found(open_link(stack, garbled))
    assert_not_found(open_link(stack, token.replace("A", "%41", 1) + "%00"))
    assert clicks(stack) == []
    assert "クーポンクリック" not in stack.friend(user)["tags"]
    assert user.received() == []


def test_tokens_signed_with_another_key_or_for_unknowns_are_404(stack: Stack) -> None:
    user = idle_friend(stack)
    forger = LinkTokens(derive_key("not-the-secret-0123456789"), PUBLIC_URL)
    # Another link id, well formed but signed wrongly.
    assert_not_found(open_link(stack, forger.token(user.user_id, "lonely", "webhook:x")))
    # Signed with the channel secret although STEPLINE_LINK_SECRET is set.
    channel = LinkTokens(derive_key(SECRET), PUBLIC_URL)
    assert_not_found(open_link(stack, channel.token(user.user_id, "spring", "webhook:x")))
    # Properly signed, but a link the catalogue does not have (removed) or an unknown friend.
    real = stack.runtime.templates.links
    assert real is not None
    assert_not_found(open_link(stack, real.token(user.user_id, "removed", "webhook:x")))
    assert_not_found(open_link(stack, real.token("U" + "0" * 32, "spring", "webhook:x")))
    assert_not_found(open_link(stack, real.token("not-a-friend", "spring", "webhook:x")))
    assert clicks(stack) == []
    assert "クーポンクリック" not in stack.friend(user)["tags"]
    # The same key makes a token that works: only the key made the difference.
    assert open_link(stack, real.token(user.user_id, "lonely", "api")).status_code == 302


def test_the_request_cannot_choose_the_redirect_target(stack: Stack) -> None:
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    evil = "https://evil.example.net/phish"
    response = open_link(
        stack,
        token,
        params={"url": evil, "next": evil, "redirect": evil, "to": evil, "u": evil},
        headers={"Referer": evil, "Host": "evil.example.net", "X-Forwarded-Host": "evil"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == SPRING_URL
    # A target appended to the path is no route at all.
    response = requests.get(f"{stack.bot.url}/r/{token}/{evil}", allow_redirects=False, timeout=10)
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_a_blocked_friend_is_redirected_and_recorded_but_not_messaged(stack: Stack) -> None:
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    user.unfollow()
    response = open_link(stack, token)
    assert (response.status_code, response.headers["Location"]) == (302, SPRING_URL)
    assert len(clicks(stack)) == 1
    assert "クーポンクリック" in stack.friend(user)["tags"]
    assert user.received() == []


def test_link_previews_are_redirected_but_not_counted(stack: Stack) -> None:
    """LINE fetches a URL sent in a chat to draw its preview: that is not a click."""
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    response = open_link(stack, token, headers={"User-Agent": PREVIEW_AGENT})
    assert (response.status_code, response.headers["Location"]) == (302, SPRING_URL)
    response = requests.head(f"{stack.bot.url}/r/{token}", allow_redirects=False, timeout=10)
    assert (response.status_code, response.headers["Location"]) == (302, SPRING_URL)
    assert clicks(stack) == []
    assert "クーポンクリック" not in stack.friend(user)["tags"]
    # The LINE in-app browser is a person.
    agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari Line/14.1.0"
    assert open_link(stack, token, headers={"User-Agent": agent}).status_code == 302
    assert len(clicks(stack)) == 1


def test_no_secret_or_key_reaches_the_log(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = idle_friend(stack)
    token = tracked_token(stack, user)
    open_link(stack, token)
    open_link(stack, token[:-2] + "AA")
    real = stack.runtime.templates.links
    assert real is not None
    open_link(stack, real.token(user.user_id, "removed", "x"))
    text = caplog.text + repr(real) + repr(stack.runtime.settings)
    for secret in (LINK_SECRET, derive_key(LINK_SECRET).hex(), derive_key(SECRET).hex()):
        assert secret not in text


# ---------------------------------------------------------------------- tokens, no HTTP


def tokens() -> LinkTokens:
    return LinkTokens(derive_key(LINK_SECRET), PUBLIC_URL + "/")


def test_token_round_trip_and_source_truncation() -> None:
    maker = tokens()
    uid = "U" + "0123456789abcdef" * 2
    click = maker.read(maker.token(uid, "spring", "webhook:01HZX"))
    assert click is not None
    assert (click.line_user_id, click.link, click.source) == (uid, "spring", "webhook:01HZX")
    assert maker.url(uid, "spring", "s").startswith(PUBLIC_URL + "/r/")
    # Any id shape, a link id in Japanese, a long multibyte source cut at a character.
    long_source = "sequence:" + "秋の感謝祭" * 20
    click = maker.read(maker.token("user-1|x", "秋の限定クーポン" * 12, long_source))
    assert click is not None
    assert (click.line_user_id, click.link) == ("user-1|x", "秋の限定クーポン" * 12)
    assert long_source.startswith(click.source)
    assert 30 <= len(click.source.encode()) <= 40


def test_key_comes_from_the_link_secret_else_the_channel_secret() -> None:
    uid = "U" + "ab" * 16
    explicit = Settings(channel_secret=SECRET, link_secret=LINK_SECRET)
    derived = Settings(channel_secret=SECRET)
    rotated = Settings(channel_secret=SECRET + "-rotated")
    made = LinkTokens.from_settings(explicit)
    assert made is not None
    token = made.token(uid, "spring", "x")
    # The link secret outlives a channel-secret rotation; a derived key does not.
    kept = LinkTokens.from_settings(explicit.with_(channel_secret="other"))
    assert kept is not None and kept.read(token) is not None
    by_channel, after_rotation = (
        LinkTokens.from_settings(derived),
        LinkTokens.from_settings(rotated),
    )
    assert by_channel is not None and after_rotation is not None
    assert by_channel.read(token) is None
    assert after_rotation.read(by_channel.token(uid, "spring", "x")) is None
    assert LinkTokens.from_settings(Settings()) is None
    assert LINK_SECRET not in repr(explicit)


def test_link_secret_must_not_be_short() -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="STEPLINE_LINK_SECRET"):
        Settings.from_env({"STEPLINE_LINK_SECRET": "short"}, dotenv=False)
    settings = Settings.from_env({"STEPLINE_LINK_SECRET": LINK_SECRET}, dotenv=False)
    assert settings.link_secret == LINK_SECRET


def no_values(names: frozenset[str]) -> dict[str, Any]:
    """A template that only calls link() reads no friend values."""
    assert not names
    return {}


def _turn(links: LinkTokens | None) -> Turn:
    catalogue = SimpleNamespace(links={"spring": LinkDef(url=SPRING_URL)})
    record = SimpleNamespace(friend=SimpleNamespace(line_user_id="U" + "cd" * 16))
    templates = Templates(Settings().tz, links=links)
    return Turn(
        record=cast(Any, record),
        catalogue=cast(Any, catalogue),
        templates=templates,
        cause="sequence:welcome_steps",
    )


def test_template_renders_tracked_url_unknown_empty(caplog: pytest.LogCaptureFixture) -> None:
    turn = _turn(tokens())
    text = turn.templates.render("→ {{ link('spring') }}!", no_values, turn.link)
    match = re.fullmatch(r"→ " + re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9_-]+)!", text)
    assert match, text
    click = tokens().read(match.group(1))
    assert click is not None
    assert (click.link, click.source) == ("spring", "sequence:welcome_steps")
    with caplog.at_level(logging.WARNING):
        assert turn.templates.render("[{{ link('nope') }}]", no_values, turn.link) == "[]"
    assert "unknown link 'nope'" in caplog.text
    # No secret at all: the catalogue's URL, untracked.
    untracked = _turn(None)
    assert (
        untracked.templates.render("{{ link('spring') }}", no_values, untracked.link) == SPRING_URL
    )
