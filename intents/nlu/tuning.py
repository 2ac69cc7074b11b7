"""The values the understanding runs with, read from knowledge/tuning.yaml.

They are chosen by cross-validation over knowledge/ alone (`python -m bot knowledge tune`,
intents/nlu/tune.py), never on the evaluation sets, and written back to that file with the
cross-validation figures that justified them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from intents.nlu.classifier import ClassifierConfig
from knowledge import KNOWLEDGE_DIR


@dataclass(frozen=True)
class MatcherConfig:
    """Blend weights and decision thresholds. The defaults are hand-set starting points;
    the values in use come from knowledge/tuning.yaml, chosen by cross-validation over the
    knowledge phrasings (`python -m bot knowledge tune`)."""

    floor: float = 0.5
    # The floor for greetings, thanks and help requests (None: the same floor).
    dialogue_floor: float | None = None
    margin: float = 0.04
    # Share of the trained classifier in the blend (0: nearest phrasings alone).
    weight_classifier: float = 0.5
    # Out of scope wins when its confidence reaches this share of the best intent's.
    rival_ratio: float = 1.0
    # Platt scaling of the blend into a confidence (fitted on held-out folds).
    calibration_slope: float = 1.0
    calibration_intercept: float = 0.0
    knn: int = 3
    weight_best: float = 0.1
    weight_top: float = 0.2
    weight_centroid: float = 0.5
    weight_fuzzy: float = 0.2
    # Naive Bayes posterior: learns which words tell two close intents apart.
    weight_bayes: float = 0.2
    bayes_smoothing: float = 0.1
    # Word pairs help tell « bloque les parents » from « parents bloqués », but overfit.
    bigram_weight: float = 0.5
    concept_weight: float = 1.0
    knee: float = 0.3
    # Rejected when the nearest phrasing is out of scope by at least this much.
    nearest_margin: float = 0.05
    use_nearest: bool = True
    # …unless the best intent is at least this sure of itself.
    nearest_unless: float = 0.95


TUNING_FILE = KNOWLEDGE_DIR / "tuning.yaml"
# The matcher settings the tuning chooses; the others keep their defaults.
TUNED = (
    "weight_classifier",
    "floor",
    "dialogue_floor",
    "rival_ratio",
    "use_nearest",
    "nearest_unless",
    "margin",
    "calibration_slope",
    "calibration_intercept",
)


@dataclass(frozen=True)
class Tuning:
    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # The cross-validation figures of the chosen values, kept for the record.
    figures: dict[str, Any] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {
            "matcher": {name: getattr(self.matcher, name) for name in TUNED},
            "classifier": {
                "regularization": self.classifier.regularization,
                "noisy_copies": self.classifier.noisy_copies,
                "dropped_copies": self.classifier.dropped_copies,
            },
            "cross_validation": self.figures,
        }


def _typed(name: str, value: Any) -> Any:
    """A value of the file as the setting's type (a YAML 1 for a float, None kept)."""
    if value is None:
        return None
    default = getattr(MatcherConfig(), name)
    if isinstance(default, bool):
        return bool(value)
    return float(value) if default is None or isinstance(default, float) else value


def tuning_from(data: dict[str, Any]) -> Tuning:
    """The tuning in a parsed file; unknown or missing keys keep the defaults."""
    matcher = data.get("matcher") or {}
    classifier = data.get("classifier") or {}
    return Tuning(
        matcher=dataclasses.replace(
            MatcherConfig(),
            **{k: _typed(k, v) for k, v in matcher.items() if k in TUNED},
        ),
        classifier=ClassifierConfig.from_data(classifier),
        figures=dict(data.get("cross_validation") or {}),
    )


@lru_cache(maxsize=1)
def load_tuning(path: Path = TUNING_FILE) -> Tuning:
    """The tuning file, or the defaults when there is none yet."""
    if not path.exists():
        return Tuning()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return tuning_from(data)


def save_tuning(tuning: Tuning, path: Path = TUNING_FILE) -> None:
    header = (
        "# Chosen by `python -m bot knowledge tune` (cross-validation over knowledge/ alone).\n"
        "# Do not edit by hand: run the command again after changing the knowledge.\n"
    )
    body = yaml.safe_dump(tuning.as_data(), allow_unicode=True, sort_keys=False)
    path.write_text(header + body, encoding="utf-8")
    load_tuning.cache_clear()
