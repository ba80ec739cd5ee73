"""Predicates that are a Python constant or a SQL boolean (`Pred`): constants fold away
(`fold_all`, `fold_any`, `negate`) before they reach SQL (`to_sql`)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, not_, or_, true

Pred = bool | ColumnElement[bool]  # a constant folds away before it reaches SQL


def to_sql(pred: Pred) -> ColumnElement[bool]:
    if isinstance(pred, bool):
        return true() if pred else false()
    return pred


def fold_all(*preds: Pred) -> Pred:
    parts: list[ColumnElement[bool]] = []
    for pred in preds:
        if isinstance(pred, bool):
            if not pred:
                return False
            continue
        parts.append(pred)
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else and_(*parts)


def fold_any(*preds: Pred) -> Pred:
    parts: list[ColumnElement[bool]] = []
    for pred in preds:
        if isinstance(pred, bool):
            if pred:
                return True
            continue
        parts.append(pred)
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else or_(*parts)


def negate(pred: Pred) -> Pred:
    if isinstance(pred, bool):
        return not pred
    return not_(pred)
