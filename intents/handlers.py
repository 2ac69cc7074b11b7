"""Imports every handler module, so that the registry is complete once this is imported."""

from intents import admin, faq
from intents.registry import registry

__all__ = ["admin", "faq", "registry"]
