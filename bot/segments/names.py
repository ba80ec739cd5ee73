"""What a segment names that does not exist: tags, fields, links, sequences and questions the
catalogue does not define, routes no friend came by, audiences never uploaded, and field
operands a field of that type can never hold.

Such a segment is valid and simply matches nobody through that part, which is never what was
meant: a typo (`VIP会員` for `VIP`) would send a broadcast to no one, or to everyone under a
`not`. `unknown_names` lists them all (named segments expanded); the broadcast service refuses
them, the count answers them as warnings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from bot.catalogue import Catalogue
from bot.catalogue.explain import article, suggest
from bot.catalogue.lint.base import ORDERED_TYPES, value_problem
from bot.catalogue.models import (
    AnsweredCondition,
    AudienceCondition,
    ClickedCondition,
    Condition,
    FieldCondition,
    InSequenceCondition,
    RouteCondition,
    TagCondition,
)
from bot.segments.resolving import expanded
from storage.models import Audience, Friend


def unknown_names(
    session: Session | Connection, condition: Condition, catalogue: Catalogue
) -> list[str]:
    """One line per thing the condition names that does not exist (empty: all exist)."""
    leaves = list(expanded(condition, catalogue, ()))
    routes = sorted({c.route for c in leaves if isinstance(c, RouteCondition)})
    audiences = sorted({c.audience for c in leaves if isinstance(c, AudienceCondition)})
    known_routes = set(
        session.execute(select(Friend.route).where(Friend.route.in_(routes)).distinct()).scalars()
        if routes
        else ()
    )
    known_audiences = set(
        session.execute(select(Audience.name).where(Audience.name.in_(audiences))).scalars()
        if audiences
        else ()
    )
    problems: list[str] = []
    for leaf in leaves:
        if isinstance(leaf, RouteCondition) and leaf.route not in known_routes:
            problems.append(
                f"no friend has route '{leaf.route}' (routes are set with "
                "PATCH /api/v1/friends/<id>)"
            )
        elif isinstance(leaf, AudienceCondition) and leaf.audience not in known_audiences:
            problems.append(f"unknown audience '{leaf.audience}' (upload it first)")
        else:
            problems.extend(_catalogue_problems(leaf, catalogue))
    return list(dict.fromkeys(problems))


def _catalogue_problems(leaf: Condition, catalogue: Catalogue) -> Iterator[str]:
    if isinstance(leaf, TagCondition) and leaf.tag not in catalogue.tags:
        yield f"unknown tag '{leaf.tag}'{suggest(leaf.tag, list(catalogue.tags))}"
    elif isinstance(leaf, FieldCondition):
        yield from _field_problems(leaf, catalogue)
    elif isinstance(leaf, ClickedCondition) and leaf.clicked not in catalogue.links:
        yield f"unknown link '{leaf.clicked}'{suggest(leaf.clicked, sorted(catalogue.links))}"
    elif isinstance(leaf, InSequenceCondition) and leaf.in_sequence not in catalogue.sequences:
        hint = suggest(leaf.in_sequence, sorted(catalogue.sequences))
        yield f"unknown sequence '{leaf.in_sequence}'{hint}"
    elif isinstance(leaf, AnsweredCondition):
        spec = leaf.answered
        flow = catalogue.flows.get(spec.flow)
        if flow is None:
            yield f"unknown flow '{spec.flow}'{suggest(spec.flow, sorted(catalogue.flows))}"
        elif spec.step not in (steps := [s.ask for s in flow.steps]):
            yield f"flow '{spec.flow}' has no step '{spec.step}'{suggest(spec.step, steps)}"


def _field_problems(leaf: FieldCondition, catalogue: Catalogue) -> Iterator[str]:
    definition = catalogue.fields.get(leaf.field)
    if definition is None:
        yield f"unknown field '{leaf.field}'{suggest(leaf.field, sorted(catalogue.fields))}"
        return
    operator, operand = leaf.operator, leaf.operand
    operands: list[Any] = []
    if operator in ("eq", "ne") and operand is not None:
        operands = [operand]
    elif operator == "in":
        operands = list(operand or [])
    elif operator in ("gt", "gte", "lt", "lte", "between") and (
        definition.type not in ORDERED_TYPES
    ):
        yield (
            f"field '{leaf.field}': '{operator}' compares numbers or dates; it is "
            f"{article(definition.type)} field"
        )
    for value in operands:
        problem = value_problem(definition, value)
        if problem is not None:
            yield f"field '{leaf.field}': {problem}"
