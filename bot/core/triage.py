"""Open questions grouped by similarity for the eRun's /triage: most frequent first."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from intents.nlu.normalize import Lexicon, fold

# Chosen on tests/data/triage_questions.yaml (30 groups of paraphrases and 20 singletons, with
# the knowledge's phrasings as background): adjusted Rand index 0.70 at 0.25, 0.67 to 0.70
# from 0.20 to 0.30 (tests/test_triage.py keeps a floor under it).
THRESHOLD = 0.25
# The inverse document frequency is cubed: the word that names the service (« pronote »,
# « ameli ») must outweigh the words every question shares (« mot de passe oublié »). Squared
# or plain, « mot de passe pronote » and « mot de passe ameli » fall in one group; cubed, the
# set's score is the same (0.70 against 0.71) and they stay apart.
_IDF_POWER = 3
# Rounds of moving a question to the group it is closest to on average: the first pass
# depends on the order questions are taken in, these rounds undo most of that.
REFINE_ROUNDS = 3
# Character trigrams within words catch typos and SMS spellings (« pronot », « mdp »); the
# words themselves reward exact agreement.
_GRAM = 3
_WORD = "w:"
_CACHED = 20_000


@dataclass(frozen=True)
class OpenQuestion:
    """One open ticket as triage sees it; ticket ids grow with time."""

    ticket_id: int
    question: str
    top_candidate: str | None = None


@dataclass(frozen=True)
class QuestionCluster:
    """Tickets asking the same thing, with the question that stands for them."""

    ticket_ids: tuple[int, ...]
    representative: str
    top_candidate: str | None

    @property
    def count(self) -> int:
        """How many tickets the group holds."""
        return len(self.ticket_ids)


class Triage:
    """Groups questions with TF-IDF over character trigrams and words, then a deterministic
    average-link leader clustering with a threshold."""

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        background: Iterable[str] = (),
        threshold: float = THRESHOLD,
    ) -> None:
        self.lexicon = lexicon
        self.threshold = threshold
        # Document frequencies of a fixed corpus (the knowledge's phrasings): with only a few
        # tickets, « mot de passe » must still weigh less than « pronote » or « ameli ».
        # Open tickets are triaged again and again: their features are kept.
        self._features: dict[str, Counter[str]] = {}
        self._background_df: Counter[str] = Counter()
        self._background_size = 0
        for text in background:
            self._background_df.update(self.features(text).keys())
            self._background_size += 1

    def words(self, text: str) -> list[str]:
        """Folded words without stop words, SMS spellings rewritten when a lexicon is given."""
        folded = fold(text)
        if self.lexicon is None:
            return folded.split()
        stop = self.lexicon.stopwords
        return [w for w in self.lexicon.rewrite(folded).split() if w not in stop]

    def features(self, text: str) -> Counter[str]:
        """Trigram and word counts of one text."""
        cached = self._features.get(text)
        if cached is not None:
            return cached
        grams: list[str] = []
        for word in self.words(text):
            padded = f" {word} "
            grams.extend(padded[i : i + _GRAM] for i in range(len(padded) - _GRAM + 1))
            grams.append(_WORD + word)
        if len(self._features) >= _CACHED:
            self._features.clear()
        counts = self._features[text] = Counter(grams)
        return counts

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every pair of texts (n × n, 1 on the diagonal)."""
        rows = [self.features(text) for text in texts]
        df = Counter(self._background_df)
        for row in rows:
            df.update(row.keys())
        total = len(rows) + self._background_size
        vocabulary = {gram: i for i, gram in enumerate(sorted({g for row in rows for g in row}))}
        idf = np.array(
            [(math.log((1 + total) / (1 + df[g])) + 1.0) ** _IDF_POWER for g in vocabulary],
            dtype=np.float32,
        )
        matrix = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
        cells = [(r, vocabulary[g], c) for r, row in enumerate(rows) for g, c in row.items()]
        if cells:
            at_row, at_column, value = zip(*cells, strict=True)
            matrix[list(at_row), list(at_column)] = value
        matrix *= idf
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.maximum(norms, 1e-9)
        # A feature of one question only adds to its norm, never to a pair: leaving it out of
        # the product makes it several times smaller.
        shared = np.count_nonzero(matrix, axis=0) >= 2
        kept = matrix[:, shared]
        similarity: np.ndarray = kept @ kept.T
        # A question with no word at all (« ??? ») is still equal to itself only.
        np.fill_diagonal(similarity, 1.0)
        return similarity

    def labels(self, similarity: np.ndarray, texts: Sequence[str] = ()) -> np.ndarray:
        """A group number per question: the same groups whatever the order of the input."""
        n = len(similarity)
        labels = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return labels
        # Questions with the most close neighbours found the groups: the typical phrasing of
        # a frequent question, not an odd one, is what others are compared with first. Ties
        # go by text, so that shuffled tickets give the same groups.
        degree = (similarity >= self.threshold).sum(axis=1)
        keys = list(texts) if len(texts) == n else [""] * n
        order = sorted(range(n), key=lambda i: (-int(degree[i]), keys[i], i))
        # totals[g, q]: the summed similarity of question q to the members of group g, kept up
        # to date as questions join (one contiguous row added per question).
        totals = np.zeros((n, n), dtype=np.float64)
        counts = np.zeros(n, dtype=np.float64)
        groups = 0
        for i in order:
            best = -1
            if groups:
                means = totals[:groups, i] / counts[:groups]
                best = int(np.argmax(means))
                if means[best] < self.threshold:
                    best = -1
            if best < 0:
                best = groups
                groups += 1
            labels[i] = best
            counts[best] += 1
            totals[best] += similarity[i]
        return self._refine(similarity, labels, totals[:groups], counts[:groups], order)

    def _refine(
        self,
        similarity: np.ndarray,
        labels: np.ndarray,
        totals: np.ndarray,
        counts: np.ndarray,
        order: list[int],
    ) -> np.ndarray:
        """Move each question to the group it is closest to on average, a few rounds."""
        for _ in range(REFINE_ROUNDS):
            changed = False
            for i in order:
                own = int(labels[i])
                sums = totals[:, i].copy()
                sizes = counts.copy()
                # Its own group is judged without it.
                sums[own] -= similarity[i, i]
                sizes[own] -= 1
                means = np.where(sizes > 0, sums / np.maximum(sizes, 1.0), -1.0)
                best = int(np.argmax(means))
                if best != own and means[best] >= self.threshold and means[best] > means[own]:
                    labels[i] = best
                    counts[own] -= 1
                    counts[best] += 1
                    totals[own] -= similarity[i]
                    totals[best] += similarity[i]
                    changed = True
            if not changed:
                break
        return labels

    def clusters(self, questions: Sequence[OpenQuestion]) -> list[QuestionCluster]:
        """Groups by size, largest first, then the one with the most recent ticket first."""
        if not questions:
            return []
        similarity = self.similarities([q.question for q in questions])
        labels = self.labels(similarity, [fold(q.question) for q in questions])
        groups: dict[int, list[int]] = {}
        for i, label in enumerate(labels.tolist()):
            groups.setdefault(label, []).append(i)
        found: list[QuestionCluster] = []
        for members in groups.values():
            inner = similarity[np.ix_(members, members)].sum(axis=1)
            # The medoid speaks for the group; among equals, the most recent ticket.
            central = max(
                range(len(members)),
                key=lambda k: (float(inner[k]), questions[members[k]].ticket_id),
            )
            candidates = Counter(
                q.top_candidate for q in (questions[i] for i in members) if q.top_candidate
            )
            top = min(candidates, key=lambda c: (-candidates[c], c)) if candidates else None
            found.append(
                QuestionCluster(
                    ticket_ids=tuple(sorted(questions[i].ticket_id for i in members)),
                    representative=questions[members[central]].question,
                    top_candidate=top,
                )
            )
        found.sort(key=lambda c: (-c.count, -max(c.ticket_ids)))
        return found


def triage(
    questions: Sequence[OpenQuestion],
    lexicon: Lexicon | None = None,
    background: Iterable[str] = (),
) -> list[QuestionCluster]:
    """Open questions grouped with the default threshold (builds a Triage each call)."""
    return Triage(lexicon, background).clusters(questions)
