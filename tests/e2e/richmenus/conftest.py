"""Rich menu tests use the bot tests' full stack (emulator + bot over real HTTP)."""

from tests.e2e.bot.conftest import make_stack  # noqa: F401  (the fixture, shared)
