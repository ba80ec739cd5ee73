"""Lint: a catalogue using every feature passes; a few checks not covered by `broken/`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalogue import CatalogueError
from bot.catalogue.lint import value_problem
from bot.catalogue.loader import check_folder, load_catalogue
from bot.catalogue.models import FieldDef
from tests.unit.catalogue.conftest import Write

EVERYTHING = """\
fields:
  gender: {type: choice, choices: [female, male, other]}
  age: {type: integer, min: 0, max: 120}
  height: {type: number}
  vip: {type: boolean, default: false}
  email: {type: email}
  phone: {type: phone}
  note: {type: text}
  birthday: {type: date}
  reservation_at: {type: datetime}
  visit_time: {type: text}
  points: {type: integer, default: 0}
tags: [女性, 30代, 40代, 回答済み, クーポン, VIP]
links:
  coupon: {url: "https://example.com/c", on_click: [{tag: クーポン}, {increment: {points: 1}}]}
keywords:
  - {match: "^(営業|えいぎょう)", mode: regex, reply: "10時から"}
  - {match: クーポン, mode: contains, messages: [{text: "{{ link('coupon') }}"}]}
  - {match: 画像, messages: [{image: {url: "https://example.com/a.jpg"}}, {sticker: {package_id: "446", sticker_id: "1988"}}]}
---
flow: everything
title: 全部入り
description: every feature once
start_on:
  - {follow: any}
  - {keyword: ぜんぶ}
  - {postback: everything}
  - {tag_added: VIP}
  - {field_set: email}
  - {flow_completed: other}
  - {event: purchase}
timeout: 30m
restart: never
steps:
  - ask: intro
    text: "{{ friend.name }}さん、{{ fields.reservation_at | ymdhm }}"
    messages:
      - buttons:
          text: メニュー
          title: ようこそ
          image: "https://example.com/b.jpg"
          actions:
            - {label: サイト, uri: "https://example.com"}
            - {label: 予約, data: reserve, display_text: 予約します}
            - {label: 日時, data: pick, datetime: datetime}
            - {label: 言う, text: こんにちは}
      - confirm: {text: よろしい?, actions: [{label: はい, text: はい}, {label: いいえ, text: いいえ}]}
      - carousel:
          columns:
            - {text: A, actions: [{label: a, data: a}]}
            - {text: B, title: b, actions: [{label: b, uri: "https://example.com/b"}]}
      - flex:
          alt_text: お知らせ
          contents: {type: bubble, body: {type: box, layout: vertical, contents: [{type: text, text: "{{ not a template }}"}]}}
    choices:
      - {label: 女性, value: female, do: [{tag: [女性, VIP]}, {set: {gender: female, vip: true}}]}
      - {label: その他, value: other}
    save: gender
    do: [{untag: 30代}, {clear: [note, height]}, {send: {text: "送信 {{ link('coupon') }}"}}]
    next: [{if: {any: [{tag: 女性}, {field: age, between: [30, 49]}]}, goto: age}, {goto: when_date}]
  - ask: when_date
    text: ご希望日は?
    choices: [{label: 選ぶ, datetime: {mode: date, min: "2026-01-01"}, data: birthday-picked}]
    save: birthday
  - ask: when_time
    text: 時間は?
    choices: [{label: 選ぶ, datetime: time}]
    save: visit_time
  - ask: age
    when: {not: {field: age, exists: true}}
    text: 年齢は?
    input: integer
    save: age
    invalid: 数字でお願いします
    max_retries: 0
    on_invalid: [{say: スキップします}]
    do: [{tag_by: {field: age, ranges: {30代: [30, 39], 40代: [40, 49]}}}]
  - ask: height
    text: 身長は?
    input: number
    save: height
  - ask: mail
    text: メールは?
    input: email
    save: email
    when: {all: [{followed_within: 7d}, {clicked: coupon, within: 1d}, {route: ads}, {audience: list1}]}
  - ask: tel
    text: 電話は?
    input: phone
    save: phone
  - ask: reserve
    text: 日時は?
    input: datetime
    save: reservation_at
    when: {answered: {flow: everything, step: intro, value: female}}
    next: end
on_complete:
  - {tag: 回答済み}
  - {increment: {points: "{{ event.points }}"}}
  - {set: {note: "{{ answers.everything.intro }}", birthday: 2026-01-02, reservation_at: "2026-01-02 10:00"}}
  - {start_flow: other}
on_timeout: [{say: 時間切れです}]
---
flow: other
steps:
  - {ask: a, text: どうぞ, when: {field: gender, in: [female, male]}}
  - {ask: b, text: どうぞ, when: {field: vip, eq: true}}
"""


def test_a_catalogue_using_every_feature_passes(write: Write, flows: Path) -> None:
    write("all.yaml", EVERYTHING)
    catalogue = load_catalogue(flows)
    assert sorted(catalogue.flows) == ["everything", "other"]


def lint_problems(write: Write, flows: Path, text: str) -> list[str]:
    write(
        "a.yaml", "tags: [t]\nfields:\n  age: {type: integer}\n  when: {type: date}\n---\n" + text
    )
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(flows)
    return [f"{p.line}:{p.col}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "flow: f\nsteps:\n  - {ask: a, text: x, choices: [{label: 日, datetime: datetime}],"
            " save: when}\n",
            "8:54: field 'when' is a date field; it cannot hold the datetime picked in choice '日'",
        ),
        (
            "flow: f\nsteps:\n  - {ask: a, text: x, do: [{increment: {age: 1.5}}]}\n",
            "8:46: field 'age': expected an integer, got 1.5",
        ),
        (
            "flow: f\nsteps:\n  - {ask: a, text: x, do: [{increment: {age: lots}}]}\n",
            "8:46: increment of 'age': expected a number, got 'lots'",
        ),
        (
            "flow: f\nsteps:\n  - {ask: a, text: x, do: [{increment: {when: 1}}]}\n",
            "8:41: only number fields can be incremented; 'when' is a date field",
        ),
        (
            "flow: f\nsteps:\n  - {ask: a, text: x, do: [{set: {when: tomorrow}}]}\n",
            "8:41: field 'when': expected a date such as 2026-12-01, got 'tomorrow'",
        ),
        (
            "flow: f\nsteps:\n  - ask: a\n    text: x\n    messages: [{text: a}, {text: b},"
            " {text: c}, {text: d}, {text: e}]\n",
            "10:60: step 'a' sends 6 messages with its question; LINE allows at most 5 in one"
            " reply",
        ),
        (
            "flow: f\nstart_on: [{keyword: Ａ}]\nsteps:\n  - {ask: a, text: x}\n---\n"
            "flow: g\nstart_on: [{keyword: A}]\nsteps:\n  - {ask: a, text: x}\n",
            "12:22: keyword 'A' also starts flow 'f' (line 7); only one flow can start on it",
        ),
        (
            "flow: f\nstart_on: [{keyword: A}, {keyword: A}]\nsteps:\n  - {ask: a, text: x}\n",
            "7:36: keyword 'A' starts this flow twice",
        ),
        (
            "fields:\n  n: {type: integer, min: 5, max: 1}\n",
            "7:35: field 'n': max (1) is smaller than min (5)",
        ),
        (
            "keywords:\n  - {match: a, reply: x, messages: [{text: a}, {text: b}, {text: c},"
            " {text: d}, {text: e}]}\n",
            "7:5: keyword 'a' replies with 6 messages; LINE allows at most 5 in one reply",
        ),
        (
            "flow: f\nsteps:\n  - ask: a\n    text: x\n    messages:\n      - {text: x,"
            " quick_replies: [{label: '123456789012345678901', text: y}]}\n",
            "11:43: label '123456789012345678901' is 21 characters long; LINE allows at most 20",
        ),
    ],
)
def test_lint_checks(write: Write, flows: Path, text: str, expected: str) -> None:
    assert lint_problems(write, flows, text) == [expected]


def test_default_out_of_range_and_min_max(write: Write, flows: Path) -> None:
    assert lint_problems(
        write, flows, "fields:\n  n: {type: integer, min: 5, max: 10, default: 11}\n"
    ) == ["7:48: field 'n': default 11 is out of range (5 to 10)"]


def test_value_problem() -> None:
    email = FieldDef(type="email")
    assert value_problem(email, "a@example.com") is None
    assert value_problem(email, "nope") == "expected an email address, got 'nope'"
    number = FieldDef(type="number", min=0)
    assert value_problem(number, -1) == "-1 is out of range (at least 0)"
    assert value_problem(number, True) == "expected a number, got true"
    assert value_problem(FieldDef(type="boolean"), "yes") == "expected true or false, got 'yes'"
    assert value_problem(FieldDef(type="integer"), "{{ event.n }}") is None


LINKS_THAT_TALK = """\
tags: [クーポン]
links:
  spring: {url: "https://example.com/s", on_click: [{tag: クーポン}, {say: ご利用ください}]}
  quiet: {url: "https://example.com/q", on_click: [{tag: クーポン}]}
  chatty:
    url: "https://example.com/c"
    on_click:
      - send: [{text: どうも}]
      - start_flow: survey
---
flow: survey
steps:
  - {ask: a, text: どうぞ}
"""
PUSH = (
    ", so a click can cost a push message (a click has no reply token); on_click runs at"
    " most once per friend and link within STEPLINE_LINK_ACTIONS_WINDOW (24h by default)"
)


def test_on_click_that_sends_a_message_is_a_warning(write: Write, flows: Path) -> None:
    write("links.yaml", LINKS_THAT_TALK)
    catalogue, problems = check_folder(flows)
    assert catalogue is not None  # a warning does not stop the catalogue
    assert [str(p) for p in problems] == [
        f"flows/links.yaml:3:67: warning: link 'spring': on_click sends a message (say){PUSH}",
        f"flows/links.yaml:8:9: warning: link 'chatty': on_click sends a message (send){PUSH}",
        "flows/links.yaml:9:9: warning: link 'chatty': on_click starts flow 'survey', which"
        f" asks a question{PUSH}",
    ]
    assert all(p.warning for p in problems)
    load_catalogue(flows)  # loads as it is


def test_warnings_come_with_the_problems_but_only_problems_fail(write: Write, flows: Path) -> None:
    write("links.yaml", LINKS_THAT_TALK.replace("tags: [クーポン]", "tags: []"))
    catalogue, problems = check_folder(flows)
    assert catalogue is None
    assert [(p.line, p.warning) for p in problems] == [
        (3, False),  # unknown tag
        (3, True),
        (4, False),
        (8, True),
        (9, True),
    ]
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(flows)
    assert [p.line for p in caught.value.problems] == [3, 4]
