"""`GET /metrics`: Prometheus text with outbox, webhook and send figures."""

from __future__ import annotations

import requests

from tests.support import Stack


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
