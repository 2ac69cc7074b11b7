"""Phrasings taught in chat by an eRun (« C'est la FAQ… »): read from the next message on,
measured on tests/data/teaching.yaml, and harmless to every other message."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from bot.app import settled_heap
from intents.nlu.matcher import OUT_OF_SCOPE
from intents.nlu.retraining import Retraining
from intents.nlu.taught import (
    BASE_RATE,
    CONFIDENCE_CURVE,
    SIMILARITY_FLOOR,
    confidence,
    similarity_curve,
)
from intents.nlu.understanding import Understander
from tests.support import shared_kb_and_matcher

TEACHING = Path(__file__).parent / "data" / "teaching.yaml"
TARGET = 0.8
# Teaching may turn at most this share of the knowledge's own messages (out-of-scope ones,
# in-scope ones) to another answer: one point, less than the standard error of the
# cross-validated out-of-scope rejection (0.913 over 529 examples: about 1.2 points), i.e.
# a change no measurement of the understanding could tell from noise.
TOLERANCE = 0.01


def understander() -> Understander:
    kb, matcher = shared_kb_and_matcher()
    return Understander(kb, matcher, None, None)


def teaching_set() -> list[dict[str, str]]:
    items = yaml.safe_load(TEACHING.read_text(encoding="utf-8"))
    assert isinstance(items, list) and len(items) == 50
    return items


@pytest.fixture(scope="module")
def taught() -> Understander:
    """An understanding taught each question of the teaching set once, as in chat, before
    its model is trained again: what the next message meets."""
    u = understander()
    for item in teaching_set():
        u.learn(item["question"], item["intent"])
    return u


@pytest.fixture(scope="module")
def retrained() -> Understander:
    """The same, once the model is trained again with the taught questions among its
    examples (in a child process, as in production: the cache folder is set)."""
    u = understander()
    retraining = Retraining(u, Path(os.environ["MODEL_CACHE_DIR"]))
    u.on_taught = retraining.request
    for item in teaching_set():
        u.learn(item["question"], item["intent"])
    assert retraining.wait(timeout=600)
    assert u.matcher is not shared_kb_and_matcher()[1]
    return u


def test_the_threshold_and_the_confidences_follow_from_the_knowledge() -> None:
    _, matcher = shared_kb_and_matcher()
    floor, base_rate, curve = similarity_curve(matcher)
    assert floor == pytest.approx(SIMILARITY_FLOOR, abs=0.011)
    assert base_rate == pytest.approx(BASE_RATE, abs=0.001)
    share = dict(curve)
    for similarity, written in CONFIDENCE_CURVE[:-1]:
        assert share[similarity] == pytest.approx(written, abs=0.02), similarity
    assert confidence(SIMILARITY_FLOOR) >= 0.5 > confidence(SIMILARITY_FLOOR - 0.02)


def test_most_of_the_teaching_set_needs_teaching() -> None:
    # Every question was declined when the set was written; phrasings added to knowledge/
    # since then answer some of them on their own (after the sixth round 25 of 50, 20 of them
    # rightly). A question declined or misread both need teaching: most of the set must
    # still need it for the target below to measure teaching rather than the knowledge.
    u = understander()
    unknown = [i for i in teaching_set() if u.understand(i["question"]).intent != i["intent"]]
    assert len(unknown) > 0.5 * len(teaching_set())


def test_a_taught_question_is_understood_on_the_next_message(taught: Understander) -> None:
    for item in teaching_set():
        u = taught.understand(item["question"])
        assert (u.intent, u.ambiguous) == (item["intent"], False), item["question"]
        assert u.confidence >= 0.95


def paraphrases_understood(taught: Understander) -> tuple[int, int, int]:
    """Paraphrases understood as their taught intent, before and after teaching, and how
    many of those were asked « Vouliez-vous dire… » first."""
    items = teaching_set()
    plain = understander()
    before = sum(plain.understand(i["paraphrase"]).intent == i["intent"] for i in items)
    read = [taught.understand(i["paraphrase"]) for i in items]
    right = sum(u.intent == i["intent"] for u, i in zip(read, items, strict=True))
    asked = sum(u.ambiguous for u, i in zip(read, items, strict=True) if u.intent == i["intent"])
    print(
        f"\nparaphrases understood as the taught intent: {right}/{len(items)} = "
        f"{right / len(items):.2f} (before teaching: {before}/{len(items)}; "
        f"of the {right}, {asked} asked « Vouliez-vous dire… » first)"
    )
    return before, right, asked


def test_paraphrases_of_taught_questions_reach_the_target(retrained: Understander) -> None:
    # Measured 40/50 = 0.80 once retrained (39/50 with the taught phrasings read beside the
    # model alone, 26/50 before teaching).
    _, right, asked = paraphrases_understood(retrained)
    assert right / len(teaching_set()) >= TARGET
    assert asked <= 3


def test_a_taught_question_is_still_understood_once_retrained(retrained: Understander) -> None:
    for item in teaching_set():
        u = retrained.understand(item["question"])
        assert (u.intent, u.ambiguous) == (item["intent"], False), item["question"]


def test_teaching_helps_the_paraphrases(taught: Understander) -> None:
    before, right, asked = paraphrases_understood(taught)
    assert right >= before + 10
    assert asked <= 3


def test_retraining_leaves_the_other_messages_alone(retrained: Understander) -> None:
    kb, _ = shared_kb_and_matcher()
    plain = understander()
    turned = [
        text
        for text in kb.out_of_scope_examples
        if plain.understand(text).intent == OUT_OF_SCOPE
        and retrained.understand(text).intent != OUT_OF_SCOPE
    ]
    print(f"\nout of scope now answered once retrained: {len(turned)}: {turned}")
    assert len(turned) / len(kb.out_of_scope_examples) <= TOLERANCE
    examples = [(e.id, x) for e in kb.entries.values() for x in e.examples]
    lost = [
        f"{intent} : {text}"
        for intent, text in examples
        if plain.understand(text).intent == intent and retrained.understand(text).intent != intent
    ]
    print(f"in-scope phrasings answered otherwise once retrained: {len(lost)}/{len(examples)}")
    assert len(lost) / len(examples) <= TOLERANCE, lost


def test_teaching_leaves_the_other_messages_alone(taught: Understander) -> None:
    kb, matcher = shared_kb_and_matcher()
    plain = understander()
    turned: list[str] = []
    kept = 0
    for text in kb.out_of_scope_examples:
        analysis = matcher.analyse(text)
        before = plain.decide(analysis)
        after = taught.taught.overrule(analysis, before)
        if before[0] == OUT_OF_SCOPE and after[0] != OUT_OF_SCOPE:
            turned.append(f"{text} → {after[0]}")
        kept += after[0] == OUT_OF_SCOPE
    rejected_before = sum(
        plain.decide(matcher.analyse(t))[0] == OUT_OF_SCOPE for t in kb.out_of_scope_examples
    )
    total = len(kb.out_of_scope_examples)
    print(f"\nout of scope still rejected: {kept}/{total} (before: {rejected_before}/{total})")
    print("\n".join(f"  now answered: {line}" for line in turned))
    assert kept / total >= rejected_before / total - TOLERANCE
    lost: list[str] = []
    count = 0
    for entry in kb.entries.values():
        for text in entry.examples:
            analysis = matcher.analyse(text)
            before = plain.decide(analysis)
            after = taught.taught.overrule(analysis, before)
            count += 1
            if before[0] != after[0]:
                lost.append(f"{entry.id} : {text} → {after[0]}")
    print(f"in-scope phrasings answered otherwise: {len(lost)}/{count}")
    assert len(lost) / count <= TOLERANCE, lost


def test_nothing_taught_changes_nothing() -> None:
    kb, matcher = shared_kb_and_matcher()
    plain, emptied = understander(), understander()
    emptied.learn("le grenier du cartable virtuel déborde", "data.free_space")
    emptied.teach([])
    for text in [*kb.out_of_scope_examples[::7], *kb.entries["data.free_space"].examples]:
        analysis = matcher.analyse(text)
        assert emptied.taught.overrule(analysis, plain.decide(analysis)) == plain.decide(analysis)
    assert emptied.understand("le grenier du cartable virtuel déborde").intent == OUT_OF_SCOPE


def test_teach_replaces_and_learn_adds() -> None:
    u = understander()
    u.teach([("le grenier du cartable virtuel déborde", "data.free_space")])
    u.learn("le robinet à pixels est fermé", "educonnect.forgot_credentials")
    assert u.understand("le grenier du cartable virtuel deborde").intent == "data.free_space"
    assert u.understand("le robinet a pixels est ferme").intent == (
        "educonnect.forgot_credentials"
    )
    # The same phrasing taught again keeps its last intent only.
    u.learn("le robinet à pixels est fermé !", "educonnect.activate")
    assert len(u.taught) == 2
    assert u.understand("le robinet à pixels est fermé").intent == "educonnect.activate"
    u.teach([("le robinet à pixels est fermé", "dialogue.human")])
    assert u.taught.pairs == [("le robinet à pixels est fermé", "dialogue.human")]
    assert u.understand("le grenier du cartable virtuel déborde").intent == OUT_OF_SCOPE
    # An unrelated message is read as before.
    assert u.understand("menu cantine semaine prochaine").intent == OUT_OF_SCOPE
    assert u.understand("comment activer mon compte educonnect").intent == "educonnect.activate"


@pytest.mark.parametrize(
    ("intent", "says"),
    [
        ("action.block", "jamais une action"),
        ("action.remove_manual_account", "jamais une action"),
        ("query.groups", "jamais une action ni une requête"),
        (OUT_OF_SCOPE, "ne s'apprend pas"),
        ("faq.inconnue", "intention inconnue"),
    ],
)
def test_only_answers_can_be_taught(intent: str, says: str) -> None:
    u = understander()
    with pytest.raises(ValueError, match=says):
        u.learn("vire-moi tous ces vieux comptes", intent)
    assert len(u.taught) == 0
    refused = u.teach([("le grenier déborde", "data.free_space"), ("vire-les tous", intent)])
    assert len(refused) == 1 and says in refused[0]
    assert u.taught.pairs == [("le grenier déborde", "data.free_space")]


def test_a_phrasing_with_no_word_is_refused() -> None:
    with pytest.raises(ValueError, match="aucun mot"):
        understander().learn(" ?!… ", "data.free_space")


def test_phrasings_learned_from_many_threads_are_all_kept() -> None:
    u = understander()
    texts = [f"question numero {n} sur le bidule {n * 7919}" for n in range(80)]

    def learn(part: list[str]) -> None:
        for text in part:
            u.learn(text, "dialogue.help")
            u.understand("le grenier du cartable est plein")

    threads = [threading.Thread(target=learn, args=(texts[k::8],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t for t, _ in u.taught.pairs) == sorted(texts)


def test_the_overhead_per_message_stays_small() -> None:
    kb, _ = shared_kb_and_matcher()
    teachable = [e for e in kb.entries.values() if e.kind in ("faq", "dialogue")]
    many = [(x, e.id) for e in teachable for x in e.examples][:1000]
    messages = [*kb.out_of_scope_examples[:30], *kb.entries["data.free_space"].examples[:30]]
    timings: dict[int, float] = {}
    learning = teaching = 0.0
    # The heap settled as the front ends settle it once started (bot.app.settle_heap): else a
    # full collection of what the whole suite left behind (0.8 s seen in CI) lands in
    # whichever timed call comes next.
    with settled_heap():
        for size in (0, 50, 1000):
            u = understander()
            start = time.perf_counter()
            u.teach(many[:size])
            teaching = time.perf_counter() - start
            for text in messages:  # warm the caches (typos, stems) first
                u.understand(text)
            start = time.perf_counter()
            for _ in range(3):
                for text in messages:
                    u.understand(text)
            timings[size] = (time.perf_counter() - start) / (3 * len(messages))
            start = time.perf_counter()
            u.learn("le grenier du cartable virtuel déborde", "data.free_space")
            learning = time.perf_counter() - start
    print(
        "\nper message: "
        + ", ".join(f"{n} taught {t * 1000:.2f} ms" for n, t in timings.items())
        + f"; teaching 1000 at once {teaching * 1000:.0f} ms, learning one more beside them "
        f"{learning * 1000:.1f} ms"
    )
    assert timings[1000] - timings[0] < 0.02
    assert learning < 0.5 and teaching < 5.0
