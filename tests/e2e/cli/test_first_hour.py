"""The first hour of a new user at the command line: quiet answers, a database the CLI can
find or a message saying how, ports and signals handled, no traceback anywhere."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import EXAMPLE_FLOWS, ROOT
from tests.e2e.bot.test_serve import free_port, wait_until

BIN = Path(sys.executable).parent
STEPLINE = str(BIN / "stepline")


def stepline(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`stepline ARGS` as a person runs it in `cwd` (no DATABASE_URL unless given)."""
    mine = ("DATABASE_URL", "STEPLINE_LOG_LEVEL")
    environment = {k: v for k, v in os.environ.items() if k not in mine} | env
    return subprocess.run(
        [STEPLINE, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A new user's folder: the example flows, nothing else yet."""
    shutil.copytree(EXAMPLE_FLOWS, tmp_path / "flows")
    return tmp_path


# ---------------------------------------------------------------------- quiet, whole lines


def test_help_lists_steplines_commands_not_flasks_options() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "check", "friends", "segment", "broadcast", "richmenu"):
        assert f"  {command}" in result.output
    for flask_option in ("--env-file", "--app", "--debug"):
        assert flask_option not in result.output


def test_one_shot_commands_log_no_info_lines(workdir: Path) -> None:
    assert stepline(workdir, "db", "upgrade").returncode == 0
    for args in (("friends",), ("segment", "count", '{"tag": "女性"}'), ("db", "upgrade")):
        done = stepline(workdir, *args)
        assert done.returncode == 0, done.stderr
        assert " INFO " not in done.stderr + done.stdout, args
        assert "catalogue loaded" not in done.stderr
    told = stepline(workdir, "friends", STEPLINE_LOG_LEVEL="INFO")  # still there on request
    assert "catalogue loaded" in told.stderr


# ---------------------------------------------------------------------- the database


def test_a_command_on_no_database_says_how_to_make_one_and_creates_nothing(
    workdir: Path,
) -> None:
    for args in (("friends",), ("segment", "count", '{"tag": "女性"}'), ("broadcast", "list")):
        done = stepline(workdir, *args)
        assert done.returncode == 1, args
        assert "Traceback" not in done.stderr + done.stdout
        assert "there is no database at" in done.stderr
        assert "stepline db upgrade" in done.stderr
    assert not (workdir / "instance" / "stepline.db").exists()  # no empty file left behind


def test_a_database_without_tables_is_named_with_the_fix(workdir: Path) -> None:
    (workdir / "instance").mkdir()
    (workdir / "instance" / "stepline.db").write_bytes(b"")
    done = stepline(workdir, "friends")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "has no stepline tables yet" in done.stderr and "stepline db upgrade" in done.stderr


def test_after_the_demo_the_cli_says_where_the_demos_data_is(workdir: Path) -> None:
    demo_url = f"sqlite:///{workdir / 'instance' / 'demo.db'}"
    assert stepline(workdir, "db", "upgrade", DATABASE_URL=demo_url).returncode == 0
    done = stepline(workdir, "friends")
    assert done.returncode == 1
    assert "DATABASE_URL=sqlite:///instance/demo.db" in done.stderr
    shown = stepline(workdir, "friends", DATABASE_URL="sqlite:///instance/demo.db")
    assert shown.returncode == 0 and "0 friend(s)" in shown.stdout


def test_an_unreachable_postgresql_is_a_sentence_not_a_traceback(workdir: Path) -> None:
    done = stepline(
        workdir, "friends", DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/x"
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot open the database at postgresql://nobody@127.0.0.1:" in done.stderr


# ---------------------------------------------------------------------- ports and signals


@pytest.fixture
def demo(workdir: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `stepline demo` processes; whatever happens in the test, none is left running."""
    started: list[subprocess.Popen[str]] = []
    database = workdir / "demo.db"

    def start(
        *args: str, command: list[str] | None = None, ignore_sigint: bool = False
    ) -> subprocess.Popen[str]:
        def prepare() -> None:
            if ignore_sigint:  # as a shell starts a background job
                signal.signal(signal.SIGINT, signal.SIG_IGN)

        proc = subprocess.Popen(
            # An absolute path: `run.py` runs the command from the repository's root.
            [*(command or [STEPLINE, "demo"]), "--database", f"sqlite:///{database}", *args],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=prepare,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def read_lines(proc: subprocess.Popen[str]) -> list[str]:
    """The process's output lines so far, read on a thread (the list grows as it speaks)."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines


def ports() -> tuple[int, int]:
    return free_port(), free_port()


def wait_for_bot(port: int) -> None:
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok, 60)


@pytest.mark.parametrize("taken", ["--port", "--emulator-port"])
def test_a_busy_port_names_the_option_that_picks_another(
    demo: Callable[..., subprocess.Popen[str]], taken: str
) -> None:
    port, emulator_port = ports()
    busy = port if taken == "--port" else emulator_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        proc = demo("--port", str(port), "--emulator-port", str(emulator_port))
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert f"port {busy} is in use; choose another with {taken}" in output
    assert "Traceback" not in output


def test_the_emulator_on_a_busy_port_says_so(workdir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        done = stepline(
            workdir,
            "emulator",
            "--port",
            str(busy),
            "--channel-secret",
            "s" * 32,
            "--channel-access-token",
            "t" * 32,
        )
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert f"port {busy} is in use; choose another with --port" in done.stderr


def test_the_demo_refuses_broken_flows_and_says_why(
    demo: Callable[..., subprocess.Popen[str]], workdir: Path
) -> None:
    (workdir / "flows" / "broken.yaml").write_text("flow: x\nsteps: [{ask: a}]\n", "utf-8")
    port, emulator_port = ports()
    proc = demo("--port", str(port), "--emulator-port", str(emulator_port))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert "have problems" in output and "broken.yaml:" in output
    assert "Traceback" not in output
    with pytest.raises(requests.ConnectionError):  # nothing was left listening
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


@pytest.mark.slow
@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_the_demo_stops_on_sigint_and_sigterm_even_as_a_background_job(
    demo: Callable[..., subprocess.Popen[str]], stop_with: signal.Signals
) -> None:
    port, emulator_port = ports()
    proc = demo("--port", str(port), "--emulator-port", str(emulator_port), ignore_sigint=True)
    lines = read_lines(proc)
    wait_until(lambda: "Ctrl-C to stop.\n" in lines, 60)  # it has said everything it says
    proc.send_signal(stop_with)
    proc.wait(30)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "demo stopped" in output and "Traceback" not in output
    # Piped into a file, lines are not wrapped at 80 columns: the long ones stay whole.
    assert f"admin API: http://127.0.0.1:{port}/api/v1 with 'Authorization: Bearer " in output


@pytest.mark.slow
def test_ctrl_c_on_run_py_demo_prints_no_traceback(
    demo: Callable[..., subprocess.Popen[str]],
) -> None:
    port, emulator_port = ports()
    proc = demo(
        "--port",
        str(port),
        "--emulator-port",
        str(emulator_port),
        command=[sys.executable, str(ROOT / "run.py"), "demo"],
    )
    wait_for_bot(port)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "demo stopped" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


@pytest.mark.slow
def test_simulator_users_are_back_after_a_demo_restart(
    demo: Callable[..., subprocess.Popen[str]],
) -> None:
    """The emulator keeps its users in memory; the demo's database keeps the friends: after a
    restart the page lists them again, with their names and whether they blocked."""
    port, emulator_port = ports()
    emulator = f"http://127.0.0.1:{emulator_port}"
    args = ("--port", str(port), "--emulator-port", str(emulator_port))
    first = demo(*args)
    wait_for_bot(port)
    users = {}
    for name in ("花子", "太郎"):
        user = requests.post(f"{emulator}/_emulator/users", json={"name": name}, timeout=5).json()
        followed = requests.post(f"{emulator}/_emulator/users/{user['user_id']}/follow", timeout=10)
        assert followed.json()["status"] == 200
        users[name] = user["user_id"]

    def greeted(user_id: str) -> bool:
        messages = requests.get(f"{emulator}/_emulator/users/{user_id}/messages", timeout=5)
        return bool(messages.json()["messages"])

    # The bot answers the follow first and processes it (the profile call) right after; a
    # user who has blocked has no profile at LINE, so block only once the follow is applied.
    wait_until(lambda: all(greeted(user_id) for user_id in users.values()))
    blocked = requests.post(f"{emulator}/_emulator/users/{users['太郎']}/unfollow", timeout=10)
    assert blocked.json()["status"] == 200
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)

    second = demo(*args)
    wait_for_bot(port)
    listed = requests.get(f"{emulator}/_emulator/users", timeout=5).json()["users"]
    assert {(u["user_id"], u["name"], u["state"]) for u in listed} == {
        (users["花子"], "花子", "friend"),
        (users["太郎"], "太郎", "blocked"),
    }
    second.send_signal(signal.SIGTERM)
    output, _ = second.communicate(timeout=30)
    assert "2 simulator user(s) from the last run are back on the page" in output
