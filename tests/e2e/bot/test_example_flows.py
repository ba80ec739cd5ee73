"""The example salon catalogue in `flows/` works end to end, as the demo shows it."""

from __future__ import annotations

from tests.conftest import EXAMPLE_FLOWS
from tests.e2e.bot.conftest import StackFactory


def test_salon_welcome_and_booking(make_stack: StackFactory) -> None:
    stack = make_stack(EXAMPLE_FLOWS)
    user = stack.user("さくら")
    user.follow()
    assert user.texts() == ["さくらさん、性別を教えてください"]
    user.tap("女性")
    assert user.texts() == ["年齢を数字で教えてください"]
    user.say("34")
    assert user.texts() == ["気になることは?"]
    user.tap("腰痛")  # `next: end` on this choice
    assert user.texts() == ["ありがとうございました!"]
    assert set(stack.friend(user)["tags"]) == {"女性", "30代", "腰痛", "回答済み"}

    user.say("営業時間を教えて")
    assert user.texts() == ["10:00〜19:00です(火曜定休)"]

    user.say("予約")
    assert user.texts() == ["ご希望のメニューをお選びください"]
    user.tap("アロマ90分")
    assert user.texts() == ["ご希望の日付をお選びください"]
    user.tap("日付を選ぶ", params={"date": "2026-12-05"})
    assert user.texts() == ["ご連絡先のお電話番号を教えてください"]
    user.say("090-1234-5678")
    assert user.texts() == ["アロマ90分 / 2026年12月5日 / 09012345678\nこの内容で予約しますか?"]
    user.tap("予約する")
    assert user.texts() == ["ご予約を承りました。確認のご連絡をいたします。"]
    friend = stack.friend(user)
    assert "予約申込" in friend["tags"]
    assert friend["fields"]["menu"] == "アロマ90分"
    assert friend["fields"]["preferred_date"] == "2026-12-05"
    assert friend["conversation"] is None
