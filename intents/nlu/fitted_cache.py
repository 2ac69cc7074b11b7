"""The nearest-phrasing model, once fitted, kept in the model cache folder.

Keyed by everything the fit depends on: the phrasings, the lexicon, the settings and the
code of the matcher and of the normalisation, so that a change to any of them fits again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path

from intents.nlu import normalize, postings, typos

log = logging.getLogger(__name__)

# What a fit produces; everything else of a matcher is rebuilt cheaply.
STATE = (
    "label_ranges", "vocabulary", "word_counts", "typo_index", "example_norms",
    "idf", "joint", "classes", "bayes_index", "bayes_logs",
)  # fmt: skip


def path(folder: Path, labels: list[str], texts: list[str], *, settings: str, code: Path) -> Path:
    """The cache file of a fit on these phrasings; `settings` says the matcher's settings and
    lexicon, `code` is the matcher's module."""
    digest = hashlib.sha256()
    for source in (code, *(Path(str(m.__file__)) for m in (normalize, postings, typos))):
        digest.update(source.read_bytes())
    digest.update(settings.encode())
    for label, text in zip(labels, texts, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return folder / f"nearest-{digest.hexdigest()[:24]}.pickle"


def load(file: Path, matcher: object) -> bool:
    """Give the matcher its cached fit; False when there is none to read."""
    try:
        with file.open("rb") as handle:
            state = pickle.load(handle)  # noqa: S301 - written by save(), in our own cache
        values = {name: state[name] for name in STATE}
    except FileNotFoundError:
        return False
    except Exception as error:  # a damaged or foreign file: fit again, never fail
        log.warning("nearest-phrasing cache %s unreadable (%s): fitting again", file, error)
        return False
    for name, value in values.items():
        setattr(matcher, name, value)
    return True


def save(file: Path, matcher: object) -> None:
    """Write atomically: two starts at once leave one whole file."""
    state = {name: getattr(matcher, name) for name in STATE}
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, file)
    except OSError as error:  # a read-only cache costs a fit per start, no more
        log.warning("nearest-phrasing cache %s not written: %s", file, error)
