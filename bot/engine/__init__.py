"""The engine decides: conversations on shared `transitions` machines, conditions, actions,
triggers, sequences, templates, which rich menu a friend should see, rich-menu taps, tracked
link tokens. A `Turn` collects what one cause does to one friend.

It imports neither Flask, nor the LINE client, nor the outbox: it changes the friend's rows
in the caller's transaction and says what to send (`Turn.outgoing`, `Turn.link_menu`);
services write and send. May import the catalogue, richmenus, `bot.line.limits` and storage.
"""
