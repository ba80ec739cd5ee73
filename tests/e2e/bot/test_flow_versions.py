"""A friend mid-flow when the YAML changes finishes on the version they started."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.e2e.bot.conftest import TEST_FLOWS, StackFactory


def test_yaml_change_mid_flow(make_stack: StackFactory, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(TEST_FLOWS, flows)
    stack = make_stack(flows)
    early = stack.user("先行さん")
    early.follow()
    early.tap("女性")
    assert early.texts() == ["年齢を数字で教えてください"]

    salon = flows / "salon.yaml"
    text = salon.read_text(encoding="utf-8")
    changed = text.replace("年齢を数字で教えてください", "おいくつですか?").replace(
        "気になることは?", "お悩みは何ですか?"
    )
    assert changed != text
    salon.write_text(changed, encoding="utf-8")
    assert stack.api("POST", "/flows/reload").json()["ok"] is True

    # The early friend stays on the version they started...
    early.say("45")
    assert early.texts() == ["気になることは?"]
    # ...while a new friend gets the new version.
    late = stack.user("後発さん")
    late.follow()
    late.tap("女性")
    assert late.texts() == ["おいくつですか?"]
    late.say("45")
    assert late.texts() == ["お悩みは何ですか?"]
    early.tap("産後ケア")
    assert early.texts() == ["更年期のお悩みはありますか?"]
