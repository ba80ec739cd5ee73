"""Segments (セグメント): the condition language compiled to SQL over `friends` (`compile`),
meaning exactly what `bot.engine.conditions` means for one friend.

May import the engine (its field types and values), the catalogue and storage; the services
(reach, broadcasts, rich-menu sync) import it.
"""
