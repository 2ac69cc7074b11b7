"""Learned phrasings written into knowledge/ for review, and checked there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from intents.kb import KnowledgeBase
from intents.learned import EvalLine, check_learned, export_learned, read_eval_lines
from knowledge import KNOWLEDGE_DIR
from tests.support import shared_kb_and_matcher

NEW = "le grenier du cartable virtuel déborde"
QUOTED = "la tête comme une passoire : plus de code parent"
HASH = "#urgent mot de passe parent envolé"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    """A copy of knowledge/ to write into."""
    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def test_export_appends_to_the_topic_files_and_keeps_the_rest(knowledge: Path) -> None:
    free_space = knowledge / "faq" / "data.free_space.yaml"
    forgot = knowledge / "faq" / "educonnect.forgot_credentials.yaml"
    before = {path: path.read_text(encoding="utf-8") for path in (free_space, forgot)}
    report = export_learned(
        [
            (NEW, "data.free_space"),
            ("  Le grenier du cartable virtuel DÉBORDE  ", "data.free_space"),
            ("quota atteint", "data.free_space"),
            ("merci", "dialogue.greet"),
            ("vire les vieux comptes", "action.remove_manual_account"),
            (QUOTED, "educonnect.forgot_credentials"),
            (HASH, "educonnect.forgot_credentials"),
        ],
        knowledge,
    )
    assert report.written == {
        free_space: ["Le grenier du cartable virtuel DÉBORDE"],
        forgot: [QUOTED, HASH],
    }
    skipped = {text: why for text, _, why in report.skipped}
    assert skipped["quota atteint"] == "déjà dans la base"
    assert skipped["merci"] == "déjà sous dialogue.thanks"
    assert "jamais une action" in skipped["vire les vieux comptes"]
    assert report.lines()[-1] == "3 phrasé(s) écrit(s), 3 laissé(s) de côté."
    for path, texts in report.written.items():
        after = path.read_text(encoding="utf-8")
        # Only lines added: every line of the file as it was is still there, in order.
        kept = after.splitlines()
        for text in texts:
            kept = [line for line in kept if text not in line]
        assert kept == before[path].splitlines()
    kb = KnowledgeBase(knowledge)
    assert kb.entries["data.free_space"].examples[-1] == "Le grenier du cartable virtuel DÉBORDE"
    assert kb.entries["educonnect.forgot_credentials"].examples[-2:] == [QUOTED, HASH]
    again = export_learned([(NEW, "data.free_space")], knowledge)
    assert again.written == {}
    assert again.skipped == [(NEW, "data.free_space", "déjà dans la base")]


def test_export_keeps_comments_and_finds_the_end_of_the_list(knowledge: Path) -> None:
    path = knowledge / "faq" / "data.free_space.yaml"
    text = path.read_text(encoding="utf-8")
    commented = text.replace(
        "examples:\n", "examples:  # phrasés\n  # d'abord les plus courants\n", 1
    ).replace("\nrelated:", "\n  # fin des phrasés\n\n# la suite\nrelated:", 1)
    assert commented.count("#") == text.count("#") + 4
    path.write_text(commented, encoding="utf-8")
    export_learned([(NEW, "data.free_space")], knowledge)
    after = path.read_text(encoding="utf-8")
    assert after.replace(f"  - {NEW}\n", "") == commented
    assert after.index(f"  - {NEW}\n") < after.index("  # fin des phrasés")
    assert KnowledgeBase(knowledge).entries["data.free_space"].examples[-1] == NEW


def test_a_phrasing_taught_twice_is_written_with_its_last_intent(knowledge: Path) -> None:
    report = export_learned(
        [(NEW, "data.free_space"), (NEW + " !", "data.productions_kept")], knowledge
    )
    assert [p.name for p in report.written] == ["data.productions_kept.yaml"]
    assert report.skipped == [
        (NEW, "data.free_space", "réappris ensuite comme data.productions_kept")
    ]


def test_check_flags_collisions_and_copies_of_evaluation_lines() -> None:
    kb, matcher = shared_kb_and_matcher()
    lines = [
        EvalLine("dev.jsonl:3", "mon cartable virtuel est plein, il déborde", "data.free_space"),
        EvalLine("dev.jsonl:4", "le robinet à pixels est fermé depuis hier", "dialogue.human"),
    ]
    pairs = [
        (NEW, "data.free_space"),
        ("quota atteint", "educonnect.activate"),
        ("comment activer mon compte educonnect parent", "data.free_space"),
        ("mon cartable virtuel est plein il deborde !", "data.free_space"),
        ("le robinet a pixels est ferme depuis hier", "data.free_space"),
    ]
    problems = check_learned(pairs, kb, lines, matcher)
    assert not [p for p in problems if NEW in p]
    assert any(
        p.startswith("educonnect.activate : le phrasé appris « quota atteint » recopie presque")
        and "data.free_space" in p
        for p in problems
    )
    assert any(
        "« comment activer mon compte educonnect parent » est compris comme "
        "educonnect.activate par le modèle entraîné" in p
        for p in problems
    )
    assert any("recopie presque dev.jsonl:3" in p for p in problems)
    assert any("contredit dev.jsonl:4" in p and "dialogue.human" in p for p in problems)


def test_evaluation_lines_are_read_like_knowledge_check_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    rows = [{"text": "quota atteint sur l'ent", "intent": "data.free_space"}, {}, None]
    path.write_text(
        "\n".join(json.dumps(r) if r is not None else "" for r in rows), encoding="utf-8"
    )
    assert read_eval_lines([path]) == [
        EvalLine("set.jsonl:1", "quota atteint sur l'ent", "data.free_space"),
        EvalLine("set.jsonl:2", "", ""),
    ]
