"""`GET /metrics`: Prometheus text with outbox, webhook and send figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import requests

from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.support import Stack, write_flows


def test_metrics_after_a_conversation(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.say("女性")
    response = requests.get(f"{stack.bot.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert 'stepline_outbox_rows{kind="reply",status="sent"} 2' in text
    assert 'stepline_webhook_events{status="done"} 2' in text
    assert "stepline_outbox_due_lag_seconds 0" in text
    assert 'stepline_sends_total{endpoint="reply",outcome="sent"' in text
    count_line = next(
        line for line in text.splitlines() if line.startswith("stepline_webhook_seconds_count")
    )
    assert float(count_line.rsplit(" ", 1)[1]) >= 2


WELCOME = """\
sequence: welcome
start_on: [{follow: new}]
steps:
  - {after: 1h, text: ご来店お待ちしております}
"""


def gauge(stack: Stack, name: str) -> float:
    text = requests.get(f"{stack.bot.url}/metrics", timeout=10).text
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[1])


def test_steps_and_broadcasts_growing_late_show_though_the_outbox_is_empty(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    # No worker runs here: what is due stays unplanned, as when every worker is down.
    stack = make_stack(
        write_flows(
            tmp_path,
            salon=TEST_FLOWS.joinpath("salon.yaml").read_text(encoding="utf-8"),
            welcome=WELCOME,
        )
    )
    user = stack.user()
    user.follow()
    response = stack.api(
        "POST",
        "/broadcasts",
        json={
            "segment": {"followed_within": "1d"},
            "messages": [{"text": "冬のキャンペーン"}],
            "send_at": (stack.clock.now() + timedelta(minutes=30)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    names = (
        "stepline_outbox_due_lag_seconds",
        "stepline_steps_due_lag_seconds",
        "stepline_broadcasts_due_lag_seconds",
    )
    assert [gauge(stack, name) for name in names] == [0, 0, 0]
    stack.clock.advance(timedelta(hours=1, minutes=5))
    assert [gauge(stack, name) for name in names] == [0, 5 * 60, 35 * 60]
