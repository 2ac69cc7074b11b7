"""How the best reading of a message is relabelled with its cues (intents/nlu/relabel.py).

The rankings below are the ones models trained without these phrasings made of them in
cross-validation: a wording nobody wrote into the knowledge yet. With the full model the
knowledge's own phrasings read right anyway, so the rules are checked on the rankings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core.assistant import Assistant
from intents.kb import KnowledgeBase, KnowledgeError
from intents.nlu.analysis import Analysis, Candidate, Cues
from knowledge import KNOWLEDGE_DIR


def reading(text: str, *ranking: tuple[str, float], **fields: object) -> Analysis:
    return Analysis(text, ranking=[Candidate(i, c) for i, c in ranking], **fields)  # type: ignore[arg-type]


EXISTS = (
    ("action.delete_group", 0.96),
    ("query.groups", 0.54),
    ("howto.delete_manual_groups", 0.3),
)


def test_asking_whether_a_group_is_still_there_gets_the_list(assistant: Assistant) -> None:
    analysis = reading("le groupe chorale 2024 existe toujours ?", *EXISTS)
    assert assistant.understander.relabel(analysis)[0] == "query.groups"


def test_asking_how_is_still_the_how_to(assistant: Assistant) -> None:
    analysis = reading(
        "comment on supprime le groupe chorale 2024 ?", *EXISTS, cues=Cues(howto=True)
    )
    assert assistant.understander.relabel(analysis)[0] == "howto.delete_manual_groups"


def test_a_list_too_far_behind_leaves_the_how_to(assistant: Assistant) -> None:
    analysis = reading(
        "le groupe chorale 2024 ?",
        ("action.delete_group", 0.96),
        ("howto.delete_manual_groups", 0.5),
        ("query.groups", 0.1),
    )
    assert assistant.understander.relabel(analysis)[0] == "howto.delete_manual_groups"


ACCOUNT = (("howto.delete_manual_accounts", 0.98), ("action.remove_manual_account", 0.46))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # A question whose only order is the verb it opens on asks for the steps…
        ("effacer un profil invité, où ?", "howto.delete_manual_accounts"),
        ("supprimer ou pré-supprimer, lequel choisir ?", "howto.delete_manual_accounts"),
        (
            "filtre sources puis manuel puis supprimer le compte, c'est bien la bonne méthode ?",
            "howto.delete_manual_accounts",
        ),
        # …an order asked in so many words, or with no question mark, is an order.
        ("tu peux supprimer le compte invité de M. Deprez ?", "action.remove_manual_account"),
        ("merci de supprimer le compte invité de M. Deprez ?", "action.remove_manual_account"),
        ("supprime le compte invité de M. Deprez", "action.remove_manual_account"),
    ],
)
def test_a_question_opening_on_a_verb_orders_nothing(
    assistant: Assistant, text: str, intent: str
) -> None:
    # The ranking is forced; whether the order is asked in so many words is read in the text.
    asked = assistant.understander.matcher.read_cues(text).asked_to_act
    analysis = reading(text, *ACCOUNT, cues=Cues(order=True, asked_to_act=asked))
    assert assistant.understander.relabel(analysis)[0] == intent


WHY = (("howto.delete_manual_accounts", 0.9), ("accounts.why_cleanup", 0.6))


@pytest.mark.parametrize(
    "text",
    [
        "pourquoi supprimer les comptes invites qui ne servent plus",
        "menage annuel dans la console, quelle utilité",
        "c'est grave si des comptes invités de l'an dernier restent ?",
    ],
)
def test_asking_why_gets_the_reasons(assistant: Assistant, text: str) -> None:
    analysis = reading(text, *WHY, concepts=frozenset({"raison"}))
    assert assistant.understander.relabel(analysis)[0] == "accounts.why_cleanup"


def test_asking_why_an_order_gets_the_reasons_and_an_order_with_a_reason_stays(
    assistant: Assistant,
) -> None:
    ranking = (("action.delete_group", 0.9), ("accounts.why_cleanup", 0.6))
    raison = frozenset({"raison"})
    why = reading("pourquoi supprimer le groupe APE 2022", *ranking, concepts=raison)
    assert assistant.understander.relabel(why)[0] == "accounts.why_cleanup"
    order = reading(
        "supprime le groupe APE 2022, il ne sert à rien et c'est un risque",
        *ranking,
        cues=Cues(order=True),
        concepts=frozenset({"raison"}),
    )
    assert assistant.understander.relabel(order)[0] == "action.delete_group"


def test_why_with_how_or_without_the_reasons_close_is_the_how_to(assistant: Assistant) -> None:
    understander = assistant.understander
    how = reading(
        "pourquoi et comment supprimer un compte invité",
        *WHY,
        cues=Cues(howto=True),
        concepts=frozenset({"raison"}),
    )
    assert understander.relabel(how)[0] == "howto.delete_manual_accounts"
    far = reading(
        "pourquoi pré-supprimer et pas supprimer ?",
        ("howto.delete_manual_accounts", 0.9),
        ("query.manual_accounts", 0.5),
        concepts=frozenset({"raison"}),
    )
    assert understander.relabel(far)[0] == "howto.delete_manual_accounts"


@pytest.mark.parametrize(
    ("text", "howto", "order"),
    [
        ("rattachement des enseignants aux classes, c'est dans quel onglet ?", True, False),
        ("inscription des élèves dans l'ENT", False, False),
        ("affectation des ressources du GAR", False, False),
        ("mettre un prof dans sa classe sur one, ça se fait où", True, True),
        ("rattache Mme Leroy au CE1", False, True),
        ("affecte M. Petit en CM2", False, True),
        # Orders of the GAR action, read as its how-to before (« autorise » was no order verb).
        ("autorise tous les enseignants à affecter les ressources du GAR", False, True),
        ("enrôle les profs de l'école dans le groupe d'affectation GAR", False, True),
        ("autorisation des enseignants pour le GAR", False, False),
    ],
)
def test_nouns_order_nothing_verbs_do_and_where_is_asked_after_the_task(
    assistant: Assistant, text: str, howto: bool, order: bool
) -> None:
    read = assistant.understander.matcher.read_cues(text)
    assert (read.howto, read.order) == (howto, order)


@pytest.mark.parametrize(
    ("text", "opens"),
    [
        ("bloque les parents", "bloque"),
        ("bon, alors détache M. Petit", "alors detache"),
        ("/sansclasse", "/sansclasse"),
        ("rattachement des enseignants, ça se passe où ?", None),
        ("comment bloquer les parents", None),
    ],
)
def test_the_lexicon_says_what_opens_an_order(
    assistant: Assistant, text: str, opens: str | None
) -> None:
    matcher = assistant.understander.matcher
    found = matcher.lexicon.imperative(matcher.normalize(text))
    assert (found.group(0) if found else None) == opens


def test_with_no_word_listed_before_an_order_only_the_opening_counts() -> None:
    from intents.nlu.normalize import Lexicon

    lexicon = Lexicon.from_data({"imperatives": {"after": [], "verbs": [r"bloqu\w*"]}})
    found = lexicon.imperative("bloque les parents")
    assert found is not None and found.group(0) == "bloque"
    assert lexicon.imperative("les parents alors bloque") is None


def test_a_broken_pattern_in_the_lexicon_is_a_knowledge_error(tmp_path: Path) -> None:
    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    lexicon = root / "lexicon.yaml"
    text = lexicon.read_text(encoding="utf-8")
    lexicon.write_text(text.replace("  verbs:\n", "  verbs:\n    - 'bloqu(\\w*'\n", 1), "utf-8")
    with pytest.raises(KnowledgeError, match="lexicon.yaml : motif invalide"):
        KnowledgeBase(root)


@pytest.mark.parametrize(
    ("text", "cues", "intent"),
    [
        # An infinitive asked: about the task, not an order, nor what the directory holds.
        ("supprimer le groupe chorale ?", {"infinitive": True}, "howto.delete_manual_groups"),
        # An imperative with « ? » is still an order, asked or not in so many words.
        ("supprime le groupe chorale ?", {}, "action.delete_group"),
        (
            "tu peux supprimer le groupe chorale ?",
            {"infinitive": True, "asked_to_act": True},
            "action.delete_group",
        ),
        # Without « ? », an infinitive is an order, as a director types it.
        ("supprimer le groupe chorale", {"infinitive": True}, "action.delete_group"),
    ],
)
def test_an_infinitive_asked_is_a_question_about_the_task(
    assistant: Assistant, text: str, cues: dict[str, bool], intent: str
) -> None:
    analysis = reading(text, *EXISTS, cues=Cues(order=True, **cues))
    assert assistant.understander.relabel(analysis)[0] == intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("supprimer le groupe chorale ?", "howto.delete_manual_groups"),
        ("supprime le groupe chorale", "action.delete_group"),
    ],
)
def test_a_follow_up_reads_its_infinitive_in_its_own_words(
    assistant: Assistant, text: str, intent: str
) -> None:
    # After a topic, the message is ranked with the topic's words before its own: the verb
    # no longer opens the text ranked, and the cues are read in the follow-up alone.
    u = assistant.understander.understand(text, topic="rentrée")
    assert u.intent == intent
