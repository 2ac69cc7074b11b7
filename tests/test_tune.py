"""`knowledge tune` reads held-out analyses with settings-only matchers: every step of the
choice runs (on a few rows here; the real run cross-validates the whole knowledge)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from intents.kb import KnowledgeBase
from intents.nlu.matcher import OUT_OF_SCOPE, Matcher
from intents.nlu.tune import (
    HeldOut,
    choose,
    choose_dialogue_floor,
    choose_margin,
    decisions,
    out_of_scope_themes,
    split,
)
from intents.nlu.tuning import MatcherConfig, Tuning
from knowledge import KNOWLEDGE_DIR
from tests.support import shared_kb_and_matcher


def test_each_step_of_the_choice_runs_on_held_out_rows() -> None:
    kb, matcher = shared_kb_and_matcher()
    assert matcher.classifier is not None
    nearest = Matcher(
        kb,
        dataclasses.replace(MatcherConfig(), weight_classifier=0.0),
        classifier_config=matcher.classifier.config,
        cache_dir=Path(os.environ["MODEL_CACHE_DIR"]),
    )
    texts = [
        ("educonnect.activate", "comment j'active educonnect"),
        ("data.free_space", "ma place est pleine sur l'ent"),
        ("dialogue.greet", "bonjour"),
        (OUT_OF_SCOPE, "menu de la cantine"),
        (OUT_OF_SCOPE, "vacances de printemps zone b"),
        # Too vague to be read right: its wrong reading is what gives the calibration both
        # kinds of points (with right answers only, every score would map to certainty).
        ("educonnect.activate", "mon compte ne marche pas"),
    ]
    rows = [
        HeldOut(
            gold,
            nearest.analyse(text, calibrated=False),
            matcher.classifier.probabilities(matcher.normalize(text)),
        )
        for gold, text in texts
    ]
    tuning, figures = choose(kb, rows, matcher.classifier.config)
    # The clear questions answered, the off-topic ones declined, and the vague one declined
    # rather than answered wrong.
    decided = [label for _, label in decisions(kb, rows, tuning)]
    assert decided == [gold for gold, _ in texts[:3]] + [OUT_OF_SCOPE] * 3
    assert (figures.accuracy, figures.rejected, figures.false_rejection) == (0.75, 1.0, 0.25)
    floor = choose_dialogue_floor(kb, rows, tuning)
    chosen = Tuning(dataclasses.replace(tuning.matcher, dialogue_floor=floor), tuning.classifier)
    assert choose_margin(kb, rows, chosen) >= 0.0


def test_off_topic_phrasings_are_held_out_a_whole_theme_at_a_time(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge)
    (knowledge / "out_of_scope.yaml").write_text(
        "id: out_of_scope\nexamples:\n"
        "  # cantine\n  - menu de la cantine\n  - tarif cantine\n  - cantine jeudi\n"
        "  # météo\n  - il pleut demain ?\n  - 'météo : soleil ?'\n"
        "  # impôts\n  - ma déclaration d'impôts\n",
        encoding="utf-8",
    )
    kb = KnowledgeBase(knowledge)
    assert out_of_scope_themes(kb) == ["cantine"] * 3 + ["météo"] * 2 + ["impôts"]
    parts = split(kb, 3)
    outside = [sorted(text for gold, text in part if gold == OUT_OF_SCOPE) for part in parts]
    assert sorted(outside) == [
        ["cantine jeudi", "menu de la cantine", "tarif cantine"],
        ["il pleut demain ?", "météo : soleil ?"],
        ["ma déclaration d'impôts"],
    ]
    inside = [text for part in parts for gold, text in part if gold != OUT_OF_SCOPE]
    assert len(inside) == sum(len(e.examples) for e in kb.entries.values())
