"""School file validation, all-or-nothing import, and export round trips."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.app import DEMO_SCHOOL
from bot.storage.school_rules import SchoolFileError, validate
from bot.storage.schoolfile import export_school, import_school
from bot.storage.store import Store
from tests.support import DEV_SCHOOL, migrated_store, need_shared


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An empty store on a SQLite file, or in a throw-away PostgreSQL schema."""
    with migrated_store(database_url) as opened:
        yield opened


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _kept(data: dict) -> dict:
    """The file as the directory keeps it: birth dates and parent–child links are dropped at
    import (no feature uses them; README « Données personnelles »)."""
    kept = copy.deepcopy(data)
    for user in kept["users"]:
        user.pop("birth_date", None)
        user.pop("children", None)
    return kept


@pytest.fixture
def demo_data() -> dict:
    return _load(DEMO_SCHOOL)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DEV_SCHOOL, DEMO_SCHOOL], ids=["dev-school", "demo-school"])
def test_round_trip(store: Store, path: Path) -> None:
    if path == DEV_SCHOOL:
        need_shared(path)
    summary = import_school(store, path)
    data = _load(path)
    assert summary.users == len(data["users"])
    assert summary.line().startswith("Annuaire importé :")
    assert export_school(store) == _kept(data)


def test_import_replaces_existing_directory(store: Store, demo_data: dict) -> None:
    import_school(store, demo_data)
    smaller = copy.deepcopy(demo_data)
    smaller["structures"] = smaller["structures"][:1]
    smaller["structures"][0]["classes"] = [
        c for c in smaller["structures"][0]["classes"] if c["id"] != "cls-ce1"
    ]
    keep = {"usr-t01", "usr-t02", "usr-e01", "usr-p02"}
    smaller["users"] = [u for u in smaller["users"] if u["id"] in keep]
    smaller["users"][0]["classes"] = []
    smaller["groups"] = [
        {
            "id": "grp-gar",
            "structure": "0590123A",
            "name": "Resp-Affect-GAR",
            "type": "ManualGroup",
            "members": ["usr-t01"],
        }
    ]
    smaller["share_favorites"] = []
    import_school(store, smaller)
    assert export_school(store) == _kept(smaller)


def test_optional_keys_default(store: Store) -> None:
    data = {
        "structures": [
            {"id": "S1", "name": "École", "city": "Lille", "circonscription": "L1", "classes": []}
        ],
        "users": [
            {
                "id": "u1",
                "login": "a.b",
                "first_name": "A",
                "last_name": "B",
                "profile": "Guest",
                "source": "MANUAL",
                "activated": False,
                "blocked": False,
                "structures": ["S1"],
                "home_structure": "S1",
                "classes": [],
                "functions": [],
            }
        ],
    }
    assert validate(data) == []
    import_school(store, data)
    exported = export_school(store)
    assert "birth_date" not in exported["users"][0]
    assert exported["groups"] == [] and exported["share_favorites"] == []


# --- refused files ----------------------------------------------------------------------


def _user(data: dict, user_id: str) -> dict:
    return next(user for user in data["users"] if user["id"] == user_id)


def _set(user_id: str, field: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        _user(data, user_id)[field] = value

    return change


def _drop(user_id: str, field: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        del _user(data, user_id)[field]

    return change


def _dup_user(data: dict) -> None:
    twin = copy.deepcopy(_user(data, "usr-t02"))
    twin["login"] = "autre.login"
    data["users"].append(twin)


def _dup_login(data: dict) -> None:
    _user(data, "usr-t03")["login"] = "nathalie.leroy"


def _dup_class(data: dict) -> None:
    data["structures"][1]["classes"].append({"id": "cls-ce1", "name": "CE1", "level": "CE1"})


def _dup_structure(data: dict) -> None:
    twin = copy.deepcopy(data["structures"][1])
    twin["classes"] = []
    twin["id"] = "0590123A"
    data["structures"].append(twin)


def _dup_group(data: dict) -> None:
    data["groups"].append(dict(data["groups"][0], name="Autre"))


def _dup_favorite(data: dict) -> None:
    data["share_favorites"].append(dict(data["share_favorites"][0]))


def _group_field(index: int, field: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["groups"][index][field] = value

    return change


def _favorite_field(field: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["share_favorites"][0][field] = value

    return change


def _class_field(field: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["structures"][0]["classes"][2][field] = value

    return change


def _structure_field(field: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["structures"][1][field] = value

    return change


BAD_FILES: list[tuple[str, Callable[[dict], None], list[str]]] = [
    ("duplicate user id", _dup_user, ["utilisateur usr-t02", "double"]),
    ("duplicate login", _dup_login, ["utilisateur usr-t03", "nathalie.leroy", "double"]),
    ("duplicate class id", _dup_class, ["classe cls-ce1", "double"]),
    ("duplicate structure id", _dup_structure, ["structure 0590123A", "double"]),
    ("duplicate group id", _dup_group, ["groupe grp-gar", "double"]),
    ("duplicate favourite id", _dup_favorite, ["favori fav-collegues-2021", "double"]),
    (
        "unknown structure",
        _set("usr-t09", "structures", ["0590123A", "0000000X"]),
        ["utilisateur usr-t09", "0000000X", "n'existe pas"],
    ),
    (
        "unknown class",
        _set("usr-t09", "classes", ["cls-x"]),
        ["utilisateur usr-t09", "la classe « cls-x » n'existe pas"],
    ),
    (
        "unknown child",
        _set("usr-p02", "children", ["usr-none"]),
        ["utilisateur usr-p02", "usr-none"],
    ),
    (
        "child not a pupil",
        _set("usr-p02", "children", ["usr-t02"]),
        ["utilisateur usr-p02", "usr-t02", "élève"],
    ),
    (
        "unknown group member",
        _group_field(0, "members", ["usr-t01", "usr-ghost"]),
        ["groupe grp-gar", "usr-ghost"],
    ),
    (
        "unknown group structure",
        _group_field(1, "structure", "0000000X"),
        ["groupe grp-ape-2021", "0000000X"],
    ),
    (
        "unknown favourite owner",
        _favorite_field("owner", "usr-ghost"),
        ["favori fav-collegues-2021", "propriétaire", "usr-ghost"],
    ),
    (
        "unknown favourite member",
        _favorite_field("members", ["usr-ghost"]),
        ["favori fav-collegues-2021", "usr-ghost"],
    ),
    (
        "home structure not among structures",
        _set("usr-t09", "home_structure", "0590124B"),
        ["utilisateur usr-t09", "rattachement", "0590124B"],
    ),
    (
        "student without class",
        _set("usr-e01", "classes", []),
        ["utilisateur usr-e01", "exactement une classe"],
    ),
    (
        "student in two classes",
        _set("usr-e01", "classes", ["cls-tps-ps", "cls-ms-gs"]),
        ["utilisateur usr-e01", "exactement une classe"],
    ),
    (
        "student in a class of another school",
        _set("usr-e01", "classes", ["cls-pasteur-ps"]),
        ["utilisateur usr-e01", "cls-pasteur-ps", "0590124B"],
    ),
    (
        "relative with a class",
        _set("usr-p02", "classes", ["cls-cp-a"]),
        ["utilisateur usr-p02", "parent"],
    ),
    (
        "teacher with children",
        _set("usr-t09", "children", ["usr-e01"]),
        ["utilisateur usr-t09", "enfants"],
    ),
    (
        "unknown function",
        _set("usr-t09", "functions", ["ADMIN"]),
        ["utilisateur usr-t09", "fonction « ADMIN »"],
    ),
    (
        "unknown profile",
        _set("usr-t09", "profile", "Professeur"),
        ["utilisateur usr-t09", "profil « Professeur »"],
    ),
    (
        "unknown source",
        _set("usr-t09", "source", "ONDE"),
        ["utilisateur usr-t09", "source « ONDE »"],
    ),
    ("unknown group type", _group_field(0, "type", "Club"), ["groupe grp-gar", "type « Club »"]),
    (
        "bad birth date",
        _set("usr-e01", "birth_date", "12/04/2022"),
        ["utilisateur usr-e01", "birth_date", "ISO"],
    ),
    (
        "impossible deleted date",
        _set("usr-p15", "deleted", "2023-02-30"),
        ["utilisateur usr-p15", "deleted"],
    ),
    (
        "bad pre_deleted type",
        _set("usr-t12", "pre_deleted", 20250715),
        ["utilisateur usr-t12", "pre_deleted"],
    ),
    (
        "blocked as string",
        _set("usr-t09", "blocked", "false"),
        ["utilisateur usr-t09", "blocked", "booléen"],
    ),
    (
        "activated as number",
        _set("usr-t09", "activated", 1),
        ["utilisateur usr-t09", "activated", "booléen"],
    ),
    (
        "structures as string",
        _set("usr-t09", "structures", "0590123A"),
        ["utilisateur usr-t09", "structures", "liste"],
    ),
    (
        "null first name",
        _set("usr-t09", "first_name", None),
        ["utilisateur usr-t09", "first_name", "chaîne"],
    ),
    ("missing login", _drop("usr-t09", "login"), ["utilisateur usr-t09", "login", "manquant"]),
    ("missing profile", _drop("usr-t09", "profile"), ["utilisateur usr-t09", "profile"]),
    (
        "children not a list",
        _set("usr-p02", "children", "usr-e01"),
        ["utilisateur usr-p02", "children"],
    ),
    ("class ids not strings", _set("usr-t09", "classes", [3]), ["utilisateur usr-t09", "classes"]),
    ("class without level", _class_field("level", None), ["classe cls-cp-a", "level"]),
    ("structure without city", _structure_field("city", 59000), ["structure 0590124B", "city"]),
    ("classes not a list", _structure_field("classes", {}), ["structure 0590124B", "classes"]),
    (
        "group members not a list",
        _group_field(2, "members", "usr-t07"),
        ["groupe grp-chorale-2025", "members"],
    ),
    (
        "duplicate group member",
        _group_field(0, "members", ["usr-t01", "usr-t01"]),
        ["groupe grp-gar", "usr-t01", "deux fois"],
    ),
    ("users not a list", lambda data: data.update(users={}), ["users", "liste"]),
    ("users missing", lambda data: data.pop("users"), ["users", "manquant"]),
    ("user not an object", lambda data: data["users"].append("usr-x"), ["utilisateur n°61"]),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [(change, expected) for _, change, expected in BAD_FILES],
    ids=[name for name, _, _ in BAD_FILES],
)
def test_bad_file_is_refused_and_nothing_changes(
    store: Store,
    demo_data: dict,
    tmp_path: Path,
    change: Callable[[dict], None],
    expected: list[str],
) -> None:
    import_school(store, demo_data)
    before = export_school(store)
    bad = copy.deepcopy(demo_data)
    change(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SchoolFileError) as refused:
        import_school(store, path)
    message = str(refused.value)
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message, message
    assert export_school(store) == before


def test_every_error_is_listed(demo_data: dict) -> None:
    bad = copy.deepcopy(demo_data)
    _set("usr-t09", "profile", "Professeur")(bad)
    _set("usr-e01", "classes", [])(bad)
    errors = validate(bad)
    assert len(errors) == 2
    memory = Store.in_memory()
    try:
        with pytest.raises(SchoolFileError, match=r"et 1 autre"):
            import_school(memory, bad)
    finally:
        memory.dispose()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "JSON"),
        (b"", "JSON"),
        ('{"structures": "é"}'.encode("latin-1"), "UTF-8"),
        (b"[]", "objet JSON"),
    ],
    ids=["not-json", "empty", "latin-1", "array"],
)
def test_unreadable_files_are_refused(
    store: Store, demo_data: dict, tmp_path: Path, content: bytes, expected: str
) -> None:
    import_school(store, demo_data)
    before = export_school(store)
    path = tmp_path / "school.json"
    path.write_bytes(content)
    with pytest.raises(SchoolFileError, match=expected) as refused:
        import_school(store, path)
    assert "\n" not in str(refused.value)
    assert export_school(store) == before


def test_missing_file_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(SchoolFileError, match="introuvable"):
        import_school(store, tmp_path / "absent.json")
    with pytest.raises(SchoolFileError, match="dossier"):
        import_school(store, tmp_path)
    assert store.is_empty()


def test_byte_order_mark_is_accepted(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO_SCHOOL.read_bytes())
    import_school(store, path)
    assert export_school(store) == _kept(_load(DEMO_SCHOOL))


# --- the embedded demo school obeys what the assistant's scenarios need -------------------


def test_demo_school_content(demo_data: dict) -> None:
    assert validate(demo_data) == []
    jj, pasteur = demo_data["structures"]
    assert (jj["id"], jj["name"], jj["city"], jj["circonscription"]) == (
        "0590123A",
        "École primaire Jean Jaurès",
        "Lille",
        "Lille 1",
    )
    assert pasteur["id"] == "0590124B" and pasteur["circonscription"] == "Lille 1"
    users = {u["login"]: u for u in demo_data["users"]}
    assert users["claire.martin"]["functions"] == ["DIRECTOR"]
    assert users["marc.dubois"]["structures"] == ["0590124B"]
    assert users["erun.lille1"]["functions"] == ["ERUN"]
    assert users["parent.demo"]["profile"] == "Relative"
    leroys = [u for u in demo_data["users"] if u["last_name"] == "Leroy"]
    assert len(leroys) == 2
    assert sum(u["source"] == "MANUAL" for u in demo_data["users"]) == 4
    used = {c for u in demo_data["users"] if u["profile"] == "Student" for c in u["classes"]}
    empty = [c["id"] for c in jj["classes"] if c["id"] not in used]
    assert empty == ["cls-ulis"]
    names = {g["name"] for g in demo_data["groups"]}
    assert {
        "Resp-Affect-GAR",
        "APE 2021-2022",
        "Chorale 2025-2026",
        "Enseignants de l'école",
        "Parents de l'école",
        "Élèves de l'école",
    } <= names
    assert "Collègues 2021" in {f["name"] for f in demo_data["share_favorites"]}
