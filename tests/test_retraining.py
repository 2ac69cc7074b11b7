"""The model trained again with the phrasings taught in chat: one training at a time, the
last teaching wins, a failure keeps the model that answers, and the assistant wires it in.

What retraining does to understanding is measured in tests/test_teaching.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from bot.core.assistant import Assistant
from bot.settings import Settings
from bot.storage.store import Store
from intents.nlu.matcher import Matcher
from intents.nlu.retraining import Pairs, Request, Retraining
from intents.nlu.understanding import Understander
from tests.support import Clock, Conversation, shared_kb_and_matcher

FREE_SPACE = "data.free_space"


class Recorded(Retraining):
    """Retraining whose training is a stand-in: what is tested here is the scheduling."""

    def __init__(self, learner: Understander, *, fail: bool = False) -> None:
        super().__init__(learner, None)
        self.trained: list[Pairs] = []
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()

    def train(self, pairs: Pairs) -> Matcher:
        self.gate.wait(10)
        self.trained.append(pairs)
        if self.fail:
            raise RuntimeError("boom")
        return _StandIn(self._base)  # type: ignore[return-value]


class _StandIn:
    """A matcher in all but name: the base one, seen through another object."""

    def __init__(self, base: Matcher) -> None:
        self._base = base

    def __getattr__(self, name: str) -> object:
        return getattr(self._base, name)


def learner() -> Understander:
    kb, matcher = shared_kb_and_matcher()
    return Understander(kb, matcher, None, None)


def wired(retraining: Retraining) -> Understander:
    u = retraining.learner
    assert isinstance(u, Understander)
    u.on_taught = retraining.request
    return u


def test_what_is_taught_during_a_training_is_trained_next_in_one_go() -> None:
    retraining = Recorded(learner())
    u = wired(retraining)
    retraining.gate.clear()  # the first training waits
    u.learn("le grenier du cartable virtuel déborde", FREE_SPACE)
    u.learn("le robinet à pixels est fermé", "educonnect.forgot_credentials")
    u.learn("la boîte à dessins est pleine", FREE_SPACE)
    retraining.gate.set()
    assert retraining.wait(30)
    assert len(retraining.trained) <= 2
    assert retraining.trained[-1] == u.taught_pairs and len(u.taught_pairs) == 3
    assert isinstance(u.matcher, _StandIn)
    # Nothing new: nothing trained again.
    retraining.request()
    assert retraining.wait(5) and retraining.trained[-1] == u.taught_pairs


def test_the_taught_phrasings_are_read_beside_the_adopted_model() -> None:
    retraining = Recorded(learner())
    u = wired(retraining)
    u.learn("le grenier du cartable virtuel déborde", FREE_SPACE)
    assert retraining.wait(30) and isinstance(u.matcher, _StandIn)
    assert u.taught.matcher is u.matcher
    assert u.understand("le grenier du cartable virtuel deborde").intent == FREE_SPACE


def test_teaching_nothing_takes_the_model_of_the_knowledge_back() -> None:
    retraining = Recorded(learner())
    u = wired(retraining)
    base = u.matcher
    u.learn("le grenier du cartable virtuel déborde", FREE_SPACE)
    assert retraining.wait(30) and u.matcher is not base
    u.teach([])  # every phrasing exported into knowledge/
    assert retraining.wait(30) and u.matcher is base
    assert len(retraining.trained) == 1


def test_a_failed_training_keeps_the_model_and_waits_for_the_next_teaching(
    caplog: pytest.LogCaptureFixture,
) -> None:
    retraining = Recorded(learner(), fail=True)
    u = wired(retraining)
    base = u.matcher
    u.learn("le grenier du cartable virtuel déborde", FREE_SPACE)
    assert retraining.wait(30) and u.matcher is base
    assert "retraining with the taught phrasings failed" in caplog.text
    assert u.understand("le grenier du cartable virtuel deborde").intent == FREE_SPACE
    retraining.request()
    assert retraining.wait(5) and len(retraining.trained) == 1  # not tried again
    u.learn("le robinet à pixels est fermé", "educonnect.forgot_credentials")
    assert retraining.wait(30) and len(retraining.trained) == 2


def test_a_child_that_fails_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    u = learner()
    errors: list[BaseException] = []
    retraining = Retraining(u, tmp_path, on_error=errors.append)
    u.kb.root, root = tmp_path / "nowhere", u.kb.root  # the child cannot read the knowledge
    try:
        u.on_taught = retraining.request
        u.learn("le grenier du cartable virtuel déborde", FREE_SPACE)
        assert retraining.wait(120)
    finally:
        u.kb.root = root
    assert len(errors) == 1 and u.matcher is shared_kb_and_matcher()[1]
    assert not list(tmp_path.glob("*.npz"))


def test_the_request_to_the_child_reads_back_as_written() -> None:
    request = Request("/k", "/c", (("plus un méga", FREE_SPACE), ("é « à »", "dialogue.help")))
    assert Request.from_json(request.to_json()) == request


def test_a_phrasing_taught_by_another_instance_is_trained_into_this_one(
    store: Store, clock: Clock
) -> None:
    kb, matcher = shared_kb_and_matcher()
    cache = Path(os.environ["MODEL_CACHE_DIR"])
    settings = Settings(retrain_taught=True, model_cache_dir=cache)
    assistant = Assistant(settings, store, kb, matcher, clock=clock)
    taught = "le grenier du cartable virtuel déborde de partout"
    store.tickets.teach([taught], FREE_SPACE, "erun.lille1", clock())
    assistant.housekeeping(force=True)
    assert assistant.retraining is not None and assistant.retraining.wait(600)
    adopted = assistant.understander.matcher
    assert adopted is not matcher
    assert assistant.matcher.normalize(taught) in adopted.example_norms
    seen = Conversation(assistant, None).say("le grenier du cartable virtuel deborde")
    assert seen.intent == FREE_SPACE
