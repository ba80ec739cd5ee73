"""`stepline emulator --chaos JSON --rate-limits default` as a process (what a benchmark or the
exactly-once test starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.emulator.conftest import SECRET, TOKEN
from tests.emulator.test_cli import SERVE, free_port
from tests.support import wait_until_healthy


@pytest.mark.slow
def test_emulator_command_with_chaos_and_rate_limits() -> None:
    port = free_port()
    chaos = {"rates": {"5xx": 0.05, "accept_then_drop": 0.05, "429": 0.02}, "seed": 42}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "--port",
            str(port),
            "--quiet",
            "--chaos",
            json.dumps(chaos),
            "--rate-limits",
            "default",
        ],
        env={**os.environ, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/_emulator"
        wait_until_healthy(process, f"{url}/health")
        shown = requests.get(f"{url}/chaos", timeout=5).json()
        assert shown["enabled"] is True
        assert shown["settings"]["rates"] == {"5xx": 0.05, "429": 0.02, "accept_then_drop": 0.05}
        assert shown["settings"]["seed"] == 42
        limits = requests.get(f"{url}/rate_limits", timeout=5).json()
        assert limits["enabled"] is True
        assert limits["limits"]["POST /v2/bot/message/narrowcast"] == "60/h"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_bad_chaos_option_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE, "--chaos", '{"rates": {"5xx": 2}}'],
        env={**os.environ, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--chaos" in result.stderr and "between 0 and 1" in result.stderr
