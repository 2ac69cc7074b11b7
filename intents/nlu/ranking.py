"""The exact part of the matcher's blend, for the few intents that can head the ranking:
which intents those are, and the nearest phrasings of each (intents/nlu/matcher.py)."""

from __future__ import annotations

from operator import itemgetter

import numpy as np


class Shortlister:
    """Row and intent tables of one fitted matcher, read for each message."""

    def __init__(self, ranges: list[tuple[str, int, int]], out_of_scope: str) -> None:
        lengths = np.asarray([end - start for _, start, end in ranges], dtype=np.intp)
        # Ties of the preliminary blend go to the greater label, as a sort of tuples does.
        order = sorted(range(len(ranges)), key=lambda k: ranges[k][0])
        self.label_rank = np.empty(len(ranges), dtype=np.intp)
        self.label_rank[order] = np.arange(len(ranges), dtype=np.intp)
        # The phrasing rows of the intents, one table per width (out of scope has many more
        # phrasings than the others), padded with the row past the last one.
        padding = int(lengths.sum())
        widths = sorted({128 if n <= 128 else int(n) for n in lengths.tolist()})
        self.buckets: list[tuple[list[int], np.ndarray]] = []
        for width in widths:
            members = [-1] * len(ranges)
            table: list[list[int]] = []
            for k, (_, start, end) in enumerate(ranges):
                if (128 if end - start <= 128 else end - start) == width:
                    members[k] = len(table)
                    table.append(list(range(start, end)) + [padding] * (width - end + start))
            self.buckets.append((members, np.asarray(table, dtype=np.intp)))
        positions = [k for k, (label, _, _) in enumerate(ranges) if label == out_of_scope]
        self.out_of_scope = positions[0] if positions else -1

    def shortlist(self, prelim: np.ndarray, nearest: np.ndarray, size: int) -> list[int]:
        """The intents with a nearest phrasing, best preliminary blend first, cut at `size`
        (out of scope always kept)."""
        valid = np.flatnonzero(nearest > 0.0)
        order = valid[np.lexsort((-self.label_rank[valid], -prelim[valid]))].tolist()
        kept = order[:size]
        if self.out_of_scope in order[size:]:
            kept.append(self.out_of_scope)
        return kept

    def nearest(
        self, similarity: np.ndarray, kept: list[int], knn: int, pool_size: int
    ) -> tuple[dict[int, list[float]], list[int]]:
        """Per kept intent, its `knn` best similarities (best first, ties in the knowledge's
        order; the zeros left out, which add nothing), and the rows of the `pool_size` nearest
        phrasings among those, nearest first. `similarity` ends with a zero, which the
        padding cells read."""
        found: dict[int, list[tuple[float, int]]] = {k: [] for k in kept}
        for members, table in self.buckets:
            chosen = [k for k in kept if members[k] >= 0]
            if not chosen:
                continue
            rows = table[[members[k] for k in chosen]]
            values = similarity[rows]
            width = values.shape[1]
            keep = values > 0.0
            if knn < width:
                # At or above each intent's knn-th best: the only rows its top can hold.
                kth = np.partition(values, width - knn, axis=1)[:, width - knn]
                keep &= values >= kth[:, None]
            at, column = np.nonzero(keep)  # by intent, then by row
            for k, row, value in zip(
                at.tolist(), rows[at, column].tolist(), values[at, column].tolist(), strict=True
            ):
                found[chosen[k]].append((value, row))
        per_intent: dict[int, list[float]] = {}
        pool: list[tuple[float, int]] = []
        for k in kept:
            # Stable: ties keep the knowledge's order, as sorted(..., reverse=True) does.
            top = sorted(found[k], key=itemgetter(0), reverse=True)[:knn]
            per_intent[k] = [value for value, _ in top]
            pool.extend(top)
        pool.sort(key=itemgetter(0), reverse=True)
        return per_intent, [row for _, row in pool[:pool_size]]
