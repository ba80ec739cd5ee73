"""Getting messages to LINE: the outbox, the sender and the LINE client."""
