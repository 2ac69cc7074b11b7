"""Loads the knowledge base (YAML data) and renders its answer templates with Jinja2."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined, Template

from intents.nlu.normalize import Lexicon
from knowledge import KNOWLEDGE_DIR

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KnowledgeError(ValueError):
    """A knowledge file is unreadable or breaks the format (message names the file)."""


@dataclass(frozen=True)
class IntentInfo:
    """An id of intents.yaml and its kind (faq, action, query, dialogue, fallback)."""

    id: str
    kind: str


@dataclass
class Entry:
    """One topic of the knowledge base."""

    id: str
    kind: str
    title: str
    examples: list[str]
    related: list[str] = field(default_factory=list)
    answer: str | None = None
    howto: str | None = None
    source: Path | None = None
    # The few words a follow-up (« et pour le 2nd degré ? ») is read with; the title if unset.
    context: str | None = None
    # (school queries) the topic a family asking the same thing is answered with.
    families: str | None = None
    # (how-tos) the topic that says why the task is worth doing: « pourquoi supprimer… ? »
    why: str | None = None


def escape(text: str) -> str:
    """The one HTML escape for Telegram text (quotes need none outside attributes)."""
    return html.escape(text, quote=False)


def school_year_start(today: date) -> int:
    """The calendar year in which the current school year began (it starts in September)."""
    return today.year if today.month >= 9 else today.year - 1


def school_year_context(today: date) -> dict[str, str]:
    """Years the answers speak of, from today's date (the document said 2023-2024)."""
    current_start = school_year_start(today)
    # Until the end of October the rentrée just happened; later, the next one is meant.
    rentree = today.year if today.month <= 10 else today.year + 1
    return {
        "annee_scolaire": f"{current_start}-{current_start + 1}",
        "rentree_annee": str(rentree),
        "rentree_annee_scolaire": f"{rentree}-{rentree + 1}",
        "annee_sortante": f"{rentree - 1}-{rentree}",
    }


def make_environment() -> Environment:
    """The one Jinja2 environment: strict about variables, escaping for Telegram HTML."""
    return Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=False)


_TAG = re.compile(r"<a href=\"([^\"]+)\">(.*?)</a>|<[^>]+>", re.S)


def html_to_text(markup: str) -> str:
    """Plain text for the console: tags dropped, links shown as « label (url) »."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return ""
        url, label = match.group(1), match.group(2)
        return label if label == url else f"{label} ({url})"

    return html.unescape(_TAG.sub(replace, markup))


class KnowledgeBase:
    """Every entry of knowledge/, the intent ids, the lexicon and the template environment."""

    def __init__(self, root: Path = KNOWLEDGE_DIR) -> None:
        self.root = root
        self.environment = make_environment()
        self.intents = self._load_intent_ids(root / "intents.yaml")
        try:
            self.lexicon = Lexicon.from_data(self._read_yaml(root / "lexicon.yaml"))
        except re.error as error:
            # The lexicon's patterns are regular expressions written by hand.
            raise KnowledgeError(f"lexicon.yaml : motif invalide ({error})") from error
        self.entries: dict[str, Entry] = {}
        for folder in ("faq", "dialogue", "actions"):
            for path in sorted((root / folder).glob("*.yaml")):
                entry = self._entry_from(path)
                if entry.id in self.entries:
                    raise KnowledgeError(f"{path.name} : l'intention {entry.id} est déjà définie")
                self.entries[entry.id] = entry
        oos = root / "out_of_scope.yaml"
        self.out_of_scope_examples: list[str] = (
            [str(x) for x in self._read_yaml(oos).get("examples", [])] if oos.exists() else []
        )
        self._templates: dict[str, Template] = {}

    @staticmethod
    def _load_yaml(path: Path) -> object:
        try:
            # The C loader when PyYAML has it: the knowledge loads at every start.
            return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
            raise KnowledgeError(f"{path.name} : illisible ({error})") from None

    @classmethod
    def _read_yaml(cls, path: Path) -> dict[str, Any]:
        data = cls._load_yaml(path)
        if not isinstance(data, dict):
            raise KnowledgeError(f"{path.name} : un objet YAML est attendu")
        return data

    @classmethod
    def _load_intent_ids(cls, path: Path) -> dict[str, IntentInfo]:
        items = cls._load_yaml(path)
        if not isinstance(items, list) or not all(
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("kind"), str)
            for item in items
        ):
            raise KnowledgeError(
                f"{path.name} : une liste d'intentions (« id », « kind ») est attendue"
            )
        return {item["id"]: IntentInfo(item["id"], item["kind"]) for item in items}

    def _entry_from(self, path: Path) -> Entry:
        data = self._read_yaml(path)
        intent_id = data.get("id")
        if not isinstance(intent_id, str):
            raise KnowledgeError(f"{path.name} : champ « id » manquant")
        info = self.intents.get(intent_id)
        examples = data.get("examples") or []
        if not isinstance(examples, list) or not all(isinstance(x, str) for x in examples):
            raise KnowledgeError(f"{path.name} : « examples » doit être une liste de phrases")
        return Entry(
            id=intent_id,
            kind=info.kind if info else "unknown",
            title=str(data.get("title") or intent_id),
            examples=examples,
            related=list(data.get("related") or []),
            answer=data.get("answer"),
            howto=data.get("howto"),
            source=path,
            context=data.get("context"),
            families=data.get("families"),
            why=data.get("why"),
        )

    def template(self, intent_id: str) -> Template:
        cached = self._templates.get(intent_id)
        if cached is None:
            entry = self.entries[intent_id]
            if entry.answer is None:
                raise KnowledgeError(f"{intent_id} : pas de réponse dans la base")
            cached = self.environment.from_string(entry.answer)
            self._templates[intent_id] = cached
        return cached

    def render(self, intent_id: str, today: date, role: str = "public", **extra: object) -> str:
        """The answer of an entry, as Telegram HTML, written for that role (public, parent,
        teacher, director, erun)."""
        context: dict[str, object] = {**school_year_context(today), "role": role, **extra}
        return self.template(intent_id).render(**context).strip()

    def title(self, intent_id: str) -> str:
        entry = self.entries.get(intent_id)
        return entry.title if entry else intent_id

    def kind(self, intent_id: str) -> str | None:
        """faq, action, query or dialogue (intents.yaml); None for an id it does not list."""
        info = self.intents.get(intent_id)
        return info.kind if info is not None else None

    @cached_property
    def action_for_howto(self) -> dict[str, str]:
        """How-to id → the first action that does it (offered to a linked director)."""
        found: dict[str, str] = {}
        for entry in self.entries.values():
            if entry.kind == "action" and entry.howto:
                found.setdefault(entry.howto, entry.id)
        return found
