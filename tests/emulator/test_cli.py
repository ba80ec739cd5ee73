"""`stepline emulator` as a real process: it serves, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import requests

from tests.emulator.conftest import SECRET, TOKEN
from tests.support import wait_until_healthy

SERVE = "from bot.cli.emulator import emulator_command; emulator_command()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_emulator_command_serves_until_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "--port",
            str(port),
            "--webhook-url",
            "http://127.0.0.1:9/cb",
        ],
        env={**os.environ, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(process, f"{url}/_emulator/health")
        info = requests.get(
            f"{url}/v2/bot/info", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert info.status_code == 200
        assert (
            requests.get(f"{url}/_emulator/config", timeout=5).json()["webhook_url"]
            == "http://127.0.0.1:9/cb"
        )
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=10)
        assert process.returncode == 0
        assert "LINE emulator on" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
