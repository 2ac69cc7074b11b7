"""A small ENT for the tests: two schools, their directors (ADML), teachers, pupils, parents,
hand-made accounts and groups of every kind, and the bearer tokens to act with."""

from __future__ import annotations

from tests.fake_entcore.state import EntState, FakeGroup, FakeUser

JAURES = "s-jaures"
PASTEUR = "s-pasteur"
CM2, CP_A, CE2 = "c-cm2", "c-cp-a", "c-ce2"
PASTEUR_CM1 = "c-p-cm1"

# Bearer tokens (scopes as the assistant asks them: « userinfo directory »).
CLAIRE = "tok-claire"  # director of Jean Jaurès
CLAIRE_AUTH = "tok-claire-auth"  # the same, with the `auth` scope (individual blocks)
MARC = "tok-marc"  # director of Pasteur only
TEACHER = "tok-leroy"  # a teacher, no ADML function
NO_DIRECTORY = "tok-claire-userinfo"  # Claire, scope « userinfo » only

GAR = "g-gar"
APE = "g-ape"
CHORALE = "g-chorale"
FUNCTIONAL = "g-fonction"
PASTEUR_GROUP = "g-pasteur-sport"


def _user(id: str, login: str, first: str, last: str, profile: str, **fields: object) -> FakeUser:
    return FakeUser(id, login, first, last, profile, **fields)  # type: ignore[arg-type]


def demo_state() -> EntState:
    """The two schools of the tests."""
    state = EntState()
    state.add_structure(JAURES, "0590123A", "École primaire Jean Jaurès")
    state.add_structure(PASTEUR, "0590124B", "École Pasteur")
    state.add_class(CM2, JAURES, "CM2")
    state.add_class(CP_A, JAURES, "CP A")
    state.add_class(CE2, JAURES, "CE2")
    state.add_class(PASTEUR_CM1, PASTEUR, "CM1")
    add = state.add_user
    add(
        _user(
            "u-claire",
            "claire.martin",
            "Claire",
            "Martin",
            "Teacher",
            functions={"ADMIN_LOCAL": [JAURES]},
            structures=[JAURES],
            classes=[CM2],
            administrative=JAURES,
        )
    )
    add(
        _user(
            "u-leroy",
            "nathalie.leroy",
            "Nathalie",
            "Leroy",
            "Teacher",
            structures=[JAURES],
            classes=[CP_A],
            administrative=JAURES,
        )
    )
    add(
        _user(
            "u-petit",
            "paul.petit",
            "Paul",
            "Petit",
            "Teacher",
            structures=[JAURES],
            administrative=JAURES,
        )
    )
    add(
        _user(
            "u-remplacant",
            "remi.roux",
            "Rémi",
            "Roux",
            "Teacher",
            structures=[JAURES, PASTEUR],
            administrative=PASTEUR,
        )
    )
    add(
        _user(
            "u-parti",
            "anne.dupont",
            "Anne",
            "Dupont",
            "Teacher",
            structures=[JAURES, PASTEUR],
            classes=[CE2],
            administrative=PASTEUR,
        )
    )
    add(
        _user(
            "u-marc",
            "marc.dubois",
            "Marc",
            "Dubois",
            "Teacher",
            functions={"ADMIN_LOCAL": [PASTEUR]},
            structures=[PASTEUR],
            classes=[PASTEUR_CM1],
            administrative=PASTEUR,
        )
    )
    for n, class_id in enumerate([CM2, CM2, CP_A], start=1):
        add(
            _user(
                f"u-eleve{n}",
                f"eleve.{n}",
                f"Élève{n}",
                "Durand",
                "Student",
                structures=[JAURES],
                classes=[class_id],
            )
        )
    add(
        _user(
            "u-eleve-p",
            "eleve.pasteur",
            "Léa",
            "Bernard",
            "Student",
            structures=[PASTEUR],
            classes=[PASTEUR_CM1],
        )
    )
    add(_user("u-parent1", "parent.demo", "Sophie", "Durand", "Relative", structures=[JAURES]))
    add(
        _user(
            "u-parent2",
            "parent.deux",
            "Marc",
            "Lefebvre",
            "Relative",
            structures=[JAURES],
            blocked=True,
        )
    )
    # A parent with children in both schools: one `blocked` flag for both.
    add(
        _user(
            "u-parent3",
            "parent.trois",
            "Julie",
            "Bernard",
            "Relative",
            structures=[JAURES, PASTEUR],
        )
    )
    # Hand-made accounts: one activated, one never activated (activationCode), one AAF.
    add(
        _user(
            "u-manuel-actif",
            "intervenant.sport",
            "Hugo",
            "Sport",
            "Guest",
            source="MANUAL",
            structures=[JAURES],
        )
    )
    add(
        _user(
            "u-manuel-jamais",
            "intervenant.musique",
            "Iris",
            "Musique",
            "Guest",
            source="MANUAL",
            activation_code="ACT123",
            structures=[JAURES],
        )
    )
    add(
        _user(
            "u-aaf-invite",
            "invite.aaf",
            "Jean",
            "Aaf",
            "Guest",
            source="AAF1D",
            structures=[JAURES],
        )
    )
    state.add_group(
        FakeGroup(
            GAR, "Resp-Affect-GAR", "ManualGroup", JAURES, lock_delete=True, members=["u-claire"]
        )
    )
    state.add_group(
        FakeGroup(APE, "APE 2021-2022", "ManualGroup", JAURES, members=["u-claire", "u-parent1"])
    )
    state.add_group(FakeGroup(CHORALE, "Chorale", "ManualGroup", JAURES, members=[]))
    state.add_group(
        FakeGroup(FUNCTIONAL, "Enseignants CM", "FunctionalGroup", JAURES, members=["u-claire"])
    )
    state.add_group(
        FakeGroup(PASTEUR_GROUP, "Sport Pasteur", "ManualGroup", PASTEUR, members=["u-marc"])
    )
    state.add_token(CLAIRE, "u-claire")
    state.add_token(CLAIRE_AUTH, "u-claire", "userinfo directory auth")
    state.add_token(MARC, "u-marc")
    state.add_token(TEACHER, "u-leroy")
    state.add_token(NO_DIRECTORY, "u-claire", "userinfo")
    return state
