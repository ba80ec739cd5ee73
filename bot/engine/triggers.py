"""Does a `start_on` / `stop_on` entry match a trigger that fired? (flows and sequences)"""

from __future__ import annotations

from bot.catalogue.models import (
    BlockedTrigger,
    EventTrigger,
    FieldSetTrigger,
    FlowCompletedTrigger,
    FollowTrigger,
    KeywordTrigger,
    PostbackTrigger,
    TagAddedTrigger,
    Trigger,
)
from bot.catalogue.text import normalise


def trigger_matches(start: Trigger, fired: Trigger) -> bool:
    """Does a flow's `start_on` entry match a trigger that fired?"""
    if isinstance(start, FollowTrigger) and isinstance(fired, FollowTrigger):
        return start.follow == "any" or start.follow == fired.follow
    if isinstance(start, KeywordTrigger) and isinstance(fired, KeywordTrigger):
        return normalise(start.keyword) == normalise(fired.keyword)
    if isinstance(start, PostbackTrigger) and isinstance(fired, PostbackTrigger):
        return start.postback == fired.postback
    if isinstance(start, FlowCompletedTrigger) and isinstance(fired, FlowCompletedTrigger):
        return start.flow_completed == fired.flow_completed
    if isinstance(start, TagAddedTrigger) and isinstance(fired, TagAddedTrigger):
        return start.tag_added == fired.tag_added
    if isinstance(start, FieldSetTrigger) and isinstance(fired, FieldSetTrigger):
        return start.field_set == fired.field_set
    if isinstance(start, EventTrigger) and isinstance(fired, EventTrigger):
        return start.event == fired.event
    return isinstance(start, BlockedTrigger) and isinstance(fired, BlockedTrigger)
