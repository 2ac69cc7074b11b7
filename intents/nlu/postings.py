"""Inverted lists of the nearest-phrasing model kept as flat numpy arrays: a message's scores
against every phrasing (or every intent's centroid) are one gather and one bincount."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


class Postings:
    """For each feature, the rows (phrasings or intents) that have it and with what weight."""

    def __init__(self, lists: Mapping[str, Sequence[tuple[int, float]]]) -> None:
        self.spans: dict[str, tuple[int, int]] = {}
        rows: list[int] = []
        weights: list[float] = []
        for key, entries in lists.items():
            self.spans[key] = (len(rows), len(rows) + len(entries))
            for row, weight in entries:
                rows.append(row)
                weights.append(weight)
        self.rows = np.asarray(rows, dtype=np.intp)
        self.weights = np.asarray(weights, dtype=np.float64)

    @classmethod
    def stacked(cls, first: Postings, second: Postings, offset: int) -> Postings:
        """Both lists in one, the rows of the second moved down by `offset`: one message's
        scores against both are then one call, the same floats as two."""
        joint = cls({})
        rows: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        at = 0
        for key in {**first.spans, **second.spans}:
            start = at
            for source, shift in ((first, 0), (second, offset)):
                span = source.spans.get(key)
                if span is not None:
                    rows.append(source.rows[span[0] : span[1]] + shift)
                    weights.append(source.weights[span[0] : span[1]])
                    at += span[1] - span[0]
            joint.spans[key] = (start, at)
        joint.rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp)
        joint.weights = np.concatenate(weights) if weights else np.zeros(0)
        return joint

    def scores(self, vector: Mapping[str, float], size: int) -> np.ndarray:
        """Per row, the sum over the vector's features of their weight times the row's.

        The products are added in the vector's order, feature by feature, as a loop over the
        lists would: bincount adds its weights in sequence, so the floats are the same.
        """
        starts: list[int] = []
        ends: list[int] = []
        factors: list[float] = []
        spans = self.spans
        for key, weight in vector.items():
            span = spans.get(key)
            if span is not None:
                starts.append(span[0])
                ends.append(span[1])
                factors.append(weight)
        if not starts:
            return np.zeros(size)
        first = np.asarray(starts, dtype=np.intp)
        lengths = np.asarray(ends, dtype=np.intp) - first
        # Position of every posting of those features, feature after feature.
        shift = np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
        positions = np.arange(int(lengths.sum()), dtype=np.intp) + shift
        products = np.repeat(np.asarray(factors), lengths) * self.weights[positions]
        return np.bincount(self.rows[positions], weights=products, minlength=size)


def unit(vector: dict[str, float]) -> dict[str, float]:
    """The vector scaled to length 1 (empty when it is all zeros)."""
    norm = math.sqrt(sum(v * v for v in vector.values()))
    if not norm:
        return {}
    return {k: v / norm for k, v in vector.items()}
