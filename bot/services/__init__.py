"""The use cases the doors (web, scheduler, CLI) call: process a webhook event, run a turn and
finish it (`turns.finish_turns`, the one end of every turn), due sequence steps (per friend
and in bulk), timeouts, broadcasts, outside events, friends, reach and cost, audiences,
tracked-link clicks, rich-menu sync, metrics.

Services open transactions, call the engine to decide, write what it decided (outbox rows
included) and hand rows to the sender. May import the runtime, delivery, segments, engine,
catalogue, richmenus, line and storage; never Flask, APScheduler or the CLI. Their errors
(`errors.py`) say what went wrong, not which HTTP status it is.
"""
