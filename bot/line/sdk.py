"""LINE message JSON → the official SDK's model (`linebot.v3`): the SDK's own check of a
message against LINE's schema."""

from __future__ import annotations

from typing import Any

from linebot.v3.messaging import Message


def to_sdk(api_json: dict[str, Any]) -> Message:
    """Build the SDK model; raises ValueError when LINE's schema would reject it."""
    try:
        model = Message.from_dict(api_json)
    except Exception as exc:  # the SDK raises ValueError or pydantic errors
        raise ValueError(f"not a valid LINE message: {exc}") from exc
    if model is None:
        raise ValueError("not a valid LINE message")
    return model
