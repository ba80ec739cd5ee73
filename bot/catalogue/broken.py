"""The names that documents with problems define, read from the YAML as written.

A document with problems is not merged into the catalogue, but what it defines is not unknown
either: a typo in flow 'survey' must not make every `start_flow: survey` an "unknown flow", nor a
broken `tags:` list every tag an "unknown tag". So the loader notes, for each such document, the
names it was meant to define (`intended`; for a document YAML cannot parse at all, read from its
text by `written`), and `names` tells them from its value. When they cannot be told (`flow: [a]`,
`fields: 5`, `alias:` misspelt), `names` says None: no name of that kind is reported unknown.

Declarations are read generously: every word of `tags: 女性, 男性`, or of a declaration YAML
cannot parse, counts as a name, since a word counted for nothing only hides a typo, while a name
missed reports every use of it.
"""

from __future__ import annotations

import re
from typing import Any

from bot.catalogue.explain import closest, model_keys
from bot.catalogue.models import ALIAS_PATTERN, DOCUMENT_KINDS, NAME_PATTERN, RichMenuDoc

NAMED_KINDS = ("flow", "event", "sequence", "segment", "broadcast", "rich_menu")
DECLARATIONS = ("fields", "tags", "links")  # the kinds whose documents define many names
# Kinds that are collections rather than named things: one document may hold several of them.
LIST_KINDS = ("fields", "tags", "keywords", "links")
# A rich menu's `alias`, which a `switch` names, is defined like a kind of its own.
ALIAS = "alias"
_NAME = {**dict.fromkeys(NAMED_KINDS, re.compile(NAME_PATTERN)), ALIAS: re.compile(ALIAS_PATTERN)}
# A name that cannot be told: not written as one word, or not a valid name (`alias: menu [`
# is likely `menu` with a slip of the finger, but which name is meant is a guess).
UNREADABLE = object()


class Unparsed(str):
    """The text of a declaration YAML cannot parse (`tags: [女性, 男性`)."""


# A word of YAML text: what may be a name in `tags: 女性, 男性` or in `tags: [女性, 男性`.
_WORD = re.compile(r"""[^\s\[\]{},:"'#&*!|>-][^\s\[\]{},:"'#]*""")
_COMMENT = re.compile(r"(?:^|\s)#.*$", re.M)
_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*))?$")
# The first key of a document YAML cannot parse may be what is wrong with it (`flow " x`).
_FIRST_KEY = re.compile(r"""^\s*["']?([A-Za-z_][\w-]*)["']?(?:\s*[:"'=]|\s)\s*(.*)$""")
_NOT_A_KEY = re.compile(r"^(?:---|\.\.\.)(?:\s|$)|^\s*(?:#|$)|^%")


def names(kind: str, value: Any) -> set[str] | None:
    """The names a document's `kind: value` defines, as written; None: they cannot be told."""
    if value is None or kind not in (*_NAME, *DECLARATIONS):
        return set()
    if value is UNREADABLE or isinstance(value, bool | int | float):
        return None
    if kind in _NAME:
        valid = isinstance(value, str) and _NAME[kind].match(value)
        return {value} if valid else None
    if isinstance(value, Unparsed) or (kind == "tags" and isinstance(value, str)):
        return set(_WORD.findall(_COMMENT.sub("", value)))
    if isinstance(value, dict):
        return {str(k) for k in value}
    if isinstance(value, list):
        found: set[str] = set()
        for item in value:  # `fields: [age]`; `tags: [女性, 男性: x]`
            keys = list(item) if isinstance(item, dict) else [item]
            found.update(str(k) for k in keys if isinstance(k, str | int))
        return found
    return None


def intended(node: dict[Any, Any], readable: bool = True) -> list[tuple[str, Any]]:
    """(kind, value) of what a document with problems was meant to define: its kinds, or the
    kind its first key is a typo of (`flw: survey`). `readable`: YAML could parse it."""
    kinds = [(key, value) for key, value in node.items() if key in DOCUMENT_KINDS]
    if kinds and kinds[0][0] in LIST_KINDS:  # `tgas: [女性]` next to `fields:`
        for key, value in node.items():
            guess = closest(key, list(LIST_KINDS)) if key not in DOCUMENT_KINDS else None
            if guess is not None:
                kinds.append((guess, value))
    if not kinds and node:
        key = next(iter(node))
        guess = closest(key, list(DOCUMENT_KINDS))
        if guess is not None:
            kinds.append((guess, node[key]))
    if ALIAS in node:  # only rich menus have one, whatever their first key says
        kinds.append((ALIAS, node[ALIAS]))
    elif any(kind == "rich_menu" for kind, _ in kinds) and (
        not readable or any(key not in model_keys(RichMenuDoc) for key in node)
    ):
        kinds.append((ALIAS, UNREADABLE))  # it may be there, misspelt or unreadable
    return kinds


def written(lines: list[str]) -> list[tuple[str, Any]]:
    """What a document YAML cannot parse was meant to define, from its lines: its top-level
    keys, a named document's name when written as one word, every word of a declaration (under
    each kind of declaration: which key a word is under is a guess, too)."""
    texts: dict[str, list[str]] = {}
    key: str | None = None
    for line in lines:
        if not texts and _NOT_A_KEY.match(line):
            continue
        match = (_KEY if texts else _FIRST_KEY).match(line.rstrip())
        if match is None:
            if key is not None:
                texts[key].append(line)
            continue
        key = match.group(1)
        if key in texts:
            key = None  # a duplicate: its own problem
            continue
        texts[key] = [match.group(2) or ""]
    node: dict[str, Any] = {}
    for key, text in texts.items():
        if key in _NAME:
            word = _COMMENT.sub("", text[0]).strip().strip("\"'").strip()
            node[key] = word or UNREADABLE
        else:
            node[key] = Unparsed("\n".join(text))
    kinds = intended(node, readable=False)
    if kinds and kinds[0][0] in LIST_KINDS:
        every_word = Unparsed("\n".join(lines))
        return [(kind, every_word) for kind in DECLARATIONS]
    return kinds
