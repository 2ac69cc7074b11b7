"""Ranks the intents for a message: a trained linear classifier (intents/nlu/classifier.py)
blended with nearest phrasings over stemmed words and cues, fuzzy similarity (rapidfuzz) and
naive Bayes; out of scope is a class of its own in both."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz

from intents.kb import KnowledgeBase
from intents.nlu import fitted_cache
from intents.nlu.analysis import OUT_OF_SCOPE, Analysis, Candidate, Cues
from intents.nlu.classifier import ClassifierConfig, LinearClassifier, load_or_train
from intents.nlu.clauses import read_clause_order
from intents.nlu.normalize import fold, order_concept, stem
from intents.nlu.postings import Postings, unit
from intents.nlu.ranking import Shortlister
from intents.nlu.tuning import MatcherConfig, load_tuning
from intents.nlu.typos import SHORTEST_TYPED, TypoIndex

HOWTO_CUE = "__howto__"
REQUEST_CUE = "__request__"
IMPERATIVE_CUE = "__imperative__"
QUESTION_CUE = "__question__"
INFINITIVE_CUE = "__infinitive__"
# Understanding reads this much of a message; longer texts are pasted documents.
MAX_CHARS = 600
# How many nearest phrasings get the (costlier) fuzzy comparison.
FUZZY_POOL = 24
RANKING_KEPT = 10
# Intents whose blend is computed exactly; the others cannot reach the head of the ranking.
SHORTLIST = 12


class Matcher:
    """Scores a message against every phrasing of every intent."""

    def __init__(
        self,
        kb: KnowledgeBase,
        config: MatcherConfig | None = None,
        *,
        classifier_config: ClassifierConfig | None = None,
        cache_dir: Path | None = None,
        taught: Sequence[tuple[str, str]] = (),
    ) -> None:
        """`taught`: (text, intent) pairs taught in chat, trained as phrasings of their intent
        beside the knowledge's own (intents/nlu/retraining.py)."""
        tuning = load_tuning() if config is None or classifier_config is None else None
        self.kb = kb
        self.config = config or (tuning.matcher if tuning else MatcherConfig())
        self.lexicon = kb.lexicon
        labels: list[str] = []
        texts: list[str] = []
        extra: dict[str, list[str]] = {}
        # Sorted: the same phrasings taught in any order give the same model (and cache key).
        for text, intent in sorted(taught):
            extra.setdefault(intent, []).append(text)
        for entry in kb.entries.values():
            # An intent's phrasings stay together: label_ranges reads them as one block.
            for example in [*entry.examples, *extra.get(entry.id, ())]:
                labels.append(entry.id)
                texts.append(example)
        for example in kb.out_of_scope_examples:
            labels.append(OUT_OF_SCOPE)
            texts.append(example)
        self.labels = labels
        # The fitted model is kept beside the classifier: a start reads it instead of fitting
        # again (a third of the start-up).
        cache = (
            fitted_cache.path(
                cache_dir,
                labels,
                texts,
                settings=f"{self.config!r} {self.lexicon.fingerprint}",
                code=Path(__file__),
            )
            if cache_dir
            else None
        )
        if cache is None or not fitted_cache.load(cache, self):
            self._build(texts)
            if cache is not None:
                fitted_cache.save(cache, self)
        self._range_labels = [label for label, _, _ in self.label_ranges]
        self._range_starts = np.asarray([s for _, s, _ in self.label_ranges], dtype=np.intp)
        self._shortlister = Shortlister(self.label_ranges, OUT_OF_SCOPE)
        column = {label: i for i, label in enumerate(self.classes)}
        self._class_of_range = np.asarray([column[k] for k in self._range_labels], dtype=np.intp)
        self._sorted_norms = [" ".join(sorted(n.split())) for n in self.example_norms]
        normalized = self.example_norms
        self.classifier: LinearClassifier | None = None
        if self.config.weight_classifier > 0:
            self.classifier = _trained(
                normalized,
                labels,
                classifier_config or (tuning.classifier if tuning else ClassifierConfig()),
                cache_dir,
            )

    def _build(self, texts: list[str]) -> None:
        """Fit the nearest-phrasing model: vocabulary, TF-IDF postings, naive Bayes."""
        self.label_ranges: list[tuple[str, int, int]] = []
        for index, label in enumerate(self.labels):
            if self.label_ranges and self.label_ranges[-1][0] == label:
                name, start, _ = self.label_ranges[-1]
                self.label_ranges[-1] = (name, start, index + 1)
            else:
                self.label_ranges.append((label, index, index + 1))
        self.vocabulary: set[str] = set()
        self.word_counts: dict[str, int] = defaultdict(int)
        normalized = [self.normalize(t) for t in texts]
        for norm in normalized:
            words = norm.split()
            self.vocabulary.update(words)
            for word in set(words):
                self.word_counts[word] += 1
        self.typo_index = TypoIndex.of(sorted(w for w in self.vocabulary if len(w) >= 4))
        self.example_norms = normalized
        self._fit([self.features(n) for n in normalized])

    # -- reading -------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        return self.lexicon.rewrite(fold(text[:MAX_CHARS]))

    @lru_cache(maxsize=20_000)  # noqa: B019 - the matcher lives as long as the process
    def correct(self, word: str) -> str:
        """A word the knowledge never uses, replaced by the closest known one (typos)."""
        if word in self.vocabulary or len(word) < SHORTEST_TYPED or word.isdigit():
            return word
        return self.typo_index.closest(word) or word

    def features(self, normalized: str, *, query: bool = False) -> dict[str, float]:
        words = normalized.split()
        typed = " ".join(words)
        if query:
            words = [self.correct(w) for w in words]
        content = [w for w in words if w not in self.lexicon.stopwords]
        stems = [stem(w) for w in content]
        counts: dict[str, float] = defaultdict(float)
        for s in stems:
            counts[s] += 1.0
        for left, right in zip(stems, stems[1:], strict=False):
            counts[f"{left}_{right}"] += self.config.bigram_weight
        joined = " ".join(words)
        # Cues and concepts are read in the words as typed too: a word the knowledge never
        # uses may still be one the lexicon knows (« réactivation », « lèves le blocage »),
        # and the nearest known word is then another word (« activation », « élèves »).
        read = (joined,) if typed == joined else (typed, joined)
        if any(self.lexicon.has_cue(t, self.lexicon.howto_cues) for t in read):
            counts[HOWTO_CUE] += 1.0
        if any(self.lexicon.asks_to_act(t) for t in read) or (
            HOWTO_CUE not in counts and any(self.lexicon.addressed(t) for t in read)
        ):
            counts[REQUEST_CUE] += 1.0
        found = dict.fromkeys(c for t in read for c in self.lexicon.concepts_in(t))
        for concept in found:
            counts[f"__{concept}__"] += self.config.concept_weight
        order = next(filter(None, (self.lexicon.imperative(t) for t in read)), None)
        if order:
            counts[IMPERATIVE_CUE] += 1.0
            verb = order.group(0).split()[-1]
            if self.lexicon.is_infinitive(verb):
                counts[INFINITIVE_CUE] += 1.0
            # The verb that opens an order says what to do more than any later word.
            counts[f"__{order_concept(verb)}__"] += 1.0
        if words and words[0] in {
            "pourquoi",
            "quand",
            "quel",
            "quelle",
            "quels",
            "quelles",
            "combien",
            "est",
            "ou",
            "qui",
            "que",
            "quoi",
            "comment",
        }:
            counts[QUESTION_CUE] += 1.0
        return counts

    def _requested(self, normalized: str) -> frozenset[str]:
        """Concepts of the verb a request asks for (only read when the message asks one)."""
        verb = self.lexicon.requested(normalized)
        return frozenset(self.lexicon.concepts_in(verb)) if verb else frozenset()

    def read_cues(self, text: str) -> Cues:
        """All the cues of the text (a follow-up's, read without its topic)."""
        return _cues(self.features(self.normalize(text)))

    # -- model ---------------------------------------------------------------------------
    def _fit(self, features: list[dict[str, float]]) -> None:
        documents = len(features)
        frequency: dict[str, int] = defaultdict(int)
        for feats in features:
            for key in feats:
                frequency[key] += 1
        self.idf = {k: math.log((1 + documents) / (1 + df)) + 1.0 for k, df in frequency.items()}
        vectors = [self._weigh(f) for f in features]
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for index, vector in enumerate(vectors):
            for key, weight in vector.items():
                postings[key].append((index, weight))
        centroids: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for label, vector in zip(self.labels, vectors, strict=True):
            for key, weight in vector.items():
                centroids[label][key] += weight
        # Centroids are rows of their own, one per intent in the order of label_ranges.
        position = {label: k for k, (label, _, _) in enumerate(self.label_ranges)}
        centroid_postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for label, summed in centroids.items():
            centroid = unit(dict(summed))
            for key, weight in centroid.items():
                centroid_postings[key].append((position[label], weight))
        # Against the phrasings, a zero (read as padding), then against the centroids: a
        # message's scores against both are one call. Only the joint lists are kept.
        self.joint = Postings.stacked(
            Postings(postings), Postings(centroid_postings), len(self.labels) + 1
        )
        self._fit_bayes(features)

    def _fit_bayes(self, features: list[dict[str, float]]) -> None:
        """Multinomial naive Bayes: learns which words tell two close intents apart."""
        self.classes = sorted(set(self.labels))
        column = {label: i for i, label in enumerate(self.classes)}
        self.bayes_index: dict[str, int] = {}
        cells: dict[tuple[int, int], float] = defaultdict(float)
        for label, feats in zip(self.labels, features, strict=True):
            for key, value in feats.items():
                row = self.bayes_index.setdefault(key, len(self.bayes_index))
                cells[row, column[label]] += value
        counts = np.zeros((len(self.bayes_index), len(self.classes)))
        if cells:
            rows, columns = zip(*cells, strict=True)
            counts[list(rows), list(columns)] = list(cells.values())
        alpha = self.config.bayes_smoothing
        totals = counts.sum(axis=0) + alpha * len(self.bayes_index)
        # One row of log-probabilities per feature: a message's scores are a few rows summed.
        # Single precision halves the largest table of the model; no reading changes with it.
        self.bayes_logs = np.log((counts + alpha) / totals).astype(np.float32)

    def _bayes_posterior(self, counts: dict[str, float]) -> np.ndarray | None:
        """P(intent | words), classes equally likely a priori, in the order of label_ranges
        (None when no word of the message is known)."""
        index = self.bayes_index
        found = [(index[k], v) for k, v in counts.items() if k in index]
        if not found:
            return None
        rows, weights = zip(*found, strict=True)
        logs = np.asarray(weights) @ self.bayes_logs[list(rows)]
        exp = np.exp(logs - logs.max())
        exp /= exp.sum()
        return exp[self._class_of_range]

    def _weigh(self, counts: dict[str, float]) -> dict[str, float]:
        weighted = {
            k: (1.0 + math.log(v) if v >= 1 else v) * self.idf[k]
            for k, v in counts.items()
            if k in self.idf
        }
        return unit(weighted)

    def analyse(self, text: str, *, calibrated: bool = True) -> Analysis:
        """Rank every intent for this message (by the blend itself when not `calibrated`)."""
        normalized = self.normalize(text)
        counts = self.features(normalized, query=True)
        vector = self._weigh(counts)
        analysis = Analysis(
            text=text,
            concepts=frozenset(k[2:-2] for k in counts if k.startswith("__") and k.endswith("__")),
            services=self.lexicon.services_in(normalized),
            orders=self.lexicon.orders_in(normalized),
            anchors=frozenset(normalized.split()) & self.lexicon.anchors,
            requested=self._requested(normalized) if REQUEST_CUE in counts else frozenset(),
        )
        analysis.cues = _cues(counts)
        read_clause_order(analysis, self.lexicon)
        if not vector:
            return analysis
        # Examples of one intent are contiguous (see label_ranges): the nearest phrasing of
        # each intent is a max over its slice.
        # Against the phrasings, a zero (read as padding), then against the centroids.
        size = len(self.labels) + 1
        joint = self.joint.scores(vector, size + len(self.label_ranges))
        similarity = joint[:size]
        nearest_all = np.maximum.reduceat(similarity, self._range_starts)
        centroid_all = joint[size:]
        config = self.config
        posterior = self._bayes_posterior(counts) if config.weight_bayes else None
        posterior = np.zeros(len(self.label_ranges)) if posterior is None else posterior
        # The exact blend (top-k, fuzzy) is only worth computing for the intents that can make
        # the head of the ranking: shortlist them on cheap parts.
        prelim = (
            (config.weight_best + config.weight_top) * nearest_all
            + config.weight_centroid * centroid_all
            + config.weight_bayes * posterior
        )
        shortlister = self._shortlister
        kept = shortlister.shortlist(prelim, nearest_all, SHORTLIST)
        knn = config.knn
        tops, nearest_examples = shortlister.nearest(similarity, kept, knn, FUZZY_POOL)
        # Fuzzy similarity only on the nearest phrasings: the others cannot win anyway.
        # token_sort_ratio is the ratio of the words sorted: the phrasings' are sorted once.
        query = " ".join(sorted(normalized.split()))
        fuzzy: dict[str, float] = {}
        for index in nearest_examples:
            label = self.labels[index]
            ratio = fuzz.ratio(query, self._sorted_norms[index]) / 100.0
            if ratio > fuzzy.get(label, 0.0):
                fuzzy[label] = ratio
        range_labels = self._range_labels
        centroid_of = centroid_all.tolist()
        posterior_of = posterior.tolist()
        scores: dict[str, float] = {}
        for k, top in tops.items():
            label = range_labels[k]
            scores[label] = self.scale(
                config.weight_best * top[0]
                + config.weight_top * (sum(top) / knn)
                + config.weight_centroid * centroid_of[k]
                + config.weight_fuzzy * fuzzy.get(label, 0.0)
                + config.weight_bayes * posterior_of[k]
            )
        scores = self._blend(scores, normalized)
        analysis.out_of_scope_score = scores.pop(OUT_OF_SCOPE, 0.0)
        out = shortlister.out_of_scope
        analysis.nearest_out = float(nearest_all[out]) if out >= 0 else 0.0
        out_indices = [i for i in nearest_examples if self.labels[i] == OUT_OF_SCOPE]
        if out_indices:
            # A domain word of the message that the nearest off-topic phrasing lacks means
            # that phrasing does not explain the message (« FranceConnect … EduConnect »).
            words = set(normalized.split())
            anchors = words & self.lexicon.anchors
            analysis.anchored = bool(anchors - set(self.example_norms[out_indices[0]].split()))
        # Similarities are never negative: the max over all is the max over those above 0.
        inside = nearest_all.copy()
        if out >= 0:
            inside[out] = 0.0
        at = int(inside.argmax())
        analysis.nearest_in = float(inside[at])
        analysis.nearest_intent = self._range_labels[at] if inside[at] > 0.0 else ""
        # Only the head of the ranking is ever read (best, alternatives, nearest topics).
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:RANKING_KEPT]
        confidence = self.calibrate if calibrated else float
        analysis.ranking = [Candidate(i, confidence(s)) for i, s in ranked]
        return analysis

    def _blend(self, scores: dict[str, float], normalized: str) -> dict[str, float]:
        """The nearest-phrasing scores blended with the classifier's probabilities."""
        if self.classifier is None:
            return scores
        probabilities = self.classifier.probabilities(normalized)
        return self.mix(scores, probabilities, self.config.weight_classifier)

    @staticmethod
    def mix(
        scores: dict[str, float], probabilities: dict[str, float], weight: float
    ) -> dict[str, float]:
        """A weighted mean of the two scores of each intent that either ranks."""
        labels = set(scores) | {k for k, p in probabilities.items() if p >= 0.005}
        return {
            label: (1.0 - weight) * scores.get(label, 0.0) + weight * probabilities.get(label, 0.0)
            for label in labels
        }

    def scale(self, raw: float) -> float:
        """Map the nearest-phrasing blend to [0, 1], its knee at 0.5."""
        # The knee is the raw blend where, in cross-validation over the knowledge phrasings,
        # answers stop being right more often than not.
        knee = self.config.knee
        below = 0.5 * raw / knee
        above = 0.5 + 0.5 * min(1.0, (raw - knee) / 0.45)
        value = below if raw <= knee else above
        return max(0.0, min(1.0, value))

    def calibrate(self, blended: float) -> float:
        """The blend as a confidence: Platt scaling fitted on held-out folds."""
        if blended <= 0.0:
            return 0.0
        z = self.config.calibration_slope * blended + self.config.calibration_intercept
        return round(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z)))), 4)


# Tests and cross-validation build many matchers over the same data: train each once.
_TRAINED: dict[int, LinearClassifier] = {}


def _trained(
    texts: list[str], labels: list[str], config: ClassifierConfig, cache_dir: Path | None
) -> LinearClassifier:
    """The classifier for this data: from this process, the cache folder, or trained now."""
    key = hash((tuple(texts), tuple(labels), config))
    model = _TRAINED.get(key)
    if model is None:
        model = load_or_train(texts, labels, config, cache_dir)
        _TRAINED[key] = model
    return model


def _cues(counts: dict[str, float]) -> Cues:
    """The cues among a message's features."""
    asked = REQUEST_CUE in counts
    return Cues(
        howto=HOWTO_CUE in counts,
        order=asked or IMPERATIVE_CUE in counts,
        asked_to_act=asked,
        infinitive=INFINITIVE_CUE in counts,
    )
