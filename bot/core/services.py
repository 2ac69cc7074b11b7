"""PLACEHOLDER written by the lead so the core imports; helper-2 replaces it with the real
Protocols."""

from __future__ import annotations

from typing import Any

Services = Any
