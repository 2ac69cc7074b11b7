"""`knowledge tune` reads held-out analyses with settings-only matchers: every step of the
choice runs (on a few rows here; the real run cross-validates the whole knowledge)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from intents.nlu.matcher import OUT_OF_SCOPE, Matcher
from intents.nlu.tune import HeldOut, choose, choose_dialogue_floor, choose_margin
from intents.nlu.tuning import MatcherConfig, Tuning
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
    assert figures.accuracy == 1.0 and figures.rejected == 1.0
    floor = choose_dialogue_floor(kb, rows, tuning)
    chosen = Tuning(dataclasses.replace(tuning.matcher, dialogue_floor=floor), tuning.classifier)
    assert choose_margin(kb, rows, chosen) >= 0.0
