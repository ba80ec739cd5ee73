"""What a send will cost before it happens: messages against the plan's monthly quota.

LINE counts one message per recipient per send (up to five message objects in one request
count once); replies are free. Plans (LINE Official Account, 2023-06 prices): free (コミュニ
ケーションプラン) 200 a month, light 5,000, standard 30,000 and extra messages at a price per
message; free and light cannot send beyond their quota. The month's quota and usage come from
LINE's quota endpoints when they answer, else from the configured plan."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.line.client import LineClient, LineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    name: str
    monthly_messages: int
    extra_allowed: bool


PLANS = {
    "free": Plan("free", 200, extra_allowed=False),
    "light": Plan("light", 5000, extra_allowed=False),
    "standard": Plan("standard", 30000, extra_allowed=True),
}


def estimate(
    recipients: int, total_friends: int, settings: Settings, line: LineClient | None
) -> dict[str, Any]:
    """`{"messages", "plan", "quota", "used", "remaining", "extra_messages", "extra_yen"}`
    plus `warnings` for the owner."""
    plan = PLANS[settings.plan]
    warnings: list[str] = []
    quota: int | None = plan.monthly_messages
    used: int | None = None
    if line is not None and not settings.channel_access_token:
        # No channel to ask (a CLI without LINE credentials): say so, without a request that
        # can only fail.
        warnings.append("no LINE_CHANNEL_ACCESS_TOKEN: this month's usage is unknown")
    elif line is not None:
        try:
            answer = line.get_quota()
            quota = int(answer["value"]) if answer.get("type") == "limited" else None
            used = int(answer["total_usage"])
        except (LineError, KeyError, TypeError, ValueError) as exc:
            log.info("could not read the message quota from LINE: %s", str(exc)[:200])
            warnings.append("could not read this month's usage from LINE; assuming none used")
    remaining = None if quota is None else max(0, quota - (used or 0))
    extra = 0 if remaining is None else max(0, recipients - remaining)
    if recipients == 0:
        warnings.append("0 recipients: nobody matches this segment")
    elif total_friends and recipients >= total_friends:
        warnings.append("targets 100% of friends: is a segment intended?")
    if extra:
        if plan.extra_allowed:
            warnings.append(
                f"exceeds the remaining quota by {extra} message(s): "
                f"about ¥{extra * settings.extra_message_yen:,.0f} extra"
            )
        else:
            warnings.append(
                f"exceeds the remaining quota by {extra} message(s); the {plan.name} plan "
                "cannot send more this month (LINE answers 429 for the rest)"
            )
    return {
        "messages": recipients,
        "plan": plan.name,
        "quota": quota,
        "used": used,
        "remaining": remaining,
        "extra_messages": extra,
        "extra_yen": round(extra * settings.extra_message_yen) if plan.extra_allowed else None,
        "warnings": warnings,
    }
