"""The known word a mistyped one meant: the closest in edits, found through deletions.

Two words within k edits of each other share a string that k deletions or fewer make from
each (the idea of SymSpell), so the words worth an exact Levenshtein distance are the few that
share one of the typed word's deletions, instead of every word of a reachable length.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein


def typo_limit(length: int) -> int:
    """How many edits a typed word of this length may be away from the word meant."""
    return 1 if length < 8 else 2


# The shortest typed word corrected, and so the shortest known word its limit reaches.
SHORTEST_TYPED = 5


def deletions(word: str, most: int) -> set[str]:
    """The word and every string `most` deletions or fewer make from it."""
    found = {word}
    # Each set of positions once: a later deletion is never left of the one before it.
    frontier = [(word, 0)]
    for _ in range(most):
        frontier = [
            (text[:at] + text[at + 1 :], at)
            for text, start in frontier
            for at in range(start, len(text))
        ]
        found.update(text for text, _ in frontier)
    return found


def _key(text: str) -> int:
    # A checksum, not hash(): the same in every process, so the index can be cached on disk.
    return zlib.crc32(text.encode())


class TypoIndex:
    """The known words, and the deletions of each as sorted checksums beside its rank."""

    def __init__(self, words: list[str], keys: np.ndarray, ranks: np.ndarray) -> None:
        self.words = words
        self.keys = keys
        self.ranks = ranks

    @classmethod
    def of(cls, words: Sequence[str]) -> TypoIndex:
        """Index `words` (the vocabulary, in the order ties are settled by)."""
        keys: list[int] = []
        ranks: list[int] = []
        for rank, word in enumerate(words):
            # A known word is reached from typed words one or two letters longer or shorter,
            # whose limit then says how many deletions to keep.
            most = max(typo_limit(n) for n in range(len(word) - 2, len(word) + 3))
            for deleted in deletions(word, most):
                keys.append(_key(deleted))
                ranks.append(rank)
        order = np.argsort(np.asarray(keys, dtype=np.uint32), kind="stable")
        return cls(
            list(words),
            np.asarray(keys, dtype=np.uint32)[order],
            np.asarray(ranks, dtype=np.int32)[order],
        )

    def closest(self, word: str) -> str | None:
        """The known word fewest edits away within the word's limit, the first of the words
        indexed on a tie (as a scan of them would give); None when none is that close."""
        limit = typo_limit(len(word))
        wanted = np.fromiter((_key(d) for d in deletions(word, limit)), dtype=np.uint32, count=-1)
        starts = np.searchsorted(self.keys, wanted, "left").tolist()
        ends = np.searchsorted(self.keys, wanted, "right").tolist()
        candidates: set[int] = set()
        for start, end in zip(starts, ends, strict=True):
            if end > start:
                candidates.update(self.ranks[start:end].tolist())
        best, fewest = None, limit + 1
        for rank in sorted(candidates):
            known = self.words[rank]
            if abs(len(known) - len(word)) > limit:
                continue
            edits = Levenshtein.distance(word, known, score_cutoff=limit)
            if edits < fewest:
                best, fewest = known, edits
        return best
