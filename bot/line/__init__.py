"""LINE's side of the wire: the client (the official SDK `linebot.v3` behind a small typed
surface with one exception hierarchy), LINE's documented limits, rate limits, webhook
signatures.

A leaf: it imports nothing else of stepline. Only `client` and `sdk` import the SDK (about a
second to import): modules that only need a limit import `limits`, which is light.
"""
