"""The trained ranker, its cache, the tuning, and the services and orders the document does
not cover."""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from intents.nlu.classifier import (
    ClassifierConfig,
    LinearClassifier,
    load_or_train,
    without_a_word,
)
from intents.nlu.matcher import OUT_OF_SCOPE
from intents.nlu.tune import _platt
from intents.nlu.tuning import Tuning, load_tuning, save_tuning, tuning_from
from intents.nlu.understanding import Understander
from tests.support import DIRECTOR, PARENT, shared_kb_and_matcher

TEXTS = [
    "comment activer mon compte educonnect",
    "activer educonnect parent",
    "j ai perdu mon mot de passe",
    "mot de passe oublie educonnect",
    "il pleut a lille",
    "menu de la cantine",
]
LABELS = ["activate", "activate", "forgot", "forgot", OUT_OF_SCOPE, OUT_OF_SCOPE]
SMALL = ClassifierConfig(regularization=10.0)


def understander() -> Understander:
    kb, matcher = shared_kb_and_matcher()
    return Understander(kb, matcher, None, None)


def test_the_classifier_learns_its_examples_and_reads_typos() -> None:
    model = LinearClassifier.train(TEXTS, LABELS, SMALL)
    probabilities = model.probabilities("j ai perdu mon mot de pase")
    assert max(probabilities, key=probabilities.__getitem__) == "forgot"
    assert sum(probabilities.values()) == pytest.approx(1.0)
    # Nothing it knows: spread over the classes, no confident guess.
    assert max(model.probabilities("xyzzy").values()) < 0.6


def test_a_cached_model_reads_exactly_like_the_trained_one(tmp_path: Path) -> None:
    trained: list[bool] = []
    first = load_or_train(TEXTS, LABELS, SMALL, tmp_path, on_train=lambda: trained.append(True))
    again = load_or_train(TEXTS, LABELS, SMALL, tmp_path, on_train=lambda: trained.append(True))
    assert trained == [True], "the second load must come from the cache"
    for text in ("activer educonnect", "mot de passe perdu", "cantine"):
        assert again.probabilities(text) == pytest.approx(first.probabilities(text), abs=1e-6)
    # Other data, another key: never the old model.
    load_or_train(TEXTS[:-1], LABELS[:-1], SMALL, tmp_path, on_train=lambda: trained.append(True))
    assert trained == [True, True]
    assert len(list(tmp_path.glob("intents-*.npz"))) == 2


def test_the_weights_kept_in_steps_read_like_the_trained_ones(tmp_path: Path) -> None:
    # Two words, no character n-gram: the scores can be worked out by hand.
    coef = np.array([[1.5, -2.0, 0.0], [0.25, 3.0, -0.125]])
    intercept = np.array([0.1, -0.2, 0.0])
    model = LinearClassifier(
        SMALL, ["a", "b", "c"], (["alpha", "beta"], []), (np.array([1.0, 2.0]), np.array([])),
        coef, intercept,
    )  # fmt: skip
    values = np.array([1.0, 2.0]) / np.sqrt(5.0)  # tf-idf of « alpha beta », unit length
    scores = intercept + values @ coef
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    for read in (model, _saved_and_loaded(model, tmp_path)):
        got = read.probabilities("alpha beta")
        assert [got[c] for c in "abc"] == pytest.approx(expected.tolist(), abs=1e-4)


def _saved_and_loaded(model: LinearClassifier, folder: Path) -> LinearClassifier:
    model.save(folder / "model.npz")
    return LinearClassifier.load(folder / "model.npz")


def test_a_damaged_cache_file_is_trained_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_or_train(TEXTS, LABELS, SMALL, tmp_path)
    (cached,) = tmp_path.glob("intents-*.npz")
    cached.write_bytes(b"not a model")
    trained: list[bool] = []
    with caplog.at_level(logging.WARNING):
        model = load_or_train(
            TEXTS, LABELS, SMALL, tmp_path, on_train=lambda: trained.append(True)
        )
    assert trained == [True]
    assert "training again" in caplog.text
    assert (
        max(model.probabilities("perdu mot de passe").items(), key=lambda x: x[1])[0] == "forgot"
    )


def test_training_is_deterministic() -> None:
    one = LinearClassifier.train(TEXTS, LABELS, SMALL).probabilities("educonnect perdu")
    two = LinearClassifier.train(TEXTS, LABELS, SMALL).probabilities("educonnect perdu")
    assert one == two


def test_a_copy_without_a_word_loses_exactly_one_word_of_three_letters_or_more() -> None:
    rng = random.Random(3)
    text = "comment je fais pour activer mon compte educonnect"
    for _ in range(50):
        shorter = without_a_word(text, rng).split()
        assert len(shorter) == len(text.split()) - 1
        (lost,) = set(text.split()) - set(shorter)
        assert len(lost) >= 3
    assert without_a_word("bloque les parents", rng) == "bloque les parents"


def test_the_copies_without_a_word_change_the_model_and_round_trip(tmp_path: Path) -> None:
    config = dataclasses.replace(SMALL, dropped_copies=1)
    model = LinearClassifier.train(TEXTS, LABELS, config)
    assert model.probabilities("educonnect perdu") != LinearClassifier.train(
        TEXTS, LABELS, SMALL
    ).probabilities("educonnect perdu")
    model.save(tmp_path / "model.npz")
    assert LinearClassifier.load(tmp_path / "model.npz").config == config
    tuning = Tuning(classifier=config)
    assert tuning_from(tuning.as_data()).classifier == config


def test_platt_scaling_recovers_a_known_curve() -> None:
    points = []
    for i in range(200):
        x = i / 200
        share = 1 / (1 + 2.718281828 ** -(8 * x - 4))
        points += [(x, True)] * round(100 * share) + [(x, False)] * round(100 * (1 - share))
    slope, intercept = _platt(points)
    assert slope == pytest.approx(8, rel=0.05)
    assert intercept == pytest.approx(-4, rel=0.05)


def test_the_tuning_file_round_trips_and_ignores_unknown_keys(tmp_path: Path) -> None:
    current = load_tuning()
    path = tmp_path / "tuning.yaml"
    save_tuning(current, path)
    assert load_tuning(path) == current
    load_tuning.cache_clear()
    odd = tuning_from({"matcher": {"floor": "0.3", "unknown": 1}, "classifier": {}})
    assert odd.matcher.floor == 0.3
    assert odd.classifier == ClassifierConfig()
    assert isinstance(Tuning().as_data()["matcher"]["floor"], float)


def test_the_tuning_in_use_was_chosen_by_cross_validation() -> None:
    figures = load_tuning().figures
    assert figures["folds"] >= 5
    assert figures["phrasings"] > 1000
    kb, matcher = shared_kb_and_matcher()
    assert matcher.config == load_tuning().matcher


# Accepted with confidence 1.0 before the classifier and the services check (issue 9).
CONFIDENT_AND_WRONG = [
    "débloque mon compte pronote stp",
    "mon compte ameli est bloqué, comment je le débloque",
    "comment créer un groupe manuel pour la chorale",
    "change le mot de passe académique de Mme Bégué",
    "comment affecter une ressource GAR à la classe de CM1",
]


@pytest.mark.parametrize("text", CONFIDENT_AND_WRONG)
def test_near_domain_requests_are_declined(text: str) -> None:
    assert understander().understand(text).intent == OUT_OF_SCOPE


@pytest.mark.parametrize("text", CONFIDENT_AND_WRONG)
def test_a_director_gets_no_action_for_another_service(talk, text: str) -> None:  # type: ignore[no-untyped-def]
    seen = talk(DIRECTOR).say(text)
    assert "Confirmer" not in seen.buttons
    assert seen.intent == OUT_OF_SCOPE


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("mon compte pronote est bloqué", OUT_OF_SCOPE),
        ("bloque les comptes pronote des parents", OUT_OF_SCOPE),
        ("bloque les comptes des parents", "action.block"),
        # Services the lexicon learnt after the first round: storage, another ENT, other apps.
        ("bloque les comptes dropbox des parents", OUT_OF_SCOPE),
        ("supprime les groupes google drive", OUT_OF_SCOPE),
        ("rattache Mme Leroy au CE1 sur e-primo", OUT_OF_SCOPE),
        ("bloque les parents sur classdojo", OUT_OF_SCOPE),
        ("je ne me souviens plus du mot de passe de mon compte la poste", OUT_OF_SCOPE),
        # Deleted things are not recovered in the document; space is, by emptying the trash.
        ("j'ai vidé la corbeille trop vite, je peux ravoir mes fichiers ?", OUT_OF_SCOPE),
        ("comment restaurer un document qui est dans la corbeille", OUT_OF_SCOPE),
        ("comment récupérer de l'espace, je supprime quoi ?", "data.free_space"),
        ("vider la corbeille pour récupérer de la place", "data.free_space"),
        ("plus de place, je supprime quoi pour récupérer du quota ?", "data.free_space"),
        # Nor which day the rentrée falls on, nor how to close one's own account.
        ("quel jour tombe la rentrée des classes cette année", OUT_OF_SCOPE),
        ("à la rentrée, quand est-ce que les comptes seront actifs ?", "accounts.rentree"),
        ("je veux fermer mon compte ENT de parent, comment faire", OUT_OF_SCOPE),
        ("j'ai oublié mon mot de passe educonnect", "educonnect.forgot_credentials"),
        # The activation answer speaks of FranceConnect through impots.gouv and ameli.
        (
            "j'ai pas de compte impots ni ameli, je peux quand meme activer mon compte ?",
            "educonnect.activate",
        ),
    ],
)
def test_a_service_named_decides_only_with_no_domain_word(text: str, intent: str) -> None:
    assert understander().understand(text).intent == intent


# The document says how to delete, detach and block, never how to create.
ORDERS_TO_CREATE = [
    "crée un groupe avec les parents de la chorale",
    "bonjour, ouvre un compte invité pour le nouvel intervenant en judo",
    "merci de fabriquer un compte pour la remplaçante",
    "je voudrais que tu crées la classe de CE2 B",
    "duplique le groupe des délégués pour cette année",
    "crée la classe de CM2 B et mets-y M. Petit",
    # Nor how to change a class's level (it comes from ONDE) or activate someone's account.
    "passe la classe de CM1 en niveau CM1-CM2",
    "change le niveau de la classe de CE1, c'est un CE1-CE2 cette année",
    "active le compte de Kévin Lagache",
]


@pytest.mark.parametrize("text", ORDERS_TO_CREATE)
def test_an_order_to_create_is_no_action(talk, text: str) -> None:  # type: ignore[no-untyped-def]
    seen = talk(DIRECTOR).say(text)
    assert seen.intent == OUT_OF_SCOPE
    assert "Confirmer" not in seen.buttons


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # Created in passing, deleted on purpose: the order is the deletion.
        ("supprime le compte créé à la main pour Mme Bacquet", "action.remove_manual_account"),
        ("supprime le groupe chorale que j'ai créé l'an dernier", "action.delete_group"),
        # A parent creating an EduConnect account is a question the document answers.
        ("je voudrais créer mon compte educonnect", "educonnect.activate"),
        # « génère la liste » asks for a list, it creates nothing.
        ("génère la liste des groupes manuels", "query.groups"),
    ],
)
def test_creating_said_in_passing_changes_nothing(text: str, intent: str) -> None:
    assert understander().understand(text).intent == intent


def test_a_parent_is_told_the_assistant_does_not_know(talk) -> None:  # type: ignore[no-untyped-def]
    seen = talk(PARENT).say("mot de passe ecole directe oublié")
    assert seen.intent == OUT_OF_SCOPE
    assert "Confirmer" not in seen.buttons
    assert "eRun" in seen.text  # passed on to a person, not answered with a guess


def test_eval_reports_calibration_and_the_baseline_side_by_side(tmp_path: Path) -> None:
    from bot.cli.evaluation import evaluate, format_report
    from bot.settings import Settings
    from bot.storage.store import Store

    lines = [
        {"text": "comment activer educonnect", "intent": "educonnect.activate"},
        {
            "text": "j'ai perdu mon mot de passe educonnect",
            "intent": "educonnect.forgot_credentials",
        },
        {"text": "quel temps fera-t-il demain à Lille", "intent": OUT_OF_SCOPE},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    store = Store.in_memory()
    store.upgrade()
    report = evaluate(
        path, Settings(model_cache_dir=tmp_path), store, None, started=0.0, baseline=True
    )
    # Timed with the heap settled as in service, and the caller's collector given back.
    assert gc.get_freeze_count() == 0
    assert report["accuracy_in_scope"] == 1.0
    assert report["oos_rejected"] == 1.0
    assert 0.0 <= report["calibration"]["ece"] <= 1.0
    assert sum(b["lines"] for b in report["calibration"]["bins"]) == 3
    assert report["baseline"]["accuracy_in_scope"] is not None
    text = format_report(report)
    assert "référence" in text and "ECE" in text and "Fiabilité" in text


def test_classify_imports_neither_telegram_nor_sql(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    probe = (
        "import io, sys\n"
        'sys.stdin = io.StringIO(\'{"text": "bloque les parents"}\\n\')\n'
        "from bot.cli.main import main\n"
        "assert main(['classify', '--jsonl']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('telegram', 'sqlalchemy', 'sqlmodel', 'sklearn'))\n"
        "print('HEAVY', heavy)\n"
    )
    env = {**os.environ, "MODEL_CACHE_DIR": str(tmp_path)}

    def run() -> str:
        return subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        ).stdout

    first = run()  # an empty cache: trained now, with scikit-learn, and cached
    assert "'sklearn" in first
    again = run()
    assert '"intent": "action.block"' in again
    assert "HEAVY []" in again


def test_knowledge_check_refuses_a_phrasing_that_copies_an_evaluation_line(
    tmp_path: Path,
) -> None:
    from intents.check import near_copies

    kb, _ = shared_kb_and_matcher()
    phrasing = kb.entries["educonnect.activate"].examples[0]
    held = tmp_path / "held.jsonl"
    lines = [
        # the same phrasing, one letter changed, under its intent: a near copy
        {
            "text": phrasing[:-1] + ("x" if phrasing[-1] != "x" else "y"),
            "intent": "educonnect.activate",
        },
        # the same text under another intent is no copy of this one's phrasings
        {"text": phrasing, "intent": "educonnect.switch"},
        # three words are too few to count
        {"text": "activer mon compte", "intent": "educonnect.activate"},
    ]
    held.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    found = near_copies(kb, held)
    assert len(phrasing.split()) >= 4
    assert len(found) == 1 and "held.jsonl:1" in found[0]
    cleaned = copy.copy(kb)
    cleaned.entries = {
        **kb.entries,
        "educonnect.activate": copy.copy(kb.entries["educonnect.activate"]),
    }
    cleaned.entries["educonnect.activate"].examples = kb.entries["educonnect.activate"].examples[
        1:
    ]
    assert near_copies(cleaned, held) == []


def test_a_cached_fit_reads_exactly_like_a_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from intents.nlu.matcher import Matcher

    kb, _ = shared_kb_and_matcher()
    fresh = Matcher(kb, cache_dir=tmp_path)
    (cached_file,) = tmp_path.glob("nearest-*.pickle")
    cached = Matcher(kb, cache_dir=tmp_path)
    for text in ("bloque les parents", "jai perdu mon mdp educonect", "menu cantine"):
        assert cached.analyse(text) == fresh.analyse(text)
    cached_file.write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING):
        again = Matcher(kb, cache_dir=tmp_path)
    assert "fitting again" in caplog.text
    assert again.analyse("bloque les parents") == fresh.analyse("bloque les parents")


def test_the_roster_read_at_start_spares_the_first_order_any_database_read() -> None:
    from bot.storage.schoolfile import import_school
    from bot.storage.store import Store
    from tests.support import DEMO, DEMO_SCHOOL

    store = Store.in_memory()
    import_school(store, DEMO_SCHOOL)
    reads: list[str] = []

    class Counting:
        """The directory, each read counted."""

        def __getattr__(self, name: str) -> object:
            reads.append(name)
            return getattr(store.directory, name)

    directory = Counting()
    u = understander()
    u.roster.forget()
    u.roster.warm(directory, DEMO)  # type: ignore[arg-type]
    assert reads
    reads.clear()
    understood = u.understand("rattache Claire Martin au CM1", directory, DEMO)  # type: ignore[arg-type]
    assert understood.intent == "action.attach_teacher"
    assert understood.entities
    understood = u.understand("détache Hugo Lambert", directory, DEMO)  # type: ignore[arg-type]
    assert understood.entities
    assert reads == []


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # Written in the knowledge; the classifier also learnt « mdp caf perdu » off topic.
        ("mdp perdu", "educonnect.forgot_credentials"),
        ("mot de passe perdu", "educonnect.forgot_credentials"),
        # Said word for word too, but off topic: still declined.
        ("mdp caf perdu", OUT_OF_SCOPE),
    ],
)
def test_a_phrasing_of_the_knowledge_said_word_for_word_is_its_intents(
    text: str, intent: str
) -> None:
    assert understander().understand(text).intent == intent


def test_a_parent_who_lost_the_password_is_answered(talk) -> None:  # type: ignore[no-untyped-def]
    seen = talk(PARENT).say("mdp perdu")
    assert seen.intent == "educonnect.forgot_credentials"
    assert "je ne sais pas" not in seen.text
