"""Keyword regexes run on RE2: linear time on any message, Python's Unicode `\\d \\w \\s`, and
patterns RE2 cannot run refused by the model (so by `check`, at the pattern)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from bot.catalogue.models import KeywordRule
from bot.catalogue.patterns import PatternError, compile_pattern, to_re2

# Classic catastrophic-backtracking patterns, each with a text Python's `re` needs from half a
# second (the shorter ones) to seconds (`^(a+)+$` on 30 characters: about 17 s) to reject.
# Each with a text it does match.
REDOS = [
    (r"^(a+)+$", "a" * 29 + "!", "aaa"),
    (r"^(a|a)+$", "a" * 22 + "!", "aaa"),
    (r"^(a|aa)+$", "a" * 32 + "!", "aaa"),
    (r"(x+x+)+y", "x" * 22, "xxy"),
    (r"^(\w+\s?)*$", "a" * 22 + "!", "予約 する"),
    (r"^([a-z]+)*[0-9]$", "a" * 23 + "!", "abc1"),
]


def rule(match: str) -> KeywordRule:
    return KeywordRule(match=match, mode="regex", reply="ok")


@pytest.mark.parametrize(("pattern", "evil", "good"), REDOS)
def test_catastrophic_patterns_answer_in_linear_time(pattern: str, evil: str, good: str) -> None:
    keyword = rule(pattern)
    assert keyword.matches(good)  # also compiles it: compiling is not what is measured
    started = time.perf_counter()
    assert not keyword.matches(evil)
    assert time.perf_counter() - started < 0.05


def test_a_long_message_is_linear_too() -> None:
    keyword = rule(r"^(a+)+$")
    started = time.perf_counter()
    assert not keyword.matches("a" * 5000 + "!")
    assert keyword.matches("a" * 5000)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        # Python's Unicode classes: full-width digits, kana and kanji, the ideographic space.
        (r"^\d{3}$", "１２３", True),
        (r"^\d{3}$", "123", True),
        (r"^[\d-]+$", "０９０-１２３４", True),
        (r"^\w+$", "予約_ﾖﾔｸ_abc", True),
        (r"^\w+$", "予約!", False),
        (r"^\W$", "。", True),
        (r"^\D+$", "あいう", True),
        (r"^\D+$", "あ１", False),
        (r"予約\s+変更", "予約\u3000変更", True),
        (r"^\S+$", "予約\u3000変更", False),
        (r"^[^\s]+$", "予約変更", True),
        # Python spellings RE2 has its own words for.
        (r"^\u4e88\u7d04$", "予約", True),
        (r"予約\Z", "予約", True),
        # RE2 syntax beyond Python's, and what both have.
        (r"^\p{Han}+$", "予約", True),
        (r"^\p{Katakana}+$", "ヨヤク", True),
        (r"(?i)^reserve$", "RESERVE", True),
        (r"^(?P<what>予約|よやく)$", "よやく", True),
        (r"\Q1+1\E", "1+1=2", True),
        (r"^[]a]$", "]", True),
        (r"^[[:digit:]]$", "1", True),
        (r"\\d", "\\d", True),
        (r"^[\\]\d$", "\\１", True),
    ],
)
def test_unicode_classes_mean_what_they_meant_in_python(
    pattern: str, text: str, matches: bool
) -> None:
    assert rule(pattern).matches(text) is matches


def test_classes_are_rewritten_inside_and_outside_brackets() -> None:
    assert to_re2(r"\d[\d,]") == r"\p{Nd}[\p{Nd},]"
    assert to_re2(r"\w") == r"[\p{L}\p{N}_]"
    assert to_re2(r"\Q\d\E\d") == r"\Q\d\E\p{Nd}"
    assert to_re2(r"\\d") == r"\\d"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape sequence: \\1 (backreferences such as \\1 are not supported)"),
        (r"(?P<x>a)(?P=x)", "(backreferences such as (?P=name) are not supported)"),
        (r"予約(?=する)", "invalid perl operator: (?= (lookahead is not supported)"),
        (r"(?!キャンセル)予約", "(lookahead is not supported)"),
        (r"(?<=ご)予約", "(lookbehind is not supported)"),
        (r"(?<!ご)予約", "(lookbehind is not supported)"),
        (r"(?>a+)b", "(atomic groups are not supported, nor needed: RE2 never backtracks)"),
        (r"a++", "(possessive repetition is not supported, nor needed: RE2 never backtracks)"),
        (r"(?x) a b", "invalid perl operator: (?x (the flags are i, m, s and U)"),
        (r"[x\S]", "\\S inside [...] is not supported; write (?:\\S|[...]) instead"),
        (r"(予約", "missing ): (予約"),
        (r"a{1001}", "invalid repetition size: {1001}"),
    ],
)
def test_patterns_re2_cannot_run_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(PatternError) as refused:
        compile_pattern(pattern)
    assert str(refused.value).endswith(reason)
    with pytest.raises(ValidationError) as caught:
        rule(pattern)
    [error] = caught.value.errors()
    assert error["loc"] == ("match",)
    assert "not a regular expression RE2 can run: " in error["msg"]


def test_only_regex_mode_is_compiled() -> None:
    assert KeywordRule(match="(?=x)", reply="ok").matches("(?=x)")
    assert KeywordRule(match="(a)\\1", mode="contains", reply="ok").matches("x(a)\\1")
