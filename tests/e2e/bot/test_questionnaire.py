"""A friend goes through the salon questionnaire over real HTTP: webhook in → messages out."""

from __future__ import annotations

from datetime import timedelta

from tests.support import Stack


def test_new_friend_completes_questionnaire_with_branch(stack: Stack) -> None:
    user = stack.user("花子")
    user.follow()
    assert user.texts() == ["花子さん、性別を教えてください"]
    assert [a["label"] for a in user.last_quick_replies()] == ["女性", "男性"]

    user.tap("女性")
    assert user.texts() == ["年齢を数字で教えてください"]
    user.say("４２")  # full-width digits are accepted
    assert user.texts() == ["気になることは?"]
    user.tap("産後ケア")
    assert user.texts() == ["更年期のお悩みはありますか?"]  # age ≥ 40 branch
    user.tap("はい")
    assert user.texts() == ["ありがとうございました!"]

    friend = stack.friend(user)
    assert friend["display_name"] == "花子"
    assert friend["status"] == "following"
    assert set(friend["tags"]) == {"女性", "40代", "産後ケア", "更年期", "回答済み"}
    assert friend["fields"] == {"gender": "female", "age": 42, "points": 0}
    assert friend["conversation"] is None
    # Every message went out as a free reply; nothing was pushed.
    assert {d["via"] for d in user.inbox} == {"reply"}


def test_when_skips_step_and_choice_next_ends_flow(stack: Stack) -> None:
    user = stack.user("太郎")
    user.follow()
    user.tap("男性")
    user.received()
    user.say("35")
    # `concern` has `when: {tag: 女性}`: skipped, and its `next` rules send a 35-year-old to end.
    assert user.texts() == ["ありがとうございました!"]
    assert set(stack.friend(user)["tags"]) == {"男性", "30代", "回答済み"}


def test_invalid_input_is_asked_again_then_given_up(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.tap("女性")
    user.received()
    user.say("abc")
    assert user.texts() == ["半角数字でお願いします(例: 35)", "年齢を数字で教えてください"]
    user.say("200")  # out of the field's range (max 120)
    assert user.texts() == ["半角数字でお願いします(例: 35)", "年齢を数字で教えてください"]
    assert stack.friend(user)["conversation"] == {"flow": "welcome", "state": "age"}
    user.say("たくさん")  # third strike: max_retries is 2 → on_invalid, then move on
    assert user.texts() == ["気になることは?"]
    friend = stack.friend(user)
    assert "年齢不明" in friend["tags"]
    assert "age" not in friend["fields"]
    assert friend["conversation"] == {"flow": "welcome", "state": "concern"}


def test_typing_a_choice_label_counts(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    user.say("男性")
    assert user.texts() == ["年齢を数字で教えてください"]


def test_keyword_restarts_flow_and_auto_reply_mid_flow(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    user.say("営業時間は?")  # not an answer, but a keyword: answered, then asked again
    assert user.texts() == ["10:00〜19:00です", "花子さん、性別を教えてください"]
    assert stack.friend(user)["conversation"] == {"flow": "welcome", "state": "gender"}
    user.tap("女性")
    user.received()
    user.say("アンケート")
    assert user.texts() == ["花子さん、性別を教えてください"]


def test_date_picker_answer_and_email_input(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    user.say("予約")
    assert user.texts() == ["ご希望の日付を選んでください"]
    picker = user.last_quick_replies()[0]
    assert picker["type"] == "datetimepicker" and picker["mode"] == "date"
    user.tap("日付を選ぶ", params={"date": "2026-12-24"})
    assert user.texts() == ["メールアドレスを教えてください"]
    user.say("not-an-email")
    assert user.texts()[0] == "もう一度入力してください"
    user.say("hanako@example.com")
    assert user.texts() == ["2026年12月24日で承りました"]
    fields = stack.friend(user)["fields"]
    assert fields["visit_date"] == "2026-12-24"
    assert fields["email"] == "hanako@example.com"


def test_timeout_abandons_flow_on_next_message(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    stack.clock.advance(timedelta(hours=25))
    user.say("女性")  # too late: the questionnaire timed out
    assert user.texts() == []
    friend = stack.friend(user)
    assert "途中離脱" in friend["tags"]
    assert friend["conversation"] is None


def test_unfollow_blocks_and_refollow_is_unblocked(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.received()
    user.unfollow()
    assert stack.friend(user)["status"] == "blocked"
    assert stack.friend(user)["conversation"] is None
    user.follow()
    # `follow: new` does not fire for an unblock: no questionnaire again.
    assert user.texts() == []
    assert stack.friend(user)["status"] == "following"


def test_postback_starts_flow_and_unknown_postback_is_ignored(stack: Stack) -> None:
    user = stack.user()
    user.follow()
    user.tap("男性")
    user.say("35")  # completed
    user.received()
    user.postback("not-ours")  # logged and ignored: no reply
    assert user.texts() == []
    user.postback("survey")  # e.g. a rich-menu button: the questionnaire again
    assert user.texts() == ["花子さん、性別を教えてください"]
    assert stack.friend(user)["conversation"] == {"flow": "welcome", "state": "gender"}


def test_a_postback_that_is_not_an_answer_asks_the_question_again_for_free(
    stack: Stack,
) -> None:
    """A rich-menu tab switch (LINE's postback with `newRichMenuAliasId`) or an unknown
    postback while a question waits: LINE has hidden its quick replies, so the bot asks it
    again in the free reply."""
    user = stack.user()
    user.follow()
    assert user.texts() == ["花子さん、性別を教えてください"]
    user.postback("tab-switch", {"newRichMenuAliasId": "member", "status": "SUCCESS"})
    again = user.received()
    assert [d["message"]["text"] for d in again] == ["花子さん、性別を教えてください"]
    assert [d["via"] for d in again] == ["reply"]
    assert [a["label"] for a in user.last_quick_replies()] == ["女性", "男性"]
    user.tap("女性")
    assert user.texts() == ["年齢を数字で教えてください"]


def test_timeout_sweep_abandons_without_a_new_message(stack: Stack) -> None:
    from bot.services.timeouts import expire_due_conversations

    user = stack.user()
    user.follow()
    user.received()
    assert expire_due_conversations(stack.runtime) == 0  # not due yet
    stack.clock.advance(timedelta(hours=24, minutes=1))
    assert expire_due_conversations(stack.runtime) == 1
    friend = stack.friend(user)
    assert friend["conversation"] is None
    assert "途中離脱" in friend["tags"]
    assert expire_due_conversations(stack.runtime) == 0  # once only
