"""Templates: what a template reads is all that is built for it."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.engine.templates import Templates


def test_values_are_asked_for_by_the_names_the_template_reads() -> None:
    templates = Templates(Settings().tz)
    asked: list[frozenset[str]] = []

    def values(names: frozenset[str]) -> dict[str, Any]:
        asked.append(names)
        return {"fields": {"会員番号": "A-17"}, "friend": {"name": "花子"}}

    text = "{{ friend.name }}さん、会員番号は{{ fields.会員番号 }}です。{% if tags %}!{% endif %}"
    assert templates.render(text, values, str) == "花子さん、会員番号はA-17です。"
    assert asked == [frozenset({"friend", "fields", "tags"})]
    assert (
        templates.render("ご来店ありがとうございます", values, str) == "ご来店ありがとうございます"
    )
    assert len(asked) == 1  # plain text: nothing built at all


def test_a_broken_template_never_sends_raw_jinja() -> None:
    templates = Templates(Settings().tz)
    rendered = templates.render("こんにちは{{ fields. }}さん", lambda names: {}, str)
    assert "{{" not in rendered and rendered.startswith("こんにちは")
