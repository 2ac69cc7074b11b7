"""Knowledge base as data: one YAML file per topic (examples, answer template, related)."""

from pathlib import Path

KNOWLEDGE_DIR = Path(__file__).resolve().parent
