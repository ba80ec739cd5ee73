"""LINE Platform emulator: Messaging API paths, signed webhooks from simulated users, and an
inspection API, so the bot runs and is tested end to end without a LINE account."""

from bot.emulator.app import create_emulator_app
from bot.emulator.config import EmulatorConfig

__all__ = ["EmulatorConfig", "create_emulator_app"]
