"""pydantic validation errors → plain-English `Problem`s at the right `line:col`.

A pydantic `loc` is a path through the *model*: besides mapping keys and list indices it holds
the tags of tagged unions (`('do', 0, 'tag', 'tag')`) and the member names of plain unions
(`('next', 'list[NextRule]', 0)`). `walk` follows the model's type annotations alongside the
YAML tree, so each element is consumed the way pydantic produced it, and ends on the YAML node
the error is about.
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from bot.catalogue import models as m
from bot.catalogue.catalogue import Problem
from bot.catalogue.source import Locator, PathItem

# ---------------------------------------------------------------------------- type helpers


def _unwrap(tp: Any) -> tuple[Any, Discriminator | None]:
    """Strip Annotated/Optional layers; return (type, discriminator if a tagged union)."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            inner, *meta = get_args(tp)
            disc = next((x for x in meta if isinstance(x, Discriminator)), None)
            if disc is not None:
                return inner, disc
            tp = inner
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp, None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_member(union: Any, tag: Any) -> Any:
    for member in get_args(union):
        if get_origin(member) is Annotated:
            inner, *meta = get_args(member)
            if any(isinstance(x, Tag) and x.tag == tag for x in meta):
                return inner
    return None


def _union_member(union: Any, label: str) -> Any:
    """The member of a plain union that pydantic names `label` in a loc."""
    members = [a for a in get_args(union) if a is not type(None)]
    for member in members:
        base, _ = _unwrap(member)
        if _is_model(base) and base.__name__ == label:
            return member
    prefixes = {"list[": list, "dict[": dict, "tuple[": tuple, "literal[": Literal}
    for prefix, origin in prefixes.items():
        if label.startswith(prefix):
            for member in members:
                base, _ = _unwrap(member)
                if get_origin(base) is origin:
                    return member
    return Any  # a scalar member: nothing further to walk


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts as YAML spells them (aliases: `if`, `in`, `not`)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _field_type(model: type[BaseModel], key: Any) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


# ---------------------------------------------------------------------------- context names

_SUBJECTS: dict[type[BaseModel], str] = {
    m.FlowDoc: "flow",
    m.Step: "step",
    m.Choice: "choice",
    m.KeywordRule: "keyword",
    m.SequenceDoc: "sequence",
    m.SequenceStep: "step",
}
_ELEMENTS: dict[str, str] = {
    "condition": "the condition",
    "action": "the action",
    "trigger": "the trigger",
    "message": "the message",
}


def _family(model: type[BaseModel]) -> str | None:
    """Which tagged union a model is a member of (by the union's keys)."""
    kind = getattr(model, "KIND", None)
    for family, suffix in (
        ("condition", "Condition"),
        ("action", "Action"),
        ("trigger", "Trigger"),
        ("message", "MessageDef"),
    ):
        if kind is not None and model.__name__.endswith(suffix):
            return family
    return None


def _model_element(model: type[BaseModel]) -> str | None:
    kind = getattr(model, "KIND", None)
    module_union = {
        "Condition": "condition",
        "Action": "action",
        "Trigger": "trigger",
        "MessageDef": "message",
    }
    name = model.__name__
    for suffix, element in module_union.items():
        if name.endswith(suffix) and kind is not None:
            if element == "action":
                return f"the '{kind}' action"
            if element == "message":
                return f"the {kind} message"
            return f"the '{kind}' {element}"
    if model is m.NextRule:
        return "the 'next' rule"
    if model is m.ButtonAction:
        return "the button"
    if model is m.PickerSpec:
        return "the date picker"
    return None


@dataclass
class Context:
    """The named things a YAML path passes through: `step 'age'`, `choice '女性'`…"""

    subjects: list[str] = field(default_factory=list)
    element: str | None = None
    element_kind: str | None = None  # the key that names the element (`tag` of a tag action)
    element_family: str | None = None  # condition, action, trigger or message

    def push_subject(self, text: str) -> None:
        self.subjects.append(text)
        self.element = None
        self.element_kind = None
        self.element_family = None

    def describe(self, key: Any = None) -> str:
        """`the 'field' condition of step 'age'`; the element is left out when `key` names it
        (`step 'age': 'follow' must be …` says enough)."""
        if key is not None and key == self.element_kind:
            return Context(self.subjects).describe()
        subject = ""
        if self.subjects:
            subject = self.subjects[-1]
            if subject.startswith("choice") and len(self.subjects) > 1:
                subject = f"{subject} of {self.subjects[-2]}"
        if self.element and subject:
            return f"{self.element} of {subject}"
        return self.element or subject


def _quote(value: Any) -> str:
    return f"'{value}'"


# ---------------------------------------------------------------------------- the walk


@dataclass
class Spot:
    """Where a pydantic error lands in the YAML."""

    path: list[PathItem] = field(default_factory=list)  # YAML path to the node
    key: Any = None  # the last mapping key passed (what the user wrote, e.g. 'choices')
    model: type[BaseModel] | None = None  # the model whose key/field the error is about
    missing: Any = None  # a key the model needs but the mapping lacks
    is_key_error: bool = False  # the error is about a mapping key itself ('[key]')
    union_at: list[int] = field(default_factory=list)  # loc indices of plain-union labels
    context: Context = field(default_factory=Context)
    final_type: Any = None
    node: Any = None
    siblings: list[Any] = field(default_factory=list)  # keys of the mapping the key is in
    needs_items: int | None = None  # a fixed-length list given too few items…
    got_items: int = 0  # …and how many it has


def walk(root_type: Any, root: Any, loc: tuple[Any, ...]) -> Spot:
    spot = Spot(node=root)
    tp: Any = root_type
    node = root
    depth_known = True  # False once the YAML no longer has the nodes the loc names
    _enter(spot, tp, node, None)
    for index, item in enumerate(loc):
        base, disc = _unwrap(tp)
        if disc is not None:
            member = _tag_member(base, item)
            tp = member if member is not None else Any
            _enter(spot, tp, node, None)
            continue
        if get_origin(base) in (Union, types.UnionType):
            spot.union_at.append(index)
            tp = _union_member(base, str(item))
            continue
        if _is_model(base):
            spot.model = base
            spot.key = item
            field_type = _field_type(base, item)
            if depth_known and isinstance(node, dict) and item in node:
                spot.siblings = list(node)
                spot.path.append(item)
                node = node[item]
            else:
                if field_type is not None:
                    spot.missing = item
                depth_known = False
            tp = field_type if field_type is not None else Any
            _enter(spot, tp, node if depth_known else None, item)
            continue
        origin = get_origin(base)
        if origin is dict:
            if item == "[key]":
                spot.is_key_error = True
                continue
            spot.key = item
            _, value_type = get_args(base)
            if depth_known and isinstance(node, dict) and item in node:
                spot.path.append(item)
                node = node[item]
            else:
                depth_known = False
            tp = value_type
            _enter_entry(spot, item)
            _enter(spot, tp, node if depth_known else None, None)
            continue
        if origin in (list, tuple):
            args = get_args(base)
            if origin is tuple and args and args[-1] is not Ellipsis and isinstance(item, int):
                tp = args[item] if item < len(args) else Any
            else:
                tp = args[0] if args else Any
            if isinstance(item, int) and depth_known:
                if isinstance(node, list) and item < len(node):
                    spot.path.append(item)
                    node = node[item]
                elif isinstance(node, list):
                    spot.missing = item
                    if origin is tuple and args and args[-1] is not Ellipsis:
                        spot.needs_items = len(args)
                        spot.got_items = len(node)
                    depth_known = False
                # else: a single value accepted as a one-item list (`send: {text: …}`)
            _enter(spot, tp, node if depth_known else None, None)
            continue
        # Anything else: a scalar type with nothing to walk into.
        tp = Any
    spot.final_type = tp
    spot.node = node if depth_known else None
    return spot


def _enter_entry(spot: Spot, key: Any) -> None:
    """A key of a named dict: `fields: {age: …}`, `links: {coupon: …}`."""
    if spot.model is m.FieldsDoc:
        spot.context.push_subject(f"field {_quote(key)}")
    elif spot.model is m.LinksDoc:
        spot.context.push_subject(f"link {_quote(key)}")


def _enter(spot: Spot, tp: Any, node: Any, key: Any) -> None:
    base, _ = _unwrap(tp)
    if not _is_model(base):
        return
    if base in _SUBJECTS:
        name_key = {
            "flow": "flow",
            "step": "ask",
            "choice": "label",
            "keyword": "match",
            "sequence": "sequence",
        }
        kind = _SUBJECTS[base]
        name = node.get(name_key[kind]) if isinstance(node, dict) else None
        if isinstance(name, dict | list):
            name = None  # not a name (its own problem says so)
        if name is None and kind == "step" and spot.path and isinstance(spot.path[-1], int):
            spot.context.push_subject(f"step {spot.path[-1] + 1}")
        elif name is None:
            spot.context.push_subject(f"this {kind}")
        else:
            spot.context.push_subject(f"{kind} {_quote(name)}")
        return
    element = _model_element(base)
    if element is not None:
        spot.context.element = element
        spot.context.element_kind = getattr(base, "KIND", None)
        spot.context.element_family = _family(base)


# ---------------------------------------------------------------------------- messages

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "date_type": "a date (2026-12-01)",
    "date_parsing": "a date (2026-12-01)",
    "date_from_datetime_parsing": "a date (2026-12-01)",
    "datetime_type": "a date and time (2026-12-01 10:00)",
    "datetime_parsing": "a date and time (2026-12-01 10:00)",
    "datetime_from_date_parsing": "a date and time (2026-12-01 10:00)",
    "timedelta_type": "a duration such as 30m, 24h or 7d",
    "none_required": "nothing",
}


def show_value(value: Any) -> str:
    """A value as a business owner wrote it."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:39] + "…"
        return f"'{shown}'"
    return str(value)


def closest(word: Any, options: list[str]) -> str | None:
    """The option `word` is most likely a typo of, if any."""
    if not isinstance(word, str):
        return None
    cutoff = 0.5 if len(word) <= 4 else 0.6  # short (Japanese) names differ by one character
    close = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return close[0] if close else None


def suggest(word: Any, options: list[str]) -> str:
    """` (did you mean 'x'?)` or nothing."""
    close = closest(word, options)
    return f" (did you mean '{close}'?)" if close else ""


def _unknown_key_options(spot: Spot) -> list[str]:
    options = model_keys(spot.model) if spot.model else []
    return [o for o in options if o not in spot.siblings]


def _join_words(words: list[str]) -> str:
    unique = list(dict.fromkeys(words))
    if {"text", "a whole number", "a number", "true or false"} <= set(unique):
        rest = [
            w for w in unique if w not in ("text", "a whole number", "a number", "true or false")
        ]
        unique = ["a single value (text, a number or true/false)", *rest]
    if "a whole number" in unique and "a number" in unique:
        unique.remove("a whole number")
    if len(unique) == 1:
        return unique[0]
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def _backticks(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"'\1'", text)


_NAME_RULE = "a name without spaces, ':', '|' or '/' (at most 100 characters)"


def _prefix(context: str) -> str:
    return f"{context}: " if context else ""


def _label(spot: Spot) -> str:
    if spot.key is None or isinstance(spot.key, int):
        return "the value"
    return _quote(spot.key)


def message_for(error: dict[str, Any], spot: Spot, union_group: list[dict[str, Any]]) -> str:
    kind = error["type"]
    ctx = spot.context.describe(None if kind in ("extra_forbidden", "missing") else spot.key)
    value = error.get("input")
    label = _label(spot)
    family = spot.context.element_family
    if kind == "extra_forbidden" and family and spot.key in _UNION_KEYS[family]:
        first = spot.context.element_kind
        where = Context(spot.context.subjects).describe()
        where = f" in {where}" if where else ""
        both = f"[{{{first}: …}}, {{{spot.key}: …}}]"
        advice = f"combine them with all: {both}" if family == "condition" else f"write {both}"
        return f"one {family} cannot hold both '{first}' and '{spot.key}'{where}; {advice}"
    if kind == "extra_forbidden":
        options = _unknown_key_options(spot)
        where = f" in {ctx}" if ctx else ""
        return f"unknown key {_quote(spot.key)}{where}{suggest(spot.key, options)}"
    if kind == "missing":
        if isinstance(spot.missing, int):
            if spot.needs_items is not None:
                return f"{_prefix(ctx)}{label} needs {spot.needs_items} items, got {spot.got_items}"
            return f"{_prefix(ctx)}{label} needs more items"
        where = f" in {ctx}" if ctx else ""
        return f"missing key {_quote(spot.missing)}{where}"
    if kind in ("condition", "action", "trigger", "message"):
        return _union_kind_message(kind, value, ctx)
    if kind == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
        text = text.removeprefix("Value error, ")
        return f"{_prefix(ctx)}{_backticks(text)}"
    if kind == "assertion_error":
        return f"{_prefix(ctx)}{error['msg'].removeprefix('Assertion failed, ')}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        got = show_value(value)
        return f"{_prefix(ctx)}{label} must be {expected}, got {got}{suggest(value, options)}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern == m.NAME_PATTERN:
            if spot.is_key_error:
                return f"{_prefix(ctx)}the name {show_value(value)} must be {_NAME_RULE}"
            return f"{_prefix(ctx)}{label} must be {_NAME_RULE}, got {show_value(value)}"
        if pattern.startswith("^https?"):
            return f"{_prefix(ctx)}{label} must start with http:// or https://, got {show_value(value)}"
        return f"{_prefix(ctx)}{label} does not have the expected form, got {show_value(value)}"
    if kind == "string_too_short":
        return f"{_prefix(ctx)}{label} must not be empty"
    if kind == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        return f"{_prefix(ctx)}{label} is too long ({len(str(value))} characters; at most {limit})"
    if kind == "too_short":
        limit = error.get("ctx", {}).get("min_length")
        what = "entry" if isinstance(value, dict) else "item"
        plural = "" if limit == 1 else ("ies" if what == "entry" else "s")
        noun = what[:-1] if what == "entry" and plural else what
        return f"{_prefix(ctx)}{label} needs at least {limit} {noun}{plural}"
    if kind == "too_long":
        limit = error.get("ctx", {}).get("max_length")
        actual = error.get("ctx", {}).get("actual_length")
        return f"{_prefix(ctx)}{label} has {actual} items; at most {limit} are allowed"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = error.get("ctx", {})
        bounds = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return (
            f"{_prefix(ctx)}{label} must be {bounds[0]} {bound.get(bounds[1])},"
            f" got {show_value(value)}"
        )
    if kind in _TYPE_WORDS or union_group:
        kinds = [e["type"] for e in union_group] or [kind]
        literal = next((e for e in union_group if e["type"] == "literal_error"), None)
        if literal is not None and isinstance(value, str):
            return message_for(literal, spot, [])
        words: list[str] = [_TYPE_WORDS.get(k, k.replace("_", " ")) for k in kinds]
        if any(k == "literal_error" for k in kinds):
            expected = next(
                e.get("ctx", {}).get("expected", "")
                for e in union_group
                if e["type"] == "literal_error"
            )
            words = [
                expected if k == "literal_error" else w for k, w in zip(kinds, words, strict=True)
            ]
        if kind == "int_from_float":
            return f"{_prefix(ctx)}{label} must be a whole number, got {show_value(value)}"
        return f"{_prefix(ctx)}{label} must be {_join_words(words)}, got {show_value(value)}"
    message = error.get("msg", "is not valid")
    return f"{_prefix(ctx)}{label}: {message[:1].lower()}{message[1:]}"


_UNION_KEYS = {
    "condition": m._CONDITION_KEYS,
    "action": m._ACTION_KEYS,
    "trigger": m._TRIGGER_KEYS,
    "message": m._MESSAGE_KEYS,
}
_UNION_EXAMPLES = {
    "condition": "{tag: 女性}",
    "action": "{tag: 女性}",
    "trigger": "{keyword: 予約}",
    "message": "{text: こんにちは}",
}


def _union_kind_message(kind: str, value: Any, ctx: str) -> str:
    keys = list(_UNION_KEYS[kind])
    where = f" in {ctx}" if ctx else ""
    article = "an" if kind[0] in "aeiou" else "a"
    if isinstance(value, dict):
        if not value:
            return f"empty {kind}{where}: {article} {kind} needs one of the keys: {', '.join(keys)}"
        first = next(iter(value))
        hint = suggest(first, keys) or f" ({article} {kind} is one of: {', '.join(keys)})"
        return f"unknown {kind} {_quote(first)}{where}{hint}"
    return (
        f"{article} {kind}{where} must be a mapping such as {_UNION_EXAMPLES[kind]},"
        f" got {show_value(value)}"
    )


# ---------------------------------------------------------------------------- entry point


def _error_position(spot: Spot, error: dict[str, Any], locator: Locator) -> tuple[int, int]:
    kind = error["type"]
    if kind == "extra_forbidden" or spot.is_key_error:
        return locator.at(spot.path, key=True)
    union_kind = kind in ("condition", "action", "trigger", "message")
    if union_kind and isinstance(spot.node, dict) and spot.node:
        first = next(iter(spot.node))
        return locator.at([*spot.path, first], key=True)
    return locator.at(spot.path)


def _step_defined_twice(error: dict[str, Any], locator: Locator) -> Problem | None:
    text = str(error.get("ctx", {}).get("error", ""))
    match = re.fullmatch(r"step `(.+)` is defined twice", text)
    root = locator.root
    if not match or not isinstance(root, dict) or not isinstance(root.get("steps"), list):
        return None
    name = match.group(1)
    hits = [
        i
        for i, step in enumerate(root["steps"])
        if isinstance(step, dict) and str(step.get("ask")) == name
    ]
    if len(hits) < 2:
        return None
    first = locator.at(["steps", hits[0], "ask"])
    line, col = locator.at(["steps", hits[1], "ask"])
    return Problem(
        locator.file,
        line,
        col,
        f"step '{name}' is defined twice (first at line {first[0]})",
    )


def explain_whole_document(error: dict[str, Any], locator: Locator) -> list[Problem]:
    """An error about the document as a whole (a flow's step defined twice) as a Problem."""
    special = _step_defined_twice(error, locator)
    return [special] if special is not None else []


def error_spots(exc: ValidationError, model: type[BaseModel], root: Any) -> list[Item]:
    """Each error of `exc` with where it lands in `root`, one per value (a plain union's
    members' errors reduced to those of the member the value was meant for)."""
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    spots = [walk(model, root, tuple(e["loc"])) for e in errors]
    return [
        (error, spot) for error, spot, _ in _reduce_unions(list(zip(errors, spots, strict=True)))
    ]


def explain(exc: ValidationError, model: type[BaseModel], locator: Locator) -> list[Problem]:
    """Every error of `exc` as a Problem at the YAML node it is about."""
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    spots = [walk(model, locator.root, tuple(e["loc"])) for e in errors]
    problems: list[Problem] = []
    reduced = _reduce_unions(list(zip(errors, spots, strict=True)))
    # "unknown key 'txt' (did you mean 'text'?)" already says what "missing key 'text'" would.
    typos = {
        (tuple(spot.path[:-1]), closest(spot.key, _unknown_key_options(spot)))
        for error, spot, _ in reduced
        if error["type"] == "extra_forbidden"
    }
    for error, spot, group in reduced:
        if error["type"] == "missing" and (tuple(spot.path), spot.missing) in typos:
            continue
        if error["type"] == "value_error" and not error["loc"]:
            special = _step_defined_twice(error, locator)
            if special is not None:
                problems.append(special)
                continue
        line, col = _error_position(spot, error, locator)
        problems.append(Problem(locator.file, line, col, message_for(error, spot, group)))
    return sorted(set(problems))


Item = tuple[dict[str, Any], Spot]


def _reduce_unions(
    items: list[Item], level: int = 0
) -> list[tuple[dict[str, Any], Spot, list[dict[str, Any]]]]:
    """Collapse the per-member errors of a plain union into one error.

    When some member got past the type check (its errors go deeper than the member name),
    only those errors are kept: the value had that member's shape. Otherwise all members
    failed on the value's type, and one combined "must be A or B" error is produced.
    """
    groups: dict[Any, list[Item]] = {}
    for error, spot in items:
        if len(spot.union_at) > level:
            key: Any = tuple(error["loc"][: spot.union_at[level]])
        else:
            key = ("single", id(error))
        groups.setdefault(key, []).append((error, spot))
    out: list[tuple[dict[str, Any], Spot, list[dict[str, Any]]]] = []
    for key, group in groups.items():
        if key and key[0] == "single" and len(group) == 1 and len(group[0][1].union_at) <= level:
            out.append((group[0][0], group[0][1], []))
            continue
        deep = [(e, s) for e, s in group if len(e["loc"]) > s.union_at[level] + 1]
        if deep:
            out.extend(_reduce_unions(deep, level + 1))
        else:
            error, spot = group[0]
            out.append((error, spot, [e for e, _ in group]))
    return out


def article(word: str) -> str:
    """ "a date", "an integer": the English article for a field type's name."""
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
