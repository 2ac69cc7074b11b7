"""`knowledge export-learned` and `knowledge check --learned` on a database where phrasings
were taught in chat: written into a copy of knowledge/ for review, marked exported once."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.cli.main import main
from bot.storage.store import Store
from intents.kb import KnowledgeBase
from knowledge import KNOWLEDGE_DIR

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
TAUGHT = "c'est quoi le sésame de chacun pour entrer sur l'espace numérique"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'taught.db'}"
    store = Store.from_url(url)
    store.upgrade()
    store.tickets.teach([TAUGHT], "accounts.identifiers", "erun.lille1", NOW)
    store.tickets.add_draft("menu de la cantine ?", "Sur le blog, chaque vendredi.", "erun", NOW)
    store.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    copy = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, copy)
    return copy


def test_export_writes_the_phrasing_and_the_draft_then_marks_them(
    database: str, knowledge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["knowledge", "export-learned", "--knowledge", str(knowledge)]) == 0
    out = capsys.readouterr().out
    assert "accounts.identifiers.yaml : 1 phrasé(s) ajouté(s)" in out
    assert TAUGHT in KnowledgeBase(knowledge).entries["accounts.identifiers"].examples
    [draft] = (knowledge / "drafts").glob("*.yaml")
    text = draft.read_text(encoding="utf-8")
    assert text.startswith("# Brouillon") and yaml.safe_load(text)["answer"].startswith("Sur le")
    # Exported once: a second run writes nothing more.
    assert main(["knowledge", "export-learned", "--knowledge", str(knowledge)]) == 0
    assert "0 phrasé(s) écrit(s)" in capsys.readouterr().out
    store = Store.from_url(database)
    try:
        assert [p.exported for p in store.tickets.learned()] == [True]
        assert [d.exported for d in store.tickets.drafts()] == [True]
    finally:
        store.dispose()


def test_dry_run_writes_nothing(
    database: str, knowledge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (knowledge / "faq" / "accounts.identifiers.yaml").read_text(encoding="utf-8")
    assert main(["knowledge", "export-learned", "--dry-run", "--knowledge", str(knowledge)]) == 0
    assert "1 phrasé(s) et 1 brouillon(s) à exporter" in capsys.readouterr().out
    after = (knowledge / "faq" / "accounts.identifiers.yaml").read_text(encoding="utf-8")
    assert after == before and not (knowledge / "drafts").exists()


def test_check_flags_a_learned_phrasing_that_copies_an_evaluation_line(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held_out = tmp_path / "held.jsonl"
    held_out.write_text(
        '{"text": "c\'est quoi le sesame de chacun pour entrer sur l\'espace numerique", '
        '"intent": "accounts.identifiers"}\n',
        encoding="utf-8",
    )
    assert main(["knowledge", "check", "--learned", "--held-out", str(held_out)]) == 1
    out = capsys.readouterr().out
    assert "recopie presque held.jsonl:1" in out and "ERREUR" in out
