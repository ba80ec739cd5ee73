"""Segments (セグメント): the condition language compiled to SQL over `friends`, meaning exactly
what `bot.engine.conditions` means for one friend.

- `resolving`: a condition or a segment's name → a Condition, named segments expanded
  (`SegmentError` for what is not one, or is beyond the bounds of `bounds`);
- `bounds`: how large a segment may be (nesting, conditions, `in` values), and why;
- `names`: what a segment names that does not exist (`unknown_names`);
- `compile`: `segment_clause`, one SQL boolean over `friends`, and the tables it reads;
- `values`: how a stored value compares (field rows by their stored type, answers as JSON);
- `dialects`: what SQLite and PostgreSQL spell differently (and JIT off on PostgreSQL);
- `folding`: predicates that are a constant or SQL, constants folded away;
- `queries`: count, sample or select the matching friends (`count_matching`,
  `sample_matching`, `matching_ids_select`, `tag_ids_for`).

May import the engine (its field types and values), the catalogue and storage; the services
(reach, broadcasts, rich-menu sync) import it. Re-exported here: what `bot.services.reach`
uses as `segments.…`.
"""

from bot.segments.names import unknown_names
from bot.segments.queries import count_matching, sample_matching
from bot.segments.resolving import SegmentError, resolve

__all__ = ["SegmentError", "count_matching", "resolve", "sample_matching", "unknown_names"]
