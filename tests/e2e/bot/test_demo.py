"""`stepline demo` as a user runs it: starts, serves the simulator, follows YAML edits,
and stops cleanly on Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLE_FLOWS
from tests.e2e.bot.test_serve import free_port, wait_until

STEPLINE = str(Path(sys.executable).parent / "stepline")


@pytest.mark.slow
def test_demo_runs_reloads_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(EXAMPLE_FLOWS, flows)
    port, emulator_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            STEPLINE,
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--flows",
            str(flows),
            "--database",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    emulator = f"http://127.0.0.1:{emulator_port}"
    bot = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{bot}/healthz", timeout=1).status_code == 200)
        user = requests.post(f"{emulator}/_emulator/users", json={"name": "花子"}, timeout=5).json()
        result = requests.post(f"{emulator}/_emulator/users/{user['user_id']}/follow", timeout=10)
        assert result.json()["status"] == 200

        def messages() -> list[dict[str, Any]]:
            return list(
                requests.get(
                    f"{emulator}/_emulator/users/{user['user_id']}/messages", timeout=5
                ).json()["messages"]
            )

        # The bot answers 200 first and processes the follow right after.
        wait_until(lambda: bool(messages()))
        assert messages()[0]["message"]["text"] == "花子さん、性別を教えてください"
        # The demo syncs the salon's two-tab rich menu to the emulator by itself.
        # The sync creates both menus first and sets the default last: wait for all of it.
        wait_until(
            lambda: (
                len(requests.get(f"{emulator}/_emulator/richmenus", timeout=5).json()["richmenus"])
                == 2
                and "source" in shown_menu(emulator, user["user_id"])
            )
        )
        shown = shown_menu(emulator, user["user_id"])
        assert shown["source"] == "default" and shown["chatBarText"] == "メニュー"

        (flows / "broken.yaml").write_text("flow: x\nsteps: [{ask: a}]\n", encoding="utf-8")
        wait_until(
            lambda: requests.get(f"{bot}/healthz", timeout=1).json()["catalogue_problems"] != []
        )
        (flows / "broken.yaml").unlink()
        wait_until(
            lambda: requests.get(f"{bot}/healthz", timeout=1).json()["catalogue_problems"] == []
        )
    finally:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # never leave a demo running when the test fails
            proc.kill()
            proc.communicate(timeout=10)
            raise
    assert proc.returncode == 0, output
    assert f"{emulator}/simulator" in output
    assert "broken.yaml:" in output  # the problem was shown, with its position
    assert "demo stopped" in output
    assert (tmp_path / "instance" / "demo.log").exists()


def shown_menu(emulator: str, user_id: str) -> dict[str, Any]:
    """The rich menu the emulator shows this user (no `source` while none is)."""
    shown: dict[str, Any] = requests.get(
        f"{emulator}/_emulator/users/{user_id}/richmenu", timeout=5
    ).json()
    return shown
