"""`sequence:` documents (step delivery and reminders): the example, the model, lint rules.

Broken files with exact messages are in `broken/sequence_*.yaml` and `broken/duplicate_sequence`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.catalogue import CatalogueError
from bot.catalogue.loader import load_catalogue
from bot.catalogue.models import (
    BlockedTrigger,
    FieldSetTrigger,
    FlowCompletedTrigger,
    ImageMessageDef,
    SequenceDoc,
    SequenceStep,
    StartSequenceAction,
    TagAction,
    TagAddedTrigger,
    TagCondition,
    TextMessageDef,
)
from tests.unit.catalogue.conftest import EXAMPLE, Write


def problems(folder: Path) -> list[str]:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(folder)
    return [str(p) for p in caught.value.problems]


# ---------------------------------------------------------------------------- the example


def test_the_example_sequences_load() -> None:
    catalogue = load_catalogue(EXAMPLE)
    assert sorted(catalogue.sequences) == ["reservation_reminder", "welcome_steps"]
    welcome = catalogue.sequences["welcome_steps"]
    assert isinstance(welcome, SequenceDoc)
    assert welcome.anchor is None and not welcome.is_reminder
    assert welcome.start_on == [
        FlowCompletedTrigger(flow_completed="welcome"),
        TagAddedTrigger(tag_added="体験申込"),
    ]
    assert welcome.stop_on == [TagAddedTrigger(tag_added="購入済み"), BlockedTrigger(blocked=True)]
    assert welcome.quiet_hours == ("21:00", "09:00")
    assert welcome.restart == "never"
    first, second, third = welcome.steps
    assert first.after == timedelta(0) and first.at is None and first.before is None
    assert first.text == "ご登録ありがとうございます" and first.messages == [] and first.do == []
    assert second.after == timedelta(days=1) and second.at == "10:00"
    assert second.when == TagCondition(tag="腰痛")
    assert second.text is None
    assert isinstance(second.messages[0], TextMessageDef)
    assert isinstance(second.messages[1], ImageMessageDef)
    assert third.after == timedelta(days=3) and third.at == "20:00"
    assert third.text is not None and "{{ link('coupon') }}" in third.text
    assert third.do == [TagAction(tag="クーポン送付")]

    reminder = catalogue.sequences["reservation_reminder"]
    assert reminder.anchor == "reservation_at" and reminder.is_reminder
    assert catalogue.fields["reservation_at"].type == "datetime"
    assert reminder.start_on == [FieldSetTrigger(field_set="reservation_at")]
    assert reminder.stop_on == [] and reminder.quiet_hours is None
    assert [(s.before, s.at) for s in reminder.steps] == [
        (timedelta(days=1), "18:00"),
        (timedelta(hours=2), None),
    ]
    assert all(s.after is None for s in reminder.steps)
    assert reminder.steps[0].text == "明日 {{ fields.reservation_at | hm }} にお待ちしています"


def test_the_welcome_flow_starts_the_welcome_sequence() -> None:
    catalogue = load_catalogue(EXAMPLE)
    on_complete = catalogue.flows["welcome"].on_complete
    assert StartSequenceAction(start_sequence="welcome_steps") in on_complete
    assert {"体験申込", "クーポン送付"} <= set(catalogue.tags)


# ---------------------------------------------------------------------------- the model


def test_a_step_needs_exactly_one_of_after_and_before() -> None:
    assert SequenceStep.model_validate({"after": "2h", "text": "x"}).after == timedelta(hours=2)
    assert SequenceStep.model_validate({"before": "1d", "text": "x"}).before == timedelta(days=1)
    with pytest.raises(ValidationError, match="needs `after`"):
        SequenceStep.model_validate({"text": "x"})
    with pytest.raises(ValidationError, match="not both"):
        SequenceStep.model_validate({"after": "1d", "before": "1d", "text": "x"})


def test_a_step_needs_something_to_send() -> None:
    with pytest.raises(ValidationError, match="nothing to send"):
        SequenceStep.model_validate({"after": "1d", "at": "10:00"})
    assert SequenceStep.model_validate({"after": "1d", "do": [{"tag": "x"}]}).do
    with pytest.raises(ValidationError, match="quick_replies"):
        SequenceStep.model_validate(
            {"after": "1d", "do": [{"tag": "x"}], "quick_replies": [{"label": "a", "text": "a"}]}
        )


@pytest.mark.parametrize("at", ["00:00", "09:05", "23:59"])
def test_clock_times(at: str) -> None:
    assert SequenceStep.model_validate({"after": "1d", "at": at, "text": "x"}).at == at


@pytest.mark.parametrize("at", ["24:00", "9:00", "10:60", "10時", "10:00:00", ""])
def test_bad_clock_times(at: str) -> None:
    with pytest.raises(ValidationError, match="not a clock time"):
        SequenceStep.model_validate({"after": "1d", "at": at, "text": "x"})


def test_a_reminder_without_start_on_starts_when_its_anchor_is_set() -> None:
    steps = [{"before": "1d", "text": "x"}]
    implied = SequenceDoc.model_validate({"sequence": "r", "anchor": "visit_at", "steps": steps})
    assert implied.start_on == [FieldSetTrigger(field_set="visit_at")]
    given = SequenceDoc.model_validate(
        {"sequence": "r", "anchor": "visit_at", "start_on": [{"event": "booked"}], "steps": steps}
    )
    assert [t.KIND for t in given.start_on] == ["event"]
    plain = SequenceDoc.model_validate({"sequence": "s", "steps": [{"after": "0m", "text": "x"}]})
    assert plain.start_on == []


def test_restart_and_steps() -> None:
    steps = [{"after": "0m", "text": "x"}]
    assert SequenceDoc.model_validate({"sequence": "s", "restart": "always", "steps": steps})
    with pytest.raises(ValidationError):
        SequenceDoc.model_validate({"sequence": "s", "restart": "resume", "steps": steps})
    with pytest.raises(ValidationError):
        SequenceDoc.model_validate({"sequence": "s", "steps": []})


# ---------------------------------------------------------------------------- lint


def test_equal_offsets_are_in_order(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        "fields: {visit_at: {type: datetime}}\n"
        "---\n"
        "sequence: s\n"
        "start_on: [{follow: new}]\n"
        "steps:\n"
        "  - {after: 1d, text: a}\n"
        "  - {after: 1d, text: b}\n"
        '  - {after: 1d, at: "09:00", text: c}\n'
        '  - {after: 1d, at: "09:00", text: d}\n'
        "  - {after: 2d, text: e}\n"
        "---\n"
        "sequence: r\n"
        "anchor: visit_at\n"
        "steps:\n"
        '  - {before: 1d, at: "18:00", text: a}\n'
        "  - {before: 1d, text: b}\n"
        "  - {before: 0m, text: c}\n",
    )
    catalogue = load_catalogue(flows)
    assert sorted(catalogue.sequences) == ["r", "s"]


def test_sequence_names_are_known_to_actions_and_conditions(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        "tags: [t]\n"
        "---\n"
        "sequence: s\n"
        "start_on: [{tag_added: t}]\n"
        "stop_on: [{event: done}, {flow_completed: f}, {field_set: x}, {blocked: true}]\n"
        "steps:\n"
        "  - {after: 0m, text: a, do: [{stop_sequence: s}]}\n"
        "---\n"
        "fields: {x: {type: text}}\n"
        "---\n"
        "flow: f\n"
        "steps:\n"
        "  - {ask: a, text: q, when: {not: {in_sequence: s}}}\n"
        "on_complete: [{start_sequence: s}]\n",
    )
    assert list(load_catalogue(flows).sequences) == ["s"]


def test_a_broken_sequence_is_not_also_an_unknown_sequence(write: Write, flows: Path) -> None:
    write(
        "a.yaml",
        "keywords:\n  - {match: x, do: [{start_sequence: s}]}\n---\nsequence: s\nsteps: 3\n",
    )
    assert problems(flows) == ["flows/a.yaml:5:8: sequence 's': 'steps' must be a list, got 3"]


def test_a_reminder_without_start_on_reports_its_anchor_once(write: Write, flows: Path) -> None:
    write("a.yaml", "sequence: r\nanchor: nope\nsteps:\n  - {before: 1d, text: a}\n")
    assert problems(flows) == ["flows/a.yaml:2:9: unknown field 'nope'"]
