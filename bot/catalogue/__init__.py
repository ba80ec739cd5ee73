"""Loading, validating and linting the business's YAML."""

from bot.catalogue.catalogue import Catalogue, CatalogueError, FlowSource, Problem

__all__ = ["Catalogue", "CatalogueError", "FlowSource", "Problem"]
