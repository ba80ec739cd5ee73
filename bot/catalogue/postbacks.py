"""The postback data stepline generates for a flow's choices: `sl1|<flow>|<step>|<index>`.

One format for the engine (which writes and reads it) and for `check` (which measures it
against LINE's 300 characters)."""

from __future__ import annotations

POSTBACK_PREFIX = "sl1"


def choice_data(flow: str, step: str, index: int) -> str:
    """The postback data of a choice's quick reply (`sl1|flow|step|index`)."""
    return f"{POSTBACK_PREFIX}|{flow}|{step}|{index}"
