"""Every FAQ topic answered with the facts of the académie's document, in French."""

from __future__ import annotations

from datetime import date

import pytest

from intents.kb import school_year_context, school_year_start
from intents.nlu.normalize import fold

# intent -> (a question written here, found in no knowledge file) and the facts its answer holds.
FACTS: dict[str, tuple[str, list[str]]] = {
    "data.productions_kept": (
        "est-ce que mes créations sur l'ENT seront encore là l'an prochain",
        ["conserv", "aucun archivage", "suppression"],
    ),
    "data.free_space": (
        "comment faire de la place dans mon espace de stockage ENT",
        ["messagerie", "corbeille", "espace documentaire", "documents ajoutes dans les applis"],
    ),
    "shares.year_change": (
        "mes partages vont-ils disparaitre au changement d'annee",
        ["groupe de scolarite", "purge", "nominatif", "favori de partage", "groupe manuel"],
    ),
    "shares.keep_for_next_year": (
        "je veux que mes eleves gardent leur cahier memo partagé l'an prochain",
        ["a leur nom", "droits de gestion"],
    ),
    "accounts.summer": (
        "que se passe-t-il pour les comptes ENT durant l'ete",
        ["onde", "enseignants", "aout", "annee precedente"],
    ),
    "accounts.rentree": (
        "que se passe t il pour les comptes juste apres la rentree des classes",
        ["bascule", "onde", "eleves", "parents", "classe"],
    ),
    "accounts.missing_pupils": (
        "pourquoi une partie de mes eleves n'est pas encore dans l'ENT",
        ["tps", "cp", "ce2", "ine", "progressivement", "onde"],
    ),
    "accounts.identifiers": (
        "avec quels identifiants chacun se connecte cette annee",
        ["academiques", "identifiants ent", "educonnect"],
    ),
    "accounts.leaving_pupils": (
        "que deviennent les comptes des eleves qui partent au college",
        ["pre-suppression", "cm2", "college", "educonnect"],
    ),
    "accounts.foster_families": (
        "une famille d'accueil peut elle se connecter a l'ENT",
        ["compte manuel", "personnel collectivite et invite", "pas d'echeance"],
    ),
    "accounts.why_cleanup": (
        "pourquoi faut-il faire le menage dans les groupes manuels chaque annee",
        ["partage", "groupes", "perdure"],
    ),
    "educonnect.switch": (
        "qui doit passer sur educonnect",
        ["second degre", "lsu", "trois methodes"],
    ),
    "educonnect.activate": (
        "comment activer mon compte educonnect",
        [
            "franceconnect",
            "sms",
            "onde",
            "eduline",
            "https://educonnect.education.gouv.fr/",
            "https://dgxy.link/educonnect1D",
            "responsable",
        ],
    ),
    "educonnect.notify_parents": (
        "l'ecole est-elle obligee de dire aux parents de creer un compte educonnect",
        ["passage a educonnect", "pas obligatoirement", "lsu"],
    ),
    "educonnect.guardian_data": (
        "d'ou viennent les donnees des parents dans educonnect",
        ["onde", "telephone", "j+1"],
    ),
    "educonnect.siblings_1d_2d": (
        "j'ai un enfant au college et un en primaire, ça marche comment pour educonnect",
        ["aucune action", "meme compte", "date de naissance", "procedure manuelle"],
    ),
    "educonnect.help_resources": (
        "ou trouver de l'aide sur educonnect",
        [
            "https://educonnect.education.gouv.fr/educt-aide/aide/",
            "academie-lille.enthdf.fr",
            "eduline.ac-lille.fr",
        ],
    ),
    "educonnect.forgot_credentials": (
        "j'ai oublié mon mot de passe educonnect",
        [
            "identifiant oublie",
            "mot de passe oublie",
            "https://moncompte.educonnect.education.gouv.fr/educt-self-service/oubliMdp/"
            "recupererMotDePasseResponsable",
        ],
    ),
    "educonnect.director_reset": (
        "en tant que directeur puis-je réinitialiser le compte educonnect d'un parent",
        ["eduline", "origine", "franceconnect", "autonom"],
    ),
    "mobile.one_pocket": (
        "l'application one pocket m'a deconnecte",
        ["one pocket", "deconnect", "educonnect", "changer d'eleve"],
    ),
    "howto.rentree_blog": (
        "comment informer les nouvelles familles avant la rentree avec un blog",
        ["blog", "creer un blog", "adresse", "sans photos"],
    ),
    "howto.detach_teacher": (
        "comment on detache un enseignant parti de l'ecole",
        ["console d'administration", "utilisateurs", "croix rouge", "pes"],
    ),
    "howto.delete_manual_groups": (
        "comment supprimer les vieux groupes manuels",
        ["console d'administration", "groupes", "supprimer", "resp", "annee scolaire"],
    ),
    "howto.delete_share_favorites": (
        "comment effacer mes anciens favoris de partage",
        ["annuaire", "favoris de partage", "corbeille"],
    ),
    "howto.delete_manual_accounts": (
        "comment supprimer les anciens comptes manuels dans la console",
        ["sources", "manuel", "supprimer le compte", "pre-supprimer"],
    ),
    "howto.block_accounts": (
        "comment bloquer les comptes eleves et parents avant la rentree",
        ["gerer mon etablissement", "blocage en lot", "debloquer"],
    ),
    "howto.attach_teacher_class": (
        "comment associer un enseignant a sa classe dans la console",
        ["utilisateurs", "ajouter une classe", "au moins un eleve"],
    ),
    "howto.gar_managers": (
        "comment rendre tous les enseignants responsables d'affectation GAR",
        ["resp-affect-gar", "gerer les utilisateurs du groupe", "tout selectionner", "lendemain"],
    ),
    "dialogue.human": (
        "je voudrais parler a une vraie personne",
        ["erun"],
    ),
}


@pytest.mark.parametrize("intent", sorted(FACTS))
def test_each_topic_is_answered_with_its_facts(say, intent: str) -> None:
    question, facts = FACTS[intent]
    seen = say(question)
    assert seen.intent == intent, seen.text[:200]
    answer = fold(seen.text).replace("'", " ")
    for fact in facts:
        assert fold(fact).replace("'", " ") in answer or fact in seen.outcome.replies[0].text, (
            f"{intent}: « {fact} » missing"
        )


def test_every_faq_intent_of_the_contract_has_a_fact_row(assistant) -> None:
    faq = {i for i, info in assistant.kb.intents.items() if info.kind == "faq"}
    assert faq - set(FACTS) == set()


def test_answers_offer_related_topics_as_buttons(say) -> None:
    seen = say("comment activer mon compte educonnect")
    assert len(seen.buttons) >= 2
    follow = say("j'ai oublie mon mdp educonnect")
    assert "mot de passe" in fold(follow.text)


def test_school_year_is_computed_from_today() -> None:
    assert school_year_context(date(2026, 11, 28))["annee_scolaire"] == "2026-2027"
    years = school_year_context(date(2027, 8, 20))
    assert years["rentree_annee_scolaire"] == "2027-2028"
    assert years["annee_sortante"] == "2026-2027"
    # The school year turns on 1 September, not on 1 January.
    assert school_year_start(date(2027, 8, 31)) == 2026
    assert school_year_start(date(2027, 9, 1)) == 2027


def test_summer_answer_speaks_of_the_coming_school_year(say) -> None:
    seen = say("que se passe-t-il pour les comptes ENT durant l'ete")
    assert "2027-2028" in seen.text and "2023-2024" not in seen.text


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("cmt jactive educonect", "educonnect.activate"),
        ("COMMENT ACTIVER EDUCONNECT ???", "educonnect.activate"),
        ("j'ai perdu mon mot de pass educonnect", "educonnect.forgot_credentials"),
        ("jai oublier mon identifiant edu connect", "educonnect.forgot_credentials"),
        ("mon appli one poket ma deco", "mobile.one_pocket"),
        ("france conect ca marche pr educonnect ?", "educonnect.activate"),
        ("slt", "dialogue.greet"),
        ("merci bcp", "dialogue.thanks"),
        ("tu sers a quoi ?", "dialogue.help"),
        ("ma classe de cp est vide sur l'ENT pk", "accounts.missing_pupils"),
        ("mon fils rentre en 6eme, il garde ses docs ?", "accounts.leaving_pupils"),
        ("ou sont passes mes partages a la classe", "shares.year_change"),
    ],
)
def test_sms_typos_and_missing_accents(say, text: str, intent: str) -> None:
    assert say(text).intent == intent


@pytest.mark.parametrize(
    "text",
    [
        "quel est le menu de la cantine lundi",
        "il fait beau à Lille ?",
        "donne moi les devoirs de maths",
        "c'est quand les vacances de février",
        "comment on installe pronote",
        "what time is it",
    ],
)
def test_out_of_scope_is_rejected_with_nearest_topics_and_erun(say, text: str) -> None:
    seen = say(text)
    assert seen.intent == "out_of_scope"
    assert "erun" in fold(seen.text)
    assert len(seen.buttons) == 3


def test_commands_for_actions_are_not_how_to_questions(talk) -> None:
    director = talk("claire.martin")
    assert director.say("comment bloquer les comptes des parents ?").intent == (
        "howto.block_accounts"
    )
    assert director.say("bloque les comptes des parents").intent == "action.block"
    assert director.say("je fais comment pour détacher un prof parti ?").intent == (
        "howto.detach_teacher"
    )
    assert director.say("détache Hugo Lambert").intent == "action.detach_teacher"


def test_two_questions_get_both_answers_in_order(say) -> None:
    seen = say(
        "Comment activer mon compte EduConnect ? Et aussi l'application ONE Pocket m'a "
        "déconnecté, c'est normal ?"
    )
    assert len(seen.texts) == 2
    assert "EduConnect" in seen.texts[0].splitlines()[0]
    assert "Pocket" in seen.texts[1]


def test_a_short_second_question_is_read_after_the_first(say) -> None:
    seen = say("est-ce que mes documents sont conservés ? et les partages ?")
    assert len(seen.texts) == 2
    assert "partages" not in seen.texts[0].splitlines()[0].lower()
    assert "partages" in seen.texts[1].splitlines()[0].lower()


def test_close_call_asks_did_you_mean_with_buttons(assistant) -> None:
    from intents.nlu.matcher import Analysis, Candidate

    analysis = Analysis(
        "x",
        ranking=[
            Candidate("educonnect.activate", 0.71),
            Candidate("educonnect.switch", 0.69),
            Candidate("accounts.identifiers", 0.6),
        ],
    )
    from intents.nlu.understanding import Understanding

    u = Understanding("educonnect.activate", 0.71, {}, [], analysis)
    assistant.understander.check_margin(u, analysis)
    assert u.ambiguous and u.choices[:2] == ["educonnect.activate", "educonnect.switch"]


def test_did_you_mean_reply_offers_the_choices(talk, assistant, monkeypatch) -> None:
    from intents.nlu.understanding import Understanding

    def close_call(*_args: object, **_kwargs: object) -> Understanding:
        return Understanding(
            "educonnect.activate",
            0.7,
            {},
            [],
            None,
            ambiguous=True,
            choices=["educonnect.activate", "educonnect.switch"],
        )

    monkeypatch.setattr(assistant.understander, "understand", close_call)
    public = talk(None)
    seen = public.say("educonnect ?")
    assert "Vouliez-vous dire" in seen.text
    # The two suggestions, then the way to a person.
    assert seen.buttons[2:] == ["Aucune de ces réponses"] and len(seen.buttons) == 3
    chosen = public.press(seen.buttons[1])
    assert "educonnect" in fold(chosen.text)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("enlève le blocage des comptes parents", "action.unblock"),
        ("fin du blocage pour les élèves stp", "action.unblock"),
        ("il faut que tu rouvres l'accès des familles", "action.unblock"),
        ("blocage des comptes élèves", "action.block"),
        ("je voudrais savoir comment débloquer les parents", "howto.block_accounts"),
        ("suppression du groupe APE 2020", "action.delete_group"),
        ("mon abonnement téléphone est bloqué", "out_of_scope"),
        ("le photocopieur est bloqué depuis ce matin", "out_of_scope"),
        ("comment on se sert de ce bot", "dialogue.help"),
        ("je veux un humain", "dialogue.human"),
        ("merci infiniment", "dialogue.thanks"),
    ],
)
def test_orders_how_tos_and_lookalikes(assistant, text: str, intent: str) -> None:
    assert assistant.understand(text).intent == intent
