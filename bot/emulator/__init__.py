"""LINE Platform emulator: Messaging API paths, signed webhooks from simulated users, and an
inspection API, so the bot runs and is tested end to end without a LINE account.

A leaf: it imports nothing of stepline but the shared clock (`bot.clock`, which the demo's
time machine moves for both), and only the CLI (`stepline emulator`, `stepline demo`) and the
tests import it. Build it with `bot.emulator.app.create_emulator_app(EmulatorConfig(...))`.
"""
