"""A multinomial logistic regression over word and character n-grams, trained from
knowledge/ (out of scope as a class of its own) and cached by the knowledge's hash.

Training uses scikit-learn, imported only on a cache miss; reading a message needs numpy
alone, so that start-up stays fast once the model is cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when the features or the file format change: old cache files are then ignored.
MODEL_VERSION = 3
_WORD = re.compile(r"\b\w\w+\b")
# Words whose character n-grams are kept read (a few MB at most).
WORD_CACHE = 50_000


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyperparameters, chosen by cross-validation over knowledge/ (`knowledge tune`)."""

    regularization: float = 20.0
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    # Misspelt copies of each phrasing added to training: people type fast on a phone.
    noisy_copies: int = 0
    # Copies with one word left out: people do not all use the word a phrasing hinges on.
    dropped_copies: int = 0

    @classmethod
    def from_data(cls, raw: dict[str, Any]) -> ClassifierConfig:
        """The settings in parsed data (a model file, knowledge/tuning.yaml); a missing key
        keeps its default."""
        default = cls()
        return cls(
            regularization=float(raw.get("regularization", default.regularization)),
            word_ngrams=_pair(raw.get("word_ngrams", default.word_ngrams)),
            char_ngrams=_pair(raw.get("char_ngrams", default.char_ngrams)),
            noisy_copies=int(raw.get("noisy_copies", default.noisy_copies)),
            dropped_copies=int(raw.get("dropped_copies", default.dropped_copies)),
        )


def _pair(value: Sequence[Any]) -> tuple[int, int]:
    return int(value[0]), int(value[1])


def misspelt(text: str, rng: random.Random) -> str:
    """The text with one or two typing slips in its longer words: a letter dropped,
    doubled or swapped with the next one."""
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 5]
    for index in rng.sample(long, min(len(long), rng.choice((1, 2)))):
        word = words[index]
        at = rng.randrange(1, len(word) - 1)
        slip = rng.randrange(3)
        if slip == 0:
            word = word[:at] + word[at + 1 :]
        elif slip == 1:
            word = word[:at] + word[at] + word[at:]
        else:
            word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        words[index] = word
    return " ".join(words)


def without_a_word(text: str, rng: random.Random) -> str:
    """The text less one of its words of three letters or more (the text itself when it has
    fewer than four words: there would be too little left)."""
    words = text.split()
    kept = [i for i, w in enumerate(words) if len(w) >= 3]
    if len(words) < 4 or not kept:
        return text
    dropped = rng.choice(kept)
    return " ".join(w for i, w in enumerate(words) if i != dropped)


def word_ngrams(text: str, sizes: tuple[int, int]) -> list[str]:
    """Word n-grams of an already normalised text."""
    words = _WORD.findall(text)
    grams: list[str] = []
    for n in range(sizes[0], sizes[1] + 1):
        grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


def char_ngrams(text: str, sizes: tuple[int, int]) -> list[str]:
    """Character n-grams inside each word padded with spaces: robust to typos and endings."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for n in range(sizes[0], sizes[1] + 1):
            if n > len(padded):
                break
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


# 1 + log(count) for the counts a message can have (math.log, as the loop it replaces).
_SUBLINEAR = np.array([0.0] + [1.0 + math.log(count) for count in range(1, 256)])


class _Block:
    """One kind of n-gram: its vocabulary and inverse document frequencies."""

    def __init__(self, index: dict[str, int], idf: np.ndarray, offset: int) -> None:
        self.index = index
        self.idf = np.asarray(idf, dtype=np.float64)
        self.offset = offset


class LinearClassifier:
    """P(intent | message) for every intent of the knowledge and for out of scope."""

    def __init__(
        self,
        config: ClassifierConfig,
        classes: Sequence[str],
        vocabularies: tuple[Sequence[str], Sequence[str]],
        idfs: tuple[np.ndarray, np.ndarray],
        coef: np.ndarray,
        intercept: np.ndarray,
        scale: np.ndarray | None = None,
    ) -> None:
        """`coef` as trained (features × classes), or already in steps of `scale` when the
        scale is given (a model file)."""
        self.config = config
        self.classes = tuple(classes)
        words, chars = vocabularies
        self._words = _Block({g: i for i, g in enumerate(words)}, idfs[0], 0)
        self._chars = _Block({g: i for i, g in enumerate(chars)}, idfs[1], len(words))
        # The known character n-grams of a word depend on the word alone: read once each.
        self._word_grams: dict[str, tuple[int, ...]] = {}
        # One row of class weights per feature: a message's scores are a few rows summed.
        # Kept as 16-bit integers in steps of each class's largest weight / 32767: half the
        # memory of single precision, and, unlike half precision, read at its speed.
        if scale is None:
            weights = np.asarray(coef, dtype=np.float32)
            peak = np.abs(weights).max(axis=0) if weights.size else np.ones(len(self.classes))
            scale = np.where(peak > 0, peak / 32767.0, 1.0).astype(np.float32)
            coef = np.round(weights / scale)
        self._scale = np.asarray(scale, dtype=np.float32)
        self._coef = np.ascontiguousarray(coef, dtype=np.int16)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._vocabularies = (list(words), list(chars))
        self._idf = np.concatenate((self._words.idf, self._chars.idf))

    def probabilities(self, normalized: str) -> dict[str, float]:
        """The probability of each class for an already normalised message."""
        index = self._words.index
        # Word n-grams then character n-grams (their rows after the words'), each counted in
        # the order of its first occurrence; each block is L2-normalised on its own.
        counted = Counter(
            [index[g] for g in word_ngrams(normalized, self.config.word_ngrams) if g in index]
        )
        known_words = len(counted)
        counted.update(chain.from_iterable([self._char_grams(w) for w in normalized.split()]))
        scores = self._intercept.copy()
        if counted:
            rows = np.fromiter(counted.keys(), dtype=np.intp, count=len(counted))
            counts = np.fromiter(counted.values(), dtype=np.intp, count=len(counted))
            if counts.max() < len(_SUBLINEAR):
                tf = _SUBLINEAR[counts]
            else:  # a word said hundreds of times: past the table
                tf = np.array([1.0 + math.log(c) for c in counts.tolist()])
            values = tf * self._idf[rows]
            squares = values * values
            for block in (slice(0, known_words), slice(known_words, len(values))):
                if block.stop > block.start:
                    # A running sum adds one after the other like Python's sum(), not
                    # pairwise like numpy's sum(): the same norm, to the last bit, as a loop.
                    values[block] /= math.sqrt(float(np.cumsum(squares[block])[-1])) or 1.0
            scores += (values.astype(np.float32) @ self._coef[rows]) * self._scale
        scores -= scores.max()
        exp = np.exp(scores)
        exp /= exp.sum()
        return dict(zip(self.classes, exp.tolist(), strict=True))

    def _char_grams(self, word: str) -> tuple[int, ...]:
        """The rows of the word's character n-grams, in the order they occur."""
        known = self._word_grams.get(word)
        if known is None:
            index = self._chars.index
            offset = self._chars.offset
            grams = char_ngrams(word, self.config.char_ngrams)
            known = tuple(index[g] + offset for g in grams if g in index)
            if len(self._word_grams) >= WORD_CACHE:
                self._word_grams.clear()  # a flood of made-up words: start afresh
            self._word_grams[word] = known
        return known

    # -- training and cache -------------------------------------------------------------
    @classmethod
    def train(
        cls, texts: Sequence[str], labels: Sequence[str], config: ClassifierConfig
    ) -> LinearClassifier:
        """Fit on normalised texts; deterministic for the same data."""
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        rng = random.Random(7)  # fixed: the same knowledge always gives the same model
        texts, labels = list(texts), list(labels)
        for text, label in list(zip(texts, labels, strict=True)):
            for _ in range(config.noisy_copies):
                texts.append(misspelt(text, rng))
                labels.append(label)
            for _ in range(config.dropped_copies):
                texts.append(without_a_word(text, rng))
                labels.append(label)
        vectorizers = [
            TfidfVectorizer(analyzer=lambda t: word_ngrams(t, config.word_ngrams)),
            TfidfVectorizer(analyzer=lambda t: char_ngrams(t, config.char_ngrams)),
        ]
        for vectorizer in vectorizers:
            vectorizer.set_params(sublinear_tf=True)
        matrix = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
        model = LogisticRegression(C=config.regularization, max_iter=5000)
        model.fit(matrix, list(labels))
        vocabularies = tuple(v.get_feature_names_out().tolist() for v in vectorizers)
        return cls(
            config,
            [str(c) for c in model.classes_],
            (vocabularies[0], vocabularies[1]),
            (vectorizers[0].idf_, vectorizers[1].idf_),
            model.coef_.T,
            model.intercept_,
        )

    def save(self, path: Path) -> None:
        """Write atomically: two processes training at once leave one whole file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(
                    out,
                    config=np.array(json.dumps(asdict(self.config))),
                    classes=np.array(self.classes),
                    words=np.array(self._vocabularies[0], dtype=str),
                    chars=np.array(self._vocabularies[1], dtype=str),
                    idf_words=self._words.idf,
                    idf_chars=self._chars.idf,
                    coef=self._coef,
                    scale=self._scale,
                    intercept=self._intercept,
                )
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> LinearClassifier:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                ClassifierConfig.from_data(json.loads(str(data["config"]))),
                data["classes"].tolist(),
                (data["words"].tolist(), data["chars"].tolist()),
                (data["idf_words"], data["idf_chars"]),
                data["coef"],
                data["intercept"],
                data["scale"],
            )


def training_key(
    texts: Sequence[str], labels: Sequence[str], config: ClassifierConfig, extra: str = ""
) -> str:
    """A hash of everything the model depends on: the data, its settings and this code."""
    digest = hashlib.sha256()
    digest.update(json.dumps([MODEL_VERSION, asdict(config), extra]).encode())
    for label, text in zip(labels, texts, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:24]


def load_or_train(
    texts: Sequence[str],
    labels: Sequence[str],
    config: ClassifierConfig,
    cache_dir: Path | None,
    *,
    extra: str = "",
    on_train: Callable[[], None] | None = None,
) -> LinearClassifier:
    """The cached model for this exact data, or a new one trained (and cached) now."""
    path = None
    if cache_dir is not None:
        path = cache_dir / f"intents-{training_key(texts, labels, config, extra)}.npz"
        if path.exists():
            try:
                return LinearClassifier.load(path)
            except (OSError, ValueError, KeyError) as error:
                log.warning("model cache %s unreadable (%s): training again", path, error)
    if on_train is not None:
        on_train()
    model = LinearClassifier.train(texts, labels, config)
    if path is not None:
        try:
            model.save(path)
        except OSError as error:  # a read-only cache costs a training per start, no more
            log.warning("model cache %s not written: %s", path, error)
    return model
