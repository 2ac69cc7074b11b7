"""Phrasings an eRun taught in chat (« C'est la FAQ… »): read by the understanding from the
next message on, beside the trained model and without retraining it.

A message close enough to a taught phrasing is understood as its intent, with the chance
that two phrasings this similar share their intent as its confidence; an unrelated message
is decided as before. The similarity is the mean of the cosine between the matcher's own
TF-IDF vectors (stems, word pairs, cues, concepts) and rapidfuzz's token_sort_ratio of the
normalised texts.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from rapidfuzz import fuzz, process

from intents.kb import KnowledgeBase
from intents.nlu.analysis import OUT_OF_SCOPE, Analysis, Candidate
from intents.nlu.matcher import Matcher
from intents.nlu.postings import Postings, unit

# What an eRun may teach: answers and dialogue. An order to change the directory is never
# unlocked by a phrasing typed in chat, and a query reads a school's directory.
TEACHABLE_KINDS = ("faq", "dialogue")

# The rule (`similarity_curve` recomputes it, tests/test_teaching.py checks it still holds):
# over every pair of knowledge phrasings (out of scope with out of scope left out: those are
# many unrelated subjects under one label), the share of pairs that have the same intent,
# as a non-decreasing function of their similarity (pool-adjacent-violators over bins of
# 0.01). That share is the confidence a taught phrasing gives its intent, and it decides
# from the similarity where the share reaches one half: from there, a phrasing this close
# is more likely of the same intent than not (the rule of the matcher's knee). Only 1.8 %
# of all pairs share their intent (BASE_RATE), so this asks a lot. Nothing of the teaching
# set (tests/data/teaching.yaml) was read to choose it; a logistic fit over pairs held out
# of training (5 folds) puts the one-half point at 0.45. Also weighing what the classifier
# leant to was tried and left out: over the messages the model declines, in 5-fold
# cross-validation on the knowledge, that leaning tells nothing about the intent, and 3 %
# of the out-of-scope phrasings held out of training turned into answers (« mdp caf perdu »
# → forgotten credentials); with similarity alone, none of the 3,045 changed answer.
SIMILARITY_FLOOR = 0.45
BASE_RATE = 0.018
# (similarity, share of pairs with the same intent), interpolated linearly.
CONFIDENCE_CURVE: tuple[tuple[float, float], ...] = (
    (0.45, 0.504),
    (0.50, 0.634),
    (0.55, 0.697),
    (0.60, 0.810),
    (0.65, 0.870),
    (0.77, 0.939),
    (0.85, 0.982),
    # Identical once normalised: kept just short of certain.
    (1.00, 0.990),
)


@dataclass(frozen=True)
class Taught:
    """One taught phrasing, as the matcher reads it."""

    text: str
    intent: str
    normalized: str
    vector: dict[str, float]
    # Services the document does not cover that the phrasing names (lexicon).
    services: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Near:
    """The taught phrasing nearest to a message and how similar they are."""

    intent: str
    similarity: float
    text: str
    services: frozenset[str] = frozenset()

    @property
    def confidence(self) -> float:
        """The chance that the message has the taught intent, from the similarity alone."""
        return confidence(self.similarity)


def confidence(similarity: float) -> float:
    """The share of knowledge phrasing pairs this similar that have the same intent."""
    points = [s for s, _ in CONFIDENCE_CURVE]
    if similarity < points[0]:
        return 0.0
    at = bisect.bisect_right(points, similarity)
    if at >= len(points):
        return CONFIDENCE_CURVE[-1][1]
    (s0, p0), (s1, p1) = CONFIDENCE_CURVE[at - 1], CONFIDENCE_CURVE[at]
    return round(p0 + (p1 - p0) * (similarity - s0) / (s1 - s0), 4)


class _Snapshot:
    """An immutable set of taught phrasings and their index: readers never see it change."""

    def __init__(self, phrasings: Sequence[Taught]) -> None:
        self.phrasings = tuple(phrasings)
        self.norms = [p.normalized for p in self.phrasings]
        self.words = frozenset(w for p in self.phrasings for w in p.normalized.split())
        lists: dict[str, list[tuple[int, float]]] = {}
        for row, phrasing in enumerate(self.phrasings):
            for key, weight in phrasing.vector.items():
                lists.setdefault(key, []).append((row, weight))
        self.postings = Postings(lists)


class TaughtPhrasings:
    """The taught phrasings of one understanding: replaced whole or added one by one, read
    from any thread (each change swaps in a new snapshot)."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher) -> None:
        self.kb = kb
        self.matcher = matcher
        self._snapshot = _Snapshot(())
        self._lock = threading.Lock()

    @cached_property
    def _rare(self) -> float:
        # Words the knowledge never uses are the most telling of all (« sésame », « loulou »).
        # Read when first needed: the tuning's settings-only matchers have no vocabulary.
        return max(self.matcher.idf.values(), default=1.0)

    def __len__(self) -> int:
        return len(self._snapshot.phrasings)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The (text, intent) pairs taught, oldest first."""
        return [(p.text, p.intent) for p in self._snapshot.phrasings]

    def teach(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        """Replace every taught phrasing (a phrasing taught twice keeps its last intent); the
        pairs that cannot be taught are left out and said, in French."""
        read: list[Taught] = []
        refused: list[str] = []
        for text, intent in pairs:
            try:
                read.append(self._read(text, intent))
            except ValueError as error:
                refused.append(str(error))
        with self._lock:
            self._snapshot = _Snapshot(_last_of_each(read))
        return refused

    def learn(self, text: str, intent: str) -> None:
        """Add one taught phrasing (it replaces the same phrasing taught before)."""
        taught = self._read(text, intent)
        with self._lock:
            self._snapshot = _Snapshot(_last_of_each([*self._snapshot.phrasings, taught]))

    def _read(self, text: str, intent: str) -> Taught:
        """The phrasing as the matcher reads it; ValueError (in French) if it cannot be
        taught."""
        check_teachable(self.kb, intent)
        normalized = self.matcher.normalize(text)
        if not normalized:
            raise ValueError(f"« {text.strip()[:80]} » : aucun mot à apprendre dans ce phrasé")
        # A phrasing of stop words alone (« à plus ») has no vector: only a near copy of it,
        # by the fuzzy ratio, comes close enough.
        vector = self._vector(normalized)
        services = self.kb.lexicon.services_in(normalized)
        return Taught(text.strip(), intent, normalized, vector, services)

    def _vector(self, normalized: str) -> dict[str, float]:
        counts = self.matcher.features(normalized)
        idf = self.matcher.idf
        return unit(
            {
                key: (1.0 + math.log(v) if v >= 1 else v) * idf.get(key, self._rare)
                for key, v in counts.items()
            }
        )

    def nearest(self, text: str) -> Near | None:
        """The taught phrasing most similar to the message, if any is taught."""
        snapshot = self._snapshot
        if not snapshot.phrasings:
            return None
        words = self.matcher.normalize(text).split()
        # Typos are mended towards the knowledge's words, but never a word taught in chat.
        normalized = " ".join(w if w in snapshot.words else self.matcher.correct(w) for w in words)
        size = len(snapshot.phrasings)
        cosine = snapshot.postings.scores(self._vector(normalized), size)
        ratio = process.cdist([normalized], snapshot.norms, scorer=fuzz.token_sort_ratio)[0]
        similarity = (cosine + ratio / 100.0) / 2.0
        best = int(np.argmax(similarity))
        found = snapshot.phrasings[best]
        return Near(found.intent, round(float(similarity[best]), 4), found.text, found.services)

    def overrule(self, analysis: Analysis, decided: tuple[str, float]) -> tuple[str, float]:
        """The decision with the taught phrasings: the intent of the nearest one wins when it
        is close enough and surer than the model (always over an out-of-scope answer)."""
        if not self._snapshot.phrasings:
            return decided
        near = self.nearest(analysis.text)
        if near is None or near.similarity < SIMILARITY_FLOOR:
            return decided
        if analysis.services - near.services:
            return decided  # another service (« pronote ») than the one taught, if any
        intent, sure = decided
        taught = near.confidence
        if intent != OUT_OF_SCOPE and sure >= taught:
            return decided  # the model is surer, of the taught intent or of another
        # The taught intent heads the ranking: the alternatives and the margin read it, also
        # when the model chose the same intent less surely (its margin would ask in vain).
        others = [c for c in analysis.ranking if c.intent != near.intent]
        analysis.ranking = [Candidate(near.intent, taught), *others]
        return near.intent, taught


def check_teachable(kb: KnowledgeBase, intent: str) -> None:
    """Raise ValueError (in French) unless an eRun may teach phrasings of this intent."""
    if intent == OUT_OF_SCOPE:
        raise ValueError("« hors périmètre » ne s'apprend pas : choisissez une intention")
    kind = kb.kind(intent)
    if kind is None or intent not in kb.entries:
        raise ValueError(f"intention inconnue : {intent}")
    if intent.startswith("action.") or kind not in TEACHABLE_KINDS:
        raise ValueError(
            f"{intent} : seule une réponse de la FAQ ou du dialogue s'apprend ici, "
            "jamais une action ni une requête sur l'annuaire"
        )


def _last_of_each(phrasings: Sequence[Taught]) -> list[Taught]:
    """One phrasing per normalised text, the last taught, in the order taught."""
    last = {p.normalized: p for p in phrasings}
    return [p for p in phrasings if last[p.normalized] is p]


def similarity_curve(matcher: Matcher) -> tuple[float, float, list[tuple[float, float]]]:
    """The rule behind SIMILARITY_FLOOR, BASE_RATE and CONFIDENCE_CURVE, over the knowledge
    phrasings: the floor, the base rate, and per bin of 0.01 that has pairs, (its start, the
    share of its pairs with the same intent)."""
    reader = TaughtPhrasings(matcher.kb, matcher)
    labels = np.asarray(matcher.labels)
    norms = list(matcher.example_norms)
    vectors = [reader._vector(n) for n in norms]
    rows = zip(labels.tolist(), norms, vectors, strict=True)
    index = _Snapshot([Taught("", label, n, v) for label, n, v in rows])
    ratios = process.cdist(norms, norms, scorer=fuzz.token_sort_ratio, dtype=np.int32)
    same = np.zeros(101)
    total = np.zeros(101)
    outside = labels == OUT_OF_SCOPE
    for row, vector in enumerate(vectors[:-1]):
        later = slice(row + 1, len(norms))
        cosine = index.postings.scores(vector, len(norms))[later]
        similarity = (cosine + ratios[row, later] / 100.0) / 2.0
        keep = ~(outside[later] & outside[row])
        bins = np.clip((similarity[keep] * 100).astype(np.intp), 0, 100)
        total += np.bincount(bins, minlength=101)
        same += np.bincount(bins, weights=labels[later][keep] == labels[row], minlength=101)
    # Pool adjacent violators: the share of same-intent pairs, non-decreasing in similarity.
    blocks: list[list[float]] = []  # [same, total, first bin]
    for at in range(101):
        if total[at]:
            blocks.append([same[at], total[at], at])
            while len(blocks) > 1 and (
                blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]
            ):
                last = blocks.pop()
                blocks[-1][0] += last[0]
                blocks[-1][1] += last[1]
    share = np.zeros(101)
    for number, (s, t, first) in enumerate(blocks):
        end = blocks[number + 1][2] if number + 1 < len(blocks) else 101
        share[int(first) : int(end)] = s / t
    curve = [(at / 100, round(float(share[at]), 4)) for at in range(101) if total[at]]
    floor = next((s for s, p in curve if p >= 0.5), 1.0)
    return floor, round(float(same.sum() / total.sum()), 4), curve


class Teachable:
    """What the understanding offers the eRun's « C'est la FAQ… » (mixed into Understander)."""

    kb: KnowledgeBase
    matcher: Matcher
    taught: TaughtPhrasings
    # Called after each change to what is taught: Retraining.request when the matcher is
    # retrained with the taught phrasings (intents/nlu/retraining.py), else nothing.
    on_taught: Callable[[], None] | None = None
    # One lock for every understanding: a change taught while a retrained matcher is adopted
    # is never lost between the two sets of phrasings.
    _teaching = threading.Lock()

    @property
    def taught_pairs(self) -> tuple[tuple[str, str], ...]:
        """The (text, intent) pairs taught now, oldest first."""
        return tuple(self.taught.pairs)

    def teach(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        """Replace the whole set of taught (text, intent) pairs (at start, or when another
        instance taught something); returns, in French, why any pair was left out (an
        intent gone from the knowledge, an action…)."""
        with self._teaching:
            refused = self.taught.teach(pairs)
        self._taught()
        return refused

    def learn(self, text: str, intent: str) -> None:
        """Add one taught phrasing, read from the next message on; ValueError, in French,
        for an action, a query, out of scope, an unknown intent or a text with no word."""
        with self._teaching:
            self.taught.learn(text, intent)
        self._taught()

    def adopt(self, matcher: Matcher) -> None:
        """Read messages with `matcher`, trained with taught phrasings among its examples, from
        now on; the phrasings taught are read beside it as before."""
        with self._teaching:
            taught = TaughtPhrasings(self.kb, matcher)
            taught.teach(self.taught.pairs)
            # Two plain assignments: a message read meanwhile uses one matcher or the other,
            # both whole and with the same settings.
            self.matcher = matcher
            self.taught = taught

    def _taught(self) -> None:
        if self.on_taught is not None:
            self.on_taught()
