"""`knowledge tune`: choose the blend, the thresholds and the calibration by k-fold
cross-validation over the knowledge phrasings alone (the evaluation sets are never read).

Each fold trains the nearest-phrasing matcher and the classifier without its held-out
phrasings; the held-out ones are then read by every candidate setting. The objective
rewards right answers and rejected off-topic messages, and punishes in-scope messages
wrongly rejected twice as hard (a parent sent to the eRun for nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import yaml

from intents.kb import KnowledgeBase
from intents.nlu.classifier import ClassifierConfig, LinearClassifier
from intents.nlu.matcher import OUT_OF_SCOPE, Analysis, Candidate, Matcher
from intents.nlu.tuning import MatcherConfig, Tuning
from intents.nlu.understanding import Understander, Understanding

WEIGHTS = (0.0, 0.3, 0.5, 0.7, 0.85, 1.0)
# Copies with typos always helped in cross-validation (0 or 1 compared until 2026-11): the
# grid now spends its time on the regularisation and the copies without a word.
CLASSIFIERS = tuple(
    ClassifierConfig(regularization=c, noisy_copies=1, dropped_copies=d)
    for c in (10.0, 20.0, 60.0)
    for d in (0, 1)
)
FLOORS = tuple(round(0.05 * i, 2) for i in range(2, 15))
RIVAL_RATIOS = (0.6, 0.75, 0.9, 1.0, 1.25, 1.5, 1e9)
MARGINS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15)
# The nearest-phrasing rule off, or on below these confidences of the best intent.
NEAREST_RULES = ((False, 1.0), (True, 0.8), (True, 0.9), (True, 0.95))
FALSE_REJECTION_COST = 2.0


@dataclass
class HeldOut:
    """One held-out phrasing and what a fold's models made of it."""

    gold: str
    analysis: Analysis  # the nearest-phrasing part alone, scaled to [0, 1]
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Figures:
    accuracy: float
    rejected: float
    false_rejection: float

    @property
    def objective(self) -> float:
        return self.accuracy + self.rejected - FALSE_REJECTION_COST * self.false_rejection

    def as_data(self) -> dict[str, float]:
        return {
            "top1_in_scope": round(self.accuracy, 4),
            "out_of_scope_rejected": round(self.rejected, 4),
            "in_scope_wrongly_rejected": round(self.false_rejection, 4),
        }


def split(kb: KnowledgeBase, folds: int, seed: int = 7) -> list[list[tuple[str, str]]]:
    """Every phrasing (intent, text), out of scope included, dealt into `folds` parts.

    Off-topic phrasings are held out a whole theme at a time (the comment lines of
    out_of_scope.yaml): people keep asking about topics no phrasing foresaw, and a fold that
    trained on the siblings of its held-out « cantine » questions would overrate rejection."""
    inside = [(e.id, x) for e in kb.entries.values() for x in e.examples]
    random.Random(seed).shuffle(inside)
    parts = [inside[i::folds] for i in range(folds)]
    by_theme: dict[str, list[tuple[str, str]]] = {}
    for theme, text in zip(out_of_scope_themes(kb), kb.out_of_scope_examples, strict=True):
        by_theme.setdefault(theme, []).append((OUT_OF_SCOPE, text))
    held_outside = [0] * folds
    # The largest themes first, each to the fold with the fewest off-topic phrasings so far.
    for group in sorted(by_theme.values(), key=len, reverse=True):
        fold = held_outside.index(min(held_outside))
        parts[fold].extend(group)
        held_outside[fold] += len(group)
    return parts


def out_of_scope_themes(kb: KnowledgeBase) -> list[str]:
    """The theme of each off-topic phrasing, in order: the last comment line above it."""
    path = kb.root / "out_of_scope.yaml"
    if not kb.out_of_scope_examples or not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    comments = {
        number: line.strip().lstrip("#").strip()
        for number, line in enumerate(text.splitlines())
        if line.strip().startswith("#")
    }
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return [""] * len(kb.out_of_scope_examples)
    # The knowledge loader has read this file already: it holds a sequence of examples.
    examples = next(v for k, v in root.value if k.value == "examples")
    themes = []
    for node in examples.value:
        above = [n for n in comments if n < node.start_mark.line]
        themes.append(comments[max(above)] if above else "")
    return themes


def without(kb: KnowledgeBase, held: Iterable[tuple[str, str]]) -> KnowledgeBase:
    """A copy of the knowledge less some phrasings (intent, text)."""
    removed = set(held)
    trained = copy.copy(kb)
    trained.entries = {}
    for entry in kb.entries.values():
        kept = copy.copy(entry)
        kept.examples = [x for x in entry.examples if (entry.id, x) not in removed]
        trained.entries[entry.id] = kept
    trained.out_of_scope_examples = [
        x for x in kb.out_of_scope_examples if (OUT_OF_SCOPE, x) not in removed
    ]
    return trained


def held_out(
    kb: KnowledgeBase, classifiers: Sequence[ClassifierConfig], folds: int = 5, seed: int = 7
) -> dict[ClassifierConfig, list[HeldOut]]:
    """Every phrasing, read by models trained without it (one classifier per setting)."""
    rows: dict[ClassifierConfig, list[HeldOut]] = {config: [] for config in classifiers}
    nearest_only = dataclasses.replace(MatcherConfig(), weight_classifier=0.0)
    for held in split(kb, folds, seed):
        nearest = Matcher(without(kb, held), nearest_only)
        analyses = [nearest.analyse(text, calibrated=False) for _, text in held]
        normalized = [nearest.normalize(text) for _, text in held]
        for config in classifiers:
            model = LinearClassifier.train(nearest.example_norms, nearest.labels, config)
            rows[config].extend(
                HeldOut(gold, analysis, model.probabilities(text))
                for (gold, _), analysis, text in zip(held, analyses, normalized, strict=True)
            )
    return rows


def blended(row: HeldOut, weight: float, confidence: Callable[[float], float]) -> Analysis:
    """The analysis a matcher with this classifier weight would have made."""
    analysis = copy.copy(row.analysis)
    scores = {c.intent: c.confidence for c in row.analysis.ranking}
    scores[OUT_OF_SCOPE] = row.analysis.out_of_scope_score
    mixed = Matcher.mix(scores, row.probabilities, weight)
    analysis.out_of_scope_score = mixed.pop(OUT_OF_SCOPE, 0.0)
    ranked = sorted(mixed.items(), key=lambda item: -item[1])[:10]
    analysis.ranking = [Candidate(i, confidence(s)) for i, s in ranked]
    return analysis


def _platt(points: list[tuple[float, bool]]) -> tuple[float, float]:
    """Slope and intercept of P(right | score), by Newton's method on the log-likelihood."""
    a, b = 1.0, 0.0
    for _ in range(50):
        ga = gb = haa = hab = hbb = 0.0
        for x, right in points:
            p = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, a * x + b))))
            err = p - (1.0 if right else 0.0)
            w = max(p * (1.0 - p), 1e-9)
            ga += err * x
            gb += err
            haa += w * x * x
            hab += w * x
            hbb += w
        haa += 1e-6
        hbb += 1e-6
        det = haa * hbb - hab * hab
        if abs(det) < 1e-12:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-8:
            break
    return a, b


def _figures(outcomes: list[tuple[str, str]]) -> Figures:
    inside = [(g, p) for g, p in outcomes if g != OUT_OF_SCOPE]
    outside = [(g, p) for g, p in outcomes if g == OUT_OF_SCOPE]
    return Figures(
        accuracy=sum(g == p for g, p in inside) / max(1, len(inside)),
        rejected=sum(p == OUT_OF_SCOPE for _, p in outside) / max(1, len(outside)),
        false_rejection=sum(p == OUT_OF_SCOPE for _, p in inside) / max(1, len(inside)),
    )


def choose(
    kb: KnowledgeBase, rows: list[HeldOut], classifier: ClassifierConfig
) -> tuple[Tuning, Figures]:
    """The best weight, calibration, floor, rival ratio and nearest rule for these rows."""
    best: tuple[float, Tuning, Figures] | None = None
    for weight in WEIGHTS:
        config = dataclasses.replace(MatcherConfig(), weight_classifier=weight)
        reader = Understander(kb, _Frozen(config), None, 0.0)
        raw = [blended(row, weight, lambda s: s) for row in rows]
        labels = [reader.relabel(a) if a.ranking else (OUT_OF_SCOPE, 0.0) for a in raw]
        slope, intercept = _platt(
            [
                (a.best.confidence, label == row.gold)
                for a, (label, _), row in zip(raw, labels, rows, strict=True)
                if a.ranking and row.gold != OUT_OF_SCOPE
            ]
        )
        calibrated = dataclasses.replace(
            config, calibration_slope=slope, calibration_intercept=intercept
        )
        matcher = _Frozen(calibrated)
        analyses = [blended(row, weight, matcher.calibrate) for row in rows]
        for use_nearest, unless in NEAREST_RULES:
            for ratio in RIVAL_RATIOS:
                candidate = dataclasses.replace(
                    calibrated, use_nearest=use_nearest, nearest_unless=unless, rival_ratio=ratio
                )
                judge = Understander(kb, _Frozen(candidate), None, 0.0)
                for floor in FLOORS:
                    outcomes = [
                        (row.gold, OUT_OF_SCOPE if judge.rejects(a, floor) else label)
                        for row, a, (label, _) in zip(rows, analyses, labels, strict=True)
                    ]
                    figures = _figures(outcomes)
                    if best is None or figures.objective > best[0] + 1e-9:
                        chosen = dataclasses.replace(candidate, floor=floor)
                        tuning = Tuning(chosen, classifier)
                        best = (figures.objective, tuning, figures)
    assert best is not None
    return best[1], best[2]


def choose_dialogue_floor(kb: KnowledgeBase, rows: list[HeldOut], tuning: Tuning) -> float:
    """The floor for greetings, thanks and help requests, the other settings kept."""
    config = tuning.matcher
    analyses = [blended(row, config.weight_classifier, _Frozen(config).calibrate) for row in rows]
    labels = [
        Understander(kb, _Frozen(config), None, 0.0).relabel(a) if a.ranking else (OUT_OF_SCOPE, 0)
        for a in analyses
    ]
    best_floor, best_objective = config.floor, -math.inf
    for floor in FLOORS:
        judge = Understander(
            kb, _Frozen(dataclasses.replace(config, dialogue_floor=floor)), None, None
        )
        outcomes = [
            (row.gold, OUT_OF_SCOPE if judge.rejects(a) else label)
            for row, a, (label, _) in zip(rows, analyses, labels, strict=True)
        ]
        objective = _figures(outcomes).objective
        if objective > best_objective + 1e-9:
            best_floor, best_objective = floor, objective
    return best_floor


def choose_margin(kb: KnowledgeBase, rows: list[HeldOut], tuning: Tuning) -> float:
    """The margin under which asking « Vouliez-vous dire… » beats answering: a right answer
    counts 1, a wrong one -1, a question with the right topic among its choices 0.5, one
    without it -0.5."""
    config = tuning.matcher
    matcher = _Frozen(config)
    best_margin, best_utility = 0.0, -math.inf
    analyses = [blended(row, config.weight_classifier, matcher.calibrate) for row in rows]
    for margin in MARGINS:
        judge = Understander(kb, _Frozen(dataclasses.replace(config, margin=margin)), None, None)
        utility = 0.0
        for row, analysis in zip(rows, analyses, strict=True):
            if row.gold == OUT_OF_SCOPE or judge.rejects(analysis):
                continue
            intent, confidence = judge.relabel(analysis)
            understood = Understanding(intent, confidence, {}, [], analysis)
            judge.check_margin(understood, analysis)
            if understood.ambiguous:
                utility += 0.5 if row.gold in understood.choices else -0.5
            else:
                utility += 1.0 if intent == row.gold else -1.0
        if utility > best_utility + 1e-9:
            best_margin, best_utility = margin, utility
    return best_margin


def tune(kb: KnowledgeBase, folds: int = 5, progress: Callable[[str], None] = print) -> Tuning:
    """Cross-validate every candidate setting and return the best, with its figures."""
    best: tuple[float, Tuning, Figures, list[HeldOut]] | None = None
    for classifier, rows in held_out(kb, CLASSIFIERS, folds).items():
        tuning, figures = choose(kb, rows, classifier)
        progress(
            f"C={classifier.regularization:g} fautes={classifier.noisy_copies} "
            f"mots ôtés={classifier.dropped_copies} "
            f"poids={tuning.matcher.weight_classifier:g} "
            f"seuil={tuning.matcher.floor:g} : {figures.as_data()}"
        )
        if best is None or figures.objective > best[0]:
            best = (figures.objective, tuning, figures, rows)
    assert best is not None
    _, tuning, figures, rows = best
    tuning = Tuning(
        dataclasses.replace(
            tuning.matcher, dialogue_floor=choose_dialogue_floor(kb, rows, tuning)
        ),
        tuning.classifier,
    )
    margin = choose_margin(kb, rows, tuning)
    chosen = Tuning(dataclasses.replace(tuning.matcher, margin=margin), tuning.classifier)
    final = _figures(decisions(kb, rows, chosen))
    progress(
        f"seuil dialogue={chosen.matcher.dialogue_floor:g} marge={margin:g} : {final.as_data()}"
    )
    return Tuning(
        chosen.matcher,
        chosen.classifier,
        {"folds": folds, "phrasings": len(rows), **final.as_data()},
    )


def decisions(kb: KnowledgeBase, rows: list[HeldOut], tuning: Tuning) -> list[tuple[str, str]]:
    """(gold, decided) for every held-out phrasing under these settings."""
    config = tuning.matcher
    judge = Understander(kb, _Frozen(config), None, None)
    decided = []
    for row in rows:
        analysis = blended(row, config.weight_classifier, judge.matcher.calibrate)
        label = judge.decide(analysis)[0] if analysis.ranking else OUT_OF_SCOPE
        decided.append((row.gold, label))
    return decided


class _Frozen(Matcher):
    """A matcher that only carries settings: the tuning reads analyses made elsewhere."""

    def __init__(self, config: MatcherConfig) -> None:  # noqa: D107 - no model to build
        self.config = config
