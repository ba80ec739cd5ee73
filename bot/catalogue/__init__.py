"""The business's YAML: loading with line marks, models (pydantic), lint, the JSON Schema,
diagrams, and what the documents mean for LINE (message and rich-menu objects, generated
postback data, the template language).

Imports only `bot.richmenus` (image checks), `bot.line` (limits, LINE's message schema) and
storage; everything above reads the catalogue.
"""

from bot.catalogue.catalogue import Catalogue, CatalogueError, FlowSource, Problem

__all__ = ["Catalogue", "CatalogueError", "FlowSource", "Problem"]
