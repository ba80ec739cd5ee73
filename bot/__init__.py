"""stepline: a self-hosted funnel engine for LINE Official Accounts."""

__version__ = "0.1.0"
