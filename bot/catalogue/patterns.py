"""Regular expressions a catalogue author writes (keywords with `mode: regex`), run by RE2.

RE2 matches in time linear in the text, whatever the pattern: `^(a+)+$` cannot take seconds
on a friend's message while the turn holds the database's write lock, as Python's
backtracking `re` can. In return RE2 has no backreferences and no lookaround, and
`compile_pattern` refuses such a pattern (`check` reports it at the pattern).

Patterns keep the meaning they had under Python's `re` where RE2 differs only in detail:
`\\d`, `\\w` and `\\s` (and `\\D`, `\\W`, `\\S`) are Unicode-aware as in Python (RE2's own are
ASCII, so `\\d` would miss the full-width digits Japanese keyboards type), and Python's `\\Z`,
`\\uXXXX` and `\\UXXXXXXXX` are spelt the RE2 way. `\\b` stays RE2's ASCII word boundary.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

# Python's `\s` for str patterns: every character for which str.isspace() holds.
_SPACE = (
    r"\t\n\x0b\f\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}"
)
# Python's `\w`: str.isalnum() (letters and numbers of every script) or the underscore.
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"  # Python's `\d`: str.isdecimal()

_OUTSIDE_CLASS = {
    "d": _DIGIT,
    "D": r"\P{Nd}",
    "s": f"[{_SPACE}]",
    "S": f"[^{_SPACE}]",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "Z": r"\z",  # Python's end of text
}
_INSIDE_CLASS = {"d": _DIGIT, "D": r"\P{Nd}", "s": _SPACE, "w": _WORD}
_HEX = frozenset("0123456789abcdefABCDEF")

# What RE2's complaint means to someone used to Python's `re`, by what it complains about.
_HINTS = {
    "(?=": "lookahead is not supported",
    "(?!": "lookahead is not supported",
    "(?<=": "lookbehind is not supported",
    "(?<!": "lookbehind is not supported",
    "(?P": "backreferences such as (?P=name) are not supported",
    "\\k": "backreferences such as \\k<name> are not supported",
    "(?>": "atomic groups are not supported, nor needed: RE2 never backtracks",
    "(?#": "comments (?#...) are not supported",
    "*+": "possessive repetition is not supported, nor needed: RE2 never backtracks",
    "++": "possessive repetition is not supported, nor needed: RE2 never backtracks",
    "?+": "possessive repetition is not supported, nor needed: RE2 never backtracks",
}


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says why."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is raised (and reported by `check`), not logged
    return options


def _hint(reason: str) -> str:
    what = reason.rpartition(": ")[2]
    if what in _HINTS:
        return _HINTS[what]
    if len(what) == 2 and what[0] == "\\" and what[1].isdigit():
        return "backreferences such as \\1 are not supported"
    if what.startswith("(?") and what[2:].replace("-", "").isalpha():
        return "the flags are i, m, s and U"
    return ""


def to_re2(pattern: str) -> str:
    """`pattern` with Python's Unicode meaning of `\\d \\w \\s` and its `\\Z`, `\\u`, `\\U`
    spelt for RE2; everything else as written."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_body = 0  # where the current class's members start (a `]` there is a member)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escape = pattern[i + 1]
            if escape == "Q":  # \Q…\E quotes text literally: copied untouched
                end = pattern.find("\\E", i + 2)
                stop = n if end < 0 else end + 2
                out.append(pattern[i:stop])
                i = stop
                continue
            width = {"u": 4, "U": 8}.get(escape, 0)
            digits = pattern[i + 2 : i + 2 + width]
            if width and len(digits) == width and set(digits) <= _HEX:
                out.append(f"\\x{{{digits}}}")
                i += 2 + width
                continue
            table = _INSIDE_CLASS if in_class else _OUTSIDE_CLASS
            if in_class and escape in "SW":
                raise PatternError(
                    f"\\{escape} inside [...] is not supported; write (?:\\{escape}|[...]) instead"
                )
            out.append(table.get(escape, pattern[i : i + 2]))
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):  # a POSIX class such as [:alpha:]
                end = pattern.find(":]", i + 2)
                if end >= 0:
                    out.append(pattern[i : end + 2])
                    i = end + 2
                    continue
            if char == "]" and i > class_body:
                in_class = False
        elif char == "[":
            in_class = True
            class_body = i + 1 + (pattern.startswith("^", i + 1))
            out.append(pattern[i:class_body])
            i = class_body
            continue
        out.append(char)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program of an author's pattern (cached), or `PatternError` saying why not."""
    try:
        return re2.compile(to_re2(pattern), _options())
    except re2.error as exc:
        raw = exc.args[0] if exc.args else exc
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        hint = _hint(reason)
        raise PatternError(f"{reason}{f' ({hint})' if hint else ''}") from None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches anywhere in `text` (in linear time)."""
    return compile_pattern(pattern).search(text) is not None
