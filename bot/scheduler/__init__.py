"""The clock's door: `stepline worker`'s few fixed APScheduler ticks (deliver, due steps,
broadcasts, timeouts), each a thin call into `bot.services` or `bot.delivery`.

APScheduler holds only the ticks, never a job per message: the database says what is due.
A sibling of `bot.web` (neither imports the other); never runs inside the web processes.
"""
