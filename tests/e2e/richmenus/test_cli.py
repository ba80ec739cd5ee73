"""`stepline richmenu sync|render|list` through the real CLI, against the emulator."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from bot.cli import main
from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory
from tests.e2e.richmenus.test_sync import MENUS_YAML, active_ids, line_menus, menu_of
from tests.support import SECRET, TOKEN, Stack


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, folder)
    (folder / "menus.yaml").write_text(MENUS_YAML, encoding="utf-8")
    return folder


@pytest.fixture
def stack(make_stack: StackFactory, flows: Path, monkeypatch: pytest.MonkeyPatch) -> Stack:
    started = make_stack(flows)
    monkeypatch.setenv("DATABASE_URL", started.db.url)
    monkeypatch.setenv("LINE_CHANNEL_SECRET", SECRET)
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("LINE_API_BASE_URL", started.emulator.url)
    monkeypatch.setenv("STEPLINE_FLOWS", str(flows))
    return started


def stepline(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "200"})


def test_sync_prints_the_plan_and_a_dry_run_changes_nothing(stack: Stack) -> None:
    result = stepline("richmenu", "sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        "menu guest: create" in result.output and "alias member: create → member" in result.output
    )
    assert "default menu: set to guest" in result.output and "dry run" in result.output
    assert line_menus(stack) == {}


def test_sync_then_list(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    stack.api("PATCH", f"/friends/{user.user_id}", json={"add_tags": ["回答済み"]})
    result = stepline("richmenu", "sync")
    assert result.exit_code == 0, result.output
    assert "1 friend(s) re-linked" in result.output
    ids = active_ids(stack)
    assert menu_of(stack, user) == ids["member"]
    again = stepline("richmenu", "sync")
    assert "menu member: unchanged" in again.output and "0 friend(s) re-linked" in again.output

    listing = stepline("richmenu", "list")
    assert listing.exit_code == 0, listing.output
    member_row = next(line for line in listing.output.splitlines() if "member" in line)
    assert ids["member"] in member_row and member_row.rstrip(" │").endswith("1")


def test_render_writes_the_drawn_images(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "images"
    result = stepline("richmenu", "render", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["guest.png", "member.png", "vip.png"]
    with Image.open(out / "member.png") as image:
        assert image.size == (2500, 1686)


def test_render_of_an_unknown_menu_fails_clearly(stack: Stack) -> None:
    result = stepline("richmenu", "render", "nosuch")
    assert result.exit_code == 1
    assert "unknown rich menu 'nosuch' (known: guest, member, vip)" in result.output


def test_render_never_overwrites_without_force(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "images"
    assert stepline("richmenu", "render", "member", "--out", str(out)).exit_code == 0
    (out / "member.png").write_bytes(b"a designer's edit")
    refused = stepline("richmenu", "render", "member", "--out", str(out))
    assert refused.exit_code == 1 and "already exist(s); --force overwrites" in refused.output
    assert (out / "member.png").read_bytes() == b"a designer's edit"
    forced = stepline("richmenu", "render", "member", "--out", str(out), "--force")
    assert forced.exit_code == 0 and (out / "member.png").read_bytes()[:4] == b"\x89PNG"
