"""The phrasings taught in chat become training examples: off the message path, a matcher is
trained on the knowledge plus those phrasings and handed to the understanding when ready.

Until it is, the taught phrasings are read beside the model (intents/nlu/taught.py): a
message close to one is understood at once. The retrained model is what carries a taught
phrasing to its paraphrases (« plus un seul méga de dispo » teaches « méga » to the free
space answer), and its out-of-scope region is the model's own, not a hand-set floor.

With a cache folder, the training runs in a child process (`python -m
intents.nlu.retraining`) that writes the model files this process then reads: the CPU-bound
fitting never holds this process's interpreter lock while it answers messages. A second
instance taught the same phrasings reads the same files.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from intents.kb import KnowledgeBase
from intents.nlu.matcher import Matcher

log = logging.getLogger(__name__)

Pairs = tuple[tuple[str, str], ...]
# A child training on this machine takes about 15 s; past this, something is wrong.
CHILD_TIMEOUT = 300.0


class Learner(Protocol):
    """What retraining needs of the understanding (intents/nlu/taught.Teachable)."""

    kb: KnowledgeBase
    matcher: Matcher

    @property
    def taught_pairs(self) -> Pairs: ...

    def adopt(self, matcher: Matcher) -> None: ...


@dataclass(frozen=True)
class Request:
    """What the child process is asked to train (sent as JSON on its standard input)."""

    knowledge: str
    cache_dir: str
    pairs: Pairs

    def to_json(self) -> str:
        return json.dumps(
            {"knowledge": self.knowledge, "cache_dir": self.cache_dir, "pairs": self.pairs}
        )

    @classmethod
    def from_json(cls, text: str) -> Request:
        data = json.loads(text)
        pairs = tuple((str(t), str(i)) for t, i in data["pairs"])
        return cls(str(data["knowledge"]), str(data["cache_dir"]), pairs)


class Retraining:
    """Keeps the understanding's model trained on what was taught: the last request wins, one
    training at a time, in a background thread."""

    def __init__(
        self,
        learner: Learner,
        cache_dir: Path | None,
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.learner = learner
        self.cache_dir = cache_dir
        self.on_error = on_error
        # The model without any taught phrasing: taken back when they are all exported.
        self._base = learner.matcher
        self._trained: Pairs = ()
        # Pairs whose training failed: not tried again until something else is taught.
        self._failed: Pairs | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def request(self) -> None:
        """Train on the phrasings taught now, unless done already; returns at once."""
        with self._lock:
            if self._worker is not None:
                return  # the running worker looks again once it is done
            if self.learner.taught_pairs in (self._trained, self._failed):
                return
            self._idle.clear()
            self._worker = threading.Thread(target=self._run, name="retraining", daemon=True)
            self._worker.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is left to train (tests, benchmarks); False on timeout."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                # Read under the lock that request() takes: whatever is taught after this
                # finds either this worker gone (and starts one) or reads here next round.
                pairs = self.learner.taught_pairs
                if pairs in (self._trained, self._failed):
                    self._worker = None
                    self._idle.set()
                    return
            try:
                matcher = self._base if not pairs else self.train(pairs)
                self.learner.adopt(matcher)
                self._trained = pairs
            except Exception as error:  # the model as it was still answers
                log.exception("retraining with the taught phrasings failed")
                self._failed = pairs
                if self.on_error is not None:
                    self.on_error(error)

    def train(self, pairs: Pairs) -> Matcher:
        """A matcher like the base one, trained with `pairs` as phrasings of their intent."""
        base = self._base
        kb = self.learner.kb
        if self.cache_dir is not None:  # trained in a child, read back from the cache
            request = Request(str(kb.root), str(self.cache_dir), pairs)
            subprocess.run(
                [sys.executable, "-m", "intents.nlu.retraining"],
                input=request.to_json(),
                text=True,
                check=True,
                capture_output=True,
                timeout=CHILD_TIMEOUT,
            )
        classifier = base.classifier.config if base.classifier is not None else None
        return Matcher(
            kb, base.config, classifier_config=classifier, cache_dir=self.cache_dir, taught=pairs
        )


def main() -> int:
    """The child: train and cache the model asked for on standard input."""
    request = Request.from_json(sys.stdin.read())
    kb = KnowledgeBase(Path(request.knowledge))
    Matcher(kb, cache_dir=Path(request.cache_dir), taught=request.pairs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
