"""School directory files (shared/school-format.md): reading and validating them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from intents.domain import FUNCTIONS, GROUP_TYPES, PROFILES, SOURCES

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Required fields per record kind, with the JSON type each must have.
# A list of nested records (checked one by one afterwards), unlike `list`: a list of ids.
_RECORDS = tuple
_STRUCTURE_FIELDS = {
    "id": str,
    "name": str,
    "city": str,
    "circonscription": str,
    "classes": _RECORDS,
}
_CLASS_FIELDS = {"id": str, "name": str, "level": str}
_USER_FIELDS = {
    "id": str,
    "login": str,
    "first_name": str,
    "last_name": str,
    "profile": str,
    "source": str,
    "activated": bool,
    "blocked": bool,
    "structures": list,
    "home_structure": str,
    "classes": list,
    "functions": list,
}
_GROUP_FIELDS = {"id": str, "structure": str, "name": str, "type": str, "members": list}
_FAVORITE_FIELDS = {"id": str, "owner": str, "name": str, "members": list}
_TYPE_NAMES = {
    str: "une chaîne",
    bool: "un booléen (true/false)",
    list: "une liste",
    _RECORDS: "une liste",
}


class SchoolFileError(ValueError):
    """A school file that cannot be imported; str() is one French line, .errors lists all."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


# --- validation -------------------------------------------------------------------------


def _label(kind: str, record: Any, index: int) -> str:
    """How a message names a record: by its id when it has a usable one, else by position."""
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return f"{kind} {record['id']}"
    return f"{kind} n°{index + 1}"


def _check_fields(label: str, record: Any, fields: Mapping[str, type], errors: list[str]) -> bool:
    """Required fields present with the right JSON type; False when the record is unusable."""
    if not isinstance(record, dict):
        errors.append(f"{label} : un objet JSON est attendu")
        return False
    usable = True
    for name, expected in fields.items():
        if name not in record:
            errors.append(f"{label} : champ « {name} » manquant")
            usable = False
            continue
        value = record[name]
        # bool is a subclass of int, never of str or list, so isinstance is exact here.
        if not isinstance(value, list if expected is _RECORDS else expected):
            errors.append(f"{label} : le champ « {name} » doit être {_TYPE_NAMES[expected]}")
            usable = False
        elif expected is list and isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                errors.append(f"{label} : le champ « {name} » doit être une liste de chaînes")
                usable = False
            elif len(set(value)) != len(value):
                duplicated = next(item for item in value if value.count(item) > 1)
                errors.append(f"{label} : « {duplicated} » figure deux fois dans « {name} »")
        elif name == "id" and isinstance(value, str) and not value.strip():
            errors.append(f"{label} : le champ « id » est vide")
            usable = False
    return usable


def _check_date(label: str, record: dict, name: str, errors: list[str], nullable: bool) -> None:
    if name not in record or (nullable and record[name] is None):
        return
    value = record[name]
    valid = isinstance(value, str) and bool(_ISO_DATE.match(value))
    if valid:
        try:
            date.fromisoformat(value)
        except ValueError:
            valid = False
    if not valid:
        errors.append(f"{label} : « {name} » doit être une date ISO AAAA-MM-JJ (reçu {value!r})")


def _ids(records: list) -> set[str]:
    return {r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)}


def _unique(
    kind: str, records: list[tuple[str, dict]], errors: list[str], key: str = "id"
) -> None:
    seen: set[str] = set()
    for label, record in records:
        value = record[key]
        if value in seen:
            errors.append(f"{label} : {key} « {value} » en double ({kind})")
        seen.add(value)


def validate(data: Any) -> list[str]:
    """Every breach of school-format.md, as French messages naming the faulty record."""
    errors: list[str] = []
    if not isinstance(data, dict):
        return ["le fichier doit contenir un objet JSON (structures, users, groups…)"]
    for key, required in (
        ("structures", True),
        ("users", True),
        ("groups", False),
        ("share_favorites", False),
    ):
        if key not in data:
            if required:
                errors.append(f"champ « {key} » manquant au premier niveau")
        elif not isinstance(data[key], list):
            errors.append(f"le champ « {key} » doit être une liste")
    if errors:
        return errors

    structures: list[tuple[str, dict]] = []
    classes: list[tuple[str, dict, str]] = []  # (label, record, structure id)
    for index, record in enumerate(data["structures"]):
        label = _label("structure", record, index)
        if not _check_fields(label, record, _STRUCTURE_FIELDS, errors):
            continue
        structures.append((label, record))
        for class_index, class_record in enumerate(record["classes"]):
            class_label = _label("classe", class_record, class_index)
            if class_label.startswith("classe n°"):
                class_label = f"{label}, {class_label}"
            if _check_fields(class_label, class_record, _CLASS_FIELDS, errors):
                classes.append((class_label, class_record, record["id"]))
    _unique("structures", structures, errors)
    _unique("classes", [(label, record) for label, record, _ in classes], errors)
    # References are checked against every id present, even on records refused for another
    # reason, so that one faulty record does not echo through the rest of the file.
    structure_ids = {record["id"] for _, record in structures} | _ids(data["structures"])
    class_structure: dict[str, Any] = {}  # class id → its structure's id, as the file has it
    for record in data["structures"]:
        if isinstance(record, dict) and isinstance(record.get("classes"), list):
            for class_id in _ids(record["classes"]):
                class_structure.setdefault(class_id, record.get("id"))

    users: list[tuple[str, dict]] = []
    for index, record in enumerate(data["users"]):
        label = _label("utilisateur", record, index)
        if _check_fields(label, record, _USER_FIELDS, errors):
            users.append((label, record))
    _unique("utilisateurs", users, errors)
    _unique("utilisateurs", users, errors, key="login")
    profile_of = {
        record["id"]: record.get("profile")
        for record in data["users"]
        if isinstance(record, dict) and isinstance(record.get("id"), str)
    }
    for label, record in users:
        _check_user(label, record, structure_ids, class_structure, profile_of, errors)

    user_ids = set(profile_of)
    groups: list[tuple[str, dict]] = []
    for index, record in enumerate(data.get("groups", [])):
        label = _label("groupe", record, index)
        if not _check_fields(label, record, _GROUP_FIELDS, errors):
            continue
        groups.append((label, record))
        if record["structure"] not in structure_ids:
            errors.append(f"{label} : la structure « {record['structure']} » n'existe pas")
        if record["type"] not in GROUP_TYPES:
            errors.append(
                f"{label} : type « {record['type']} » inconnu (attendu : {', '.join(GROUP_TYPES)})"
            )
        for member in record["members"]:
            if member not in user_ids:
                errors.append(f"{label} : le membre « {member} » n'existe pas")
    _unique("groupes", groups, errors)

    favorites: list[tuple[str, dict]] = []
    for index, record in enumerate(data.get("share_favorites", [])):
        label = _label("favori", record, index)
        if not _check_fields(label, record, _FAVORITE_FIELDS, errors):
            continue
        favorites.append((label, record))
        if record["owner"] not in user_ids:
            errors.append(f"{label} : le propriétaire « {record['owner']} » n'existe pas")
        for member in record["members"]:
            if member not in user_ids:
                errors.append(f"{label} : le membre « {member} » n'existe pas")
    _unique("favoris", favorites, errors)
    return errors


def _check_user(
    label: str,
    record: dict,
    structure_ids: set[str],
    class_structure: dict[str, Any],
    profile_of: dict[str, Any],
    errors: list[str],
) -> None:
    """The per-user rules: enumerations, references, classes and children by profile, dates."""
    profile = record["profile"]
    if not record["login"].strip():
        errors.append(f"{label} : le champ « login » est vide")
    if profile not in PROFILES:
        errors.append(f"{label} : profil « {profile} » inconnu (attendu : {', '.join(PROFILES)})")
    if record["source"] not in SOURCES:
        errors.append(
            f"{label} : source « {record['source']} » inconnue (attendu : {', '.join(SOURCES)})"
        )
    for function in record["functions"]:
        if function not in FUNCTIONS:
            errors.append(
                f"{label} : fonction « {function} » inconnue (attendu : DIRECTOR ou ERUN)"
            )
    for structure_id in record["structures"]:
        if structure_id not in structure_ids:
            errors.append(f"{label} : la structure « {structure_id} » n'existe pas")
    if not record["structures"]:
        errors.append(f"{label} : aucune structure")
    if record["home_structure"] not in record["structures"]:
        errors.append(
            f"{label} : la structure de rattachement « {record['home_structure']} » "
            "ne fait pas partie de ses structures"
        )
    for class_id in record["classes"]:
        if class_id not in class_structure:
            errors.append(f"{label} : la classe « {class_id} » n'existe pas")
    if profile == "Student":
        if len(record["classes"]) != 1:
            errors.append(
                f"{label} : un élève doit être dans exactement une classe "
                f"({len(record['classes'])} indiquée(s))"
            )
        for class_id in record["classes"]:
            owner = class_structure.get(class_id)
            if owner is not None and owner not in record["structures"]:
                errors.append(
                    f"{label} : la classe « {class_id} » appartient à la structure « {owner} », "
                    "dont l'élève n'est pas membre"
                )
    if profile == "Relative" and record["classes"]:
        errors.append(f"{label} : un parent (Relative) n'a pas de classe, mais des enfants")

    if "children" in record:
        children = record["children"]
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            errors.append(f"{label} : le champ « children » doit être une liste de chaînes")
        else:
            if len(set(children)) != len(children):
                errors.append(f"{label} : un enfant figure deux fois dans « children »")
            if children and profile != "Relative":
                errors.append(f"{label} : seul un parent (Relative) peut avoir des enfants")
            for child in children:
                if child not in profile_of:
                    errors.append(f"{label} : l'enfant « {child} » n'existe pas")
                elif profile_of[child] != "Student":
                    errors.append(f"{label} : l'enfant « {child} » n'est pas un élève (Student)")
    _check_date(label, record, "birth_date", errors, nullable=True)
    _check_date(label, record, "deleted", errors, nullable=True)
    _check_date(label, record, "pre_deleted", errors, nullable=True)
    if "blocked_individually" in record:
        alone = record["blocked_individually"]
        if not isinstance(alone, bool):
            errors.append(f"{label} : « blocked_individually » doit être un booléen (true/false)")
        elif alone and not record["blocked"]:
            errors.append(f"{label} : « blocked_individually » vaut true sur un compte non bloqué")


# --- reading ----------------------------------------------------------------------------


def load_file(path: str | Path) -> Any:
    """Parse a school file; any reading problem becomes a one-line French SchoolFileError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SchoolFileError(f"fichier introuvable : {path}") from None
    except IsADirectoryError:
        raise SchoolFileError(f"{path} est un dossier, pas un fichier") from None
    except OSError as error:
        raise SchoolFileError(f"lecture impossible de {path} : {error.strerror}") from None
    try:
        # utf-8-sig: files saved by some Windows editors start with a byte-order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SchoolFileError(f"le fichier {path} n'est pas encodé en UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SchoolFileError(
            f"le fichier {path} n'est pas du JSON valide "
            f"(ligne {error.lineno}, colonne {error.colno} : {error.msg})"
        ) from None


def refusal(errors: list[str]) -> SchoolFileError:
    """The error refusing a file: its first breach in one line, with every breach attached."""
    more = f" (et {len(errors) - 1} autre(s) erreur(s))" if len(errors) > 1 else ""
    return SchoolFileError(f"fichier refusé : {errors[0]}{more}", errors)
