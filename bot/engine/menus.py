"""Which rich menu each friend should see, decided at the end of every turn.

The `show_when` rules are evaluated in catalogue order (first match wins; none → the default
menu). The friend's menu changes only when the rules' choice changes or a `rich_menu` action
forces one, so a tab the friend switched to by hand is not undone by an unrelated change.
A change sets `Turn.link_menu`; the service ending the turn queues a `richmenu` outbox row,
sent like every other request to LINE.
"""

from __future__ import annotations

from bot.catalogue import Catalogue
from bot.engine.conditions import evaluate
from bot.engine.friend_record import FriendRecord
from bot.engine.turn import Turn
from storage.models import FriendStatus


def rules_choice(catalogue: Catalogue, record: FriendRecord) -> str | None:
    """The first menu whose `show_when` holds for the friend; None means the default."""
    for menu in catalogue.rich_menus.values():
        if menu.show_when is not None and evaluate(menu.show_when, record):
            return menu.rich_menu
    return None


def settle_menu(turn: Turn) -> None:
    """Re-decide the friend's menu after the turn's changes; ask for a link if it changed."""
    friend = turn.record.friend
    if not turn.catalogue.rich_menus and friend.rich_menu is None and turn.forced_menu is None:
        return
    target = friend.rich_menu
    choice = rules_choice(turn.catalogue, turn.record)
    if choice != friend.rich_menu_rule:
        friend.rich_menu_rule = choice
        target = choice
    if turn.forced_menu is not None:
        target, turn.forced_menu = turn.forced_menu, None
    if target == friend.rich_menu and not turn.relink_menu:
        return
    friend.rich_menu = target
    if friend.status != FriendStatus.BLOCKED:
        turn.link_menu = True
