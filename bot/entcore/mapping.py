"""entcore's JSON records → the project's directory records (intents.domain).

Field names follow entcore's directory services: `GET /directory/structure/:id/users` rows
(`type` = first profile, `code` = activationCode, `deleteDate` for pre-deleted accounts,
`classes` and `structures` as `{id, name, externalId}`), `GET /directory/user/:id` (the user
node itself: `profiles`, `activationCode`, `classes` as external ids, `structureNodes`,
`administrativeStructures`), `GET /directory/group/admin/list` (`type`, `lockDelete`,
`filter`, `classes`) and `GET /directory/class/admin/list` (`id`, `name`, `externalId`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from intents.domain import Group, SchoolClass, Structure, User

# entcore's functions as the project names them: an ADML (ADMIN_LOCAL) is the school's
# director in the first degree.
FUNCTION_NAMES = {"ADMIN_LOCAL": "DIRECTOR", "DIRECTOR": "DIRECTOR", "ERUN": "ERUN"}
# The only group types entcore's `PUT /directory/group/:id/users/add` acts on.
MEMBER_GROUP_TYPES = ("ManualGroup", "FunctionalGroup")
# Sources whose accounts `DELETE /directory/user` accepts (ManualFeeder.deleteUser); any
# other source makes the whole call fail with 400.
DELETABLE_SOURCES = ("MANUAL", "CSV", "CLASS_PARAM", "BE1D", "SSO")


def text(raw: Mapping[str, Any], key: str) -> str:
    """A string field, empty when absent or null."""
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def structure_record(raw: Mapping[str, Any]) -> Structure:
    """A row of `GET /directory/structure/admin/list` (no city nor circonscription there)."""
    return Structure(
        id=text(raw, "id"),
        name=text(raw, "name") or text(raw, "UAI"),
        city=text(raw, "city"),
        circonscription=text(raw, "circonscription"),
    )


def class_level(name: str) -> str:
    """The level of a first-degree class from its name (« CP A » → CP, « MS-GS » → MS-GS):
    entcore's class list has no level."""
    words = name.split()
    return words[0] if words else name


def class_record(raw: Mapping[str, Any], structure_id: str, pupil_count: int) -> SchoolClass:
    """A row of `GET /directory/class/admin/list`."""
    name = text(raw, "name")
    level = text(raw, "level") or class_level(name)
    return SchoolClass(
        id=text(raw, "id"),
        structure_id=structure_id,
        name=name,
        level=level,
        pupil_count=pupil_count,
    )


def profile_of(raw: Mapping[str, Any]) -> str:
    """The account's profile: `type` in lists (a string), `profiles`/`type` on the node."""
    for key in ("type", "profiles", "profile"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value and isinstance(value[0], str):
            return value[0]
    return ""


def day_of(value: Any) -> str | None:
    """entcore's dates (epoch milliseconds from Neo4j's timestamp(), or ISO text) as an ISO
    day; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC).date().isoformat()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            return value[:10]
    return None


def functions_of(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """`functions` is a list of `[externalId, scope]` pairs (or of names)."""
    names: list[str] = []
    for item in raw.get("functions") or ():
        code = item[0] if isinstance(item, list) and item else item
        if isinstance(code, str) and code in FUNCTION_NAMES:
            name = FUNCTION_NAMES[code]
            if name not in names:
                names.append(name)
    return tuple(names)


def _ids(items: Any) -> list[str]:
    """Ids of a list of `{id, …}` objects (or of plain ids)."""
    ids: list[str] = []
    for item in items or ():
        value = item.get("id") if isinstance(item, dict) else item
        if isinstance(value, str) and value and value not in ids:
            ids.append(value)
    return ids


def user_record(
    raw: Mapping[str, Any],
    *,
    class_ids_by_external: Mapping[str, str] | None = None,
    structure_ids_by_external: Mapping[str, str] | None = None,
) -> User:
    """A user row of a list, or the node of `GET /directory/user/:id`.

    Lists give classes and structures as `{id, …}` objects; the node gives `structureNodes`
    and `classes` as external ids, resolved with the given maps (from the class lists)."""
    structures = _ids(raw.get("structureNodes")) or _resolved(
        raw.get("structures"), structure_ids_by_external
    )
    classes = _resolved(raw.get("classes"), class_ids_by_external)
    administrative = _ids(raw.get("administrativeStructures"))
    code = raw.get("code", raw.get("activationCode"))
    return User(
        id=text(raw, "id"),
        login=text(raw, "login") or text(raw, "originalLogin"),
        first_name=text(raw, "firstName"),
        last_name=text(raw, "lastName"),
        profile=profile_of(raw),
        source=text(raw, "source"),
        activated=not code,
        blocked=bool(raw.get("blocked")),
        structures=tuple(structures),
        home_structure=home_structure(administrative, structures),
        classes=tuple(classes),
        functions=functions_of(raw),
        # An account deleted for good is gone from entcore: it is never read back.
        deleted=None,
        pre_deleted=day_of(raw.get("deleteDate")),
    )


def home_structure(administrative: list[str], structures: list[str]) -> str | None:
    """entcore's administrative attachment (ADMINISTRATIVE_ATTACHMENT), which only the user
    node gives. Without it, an account in a single school is taken as attached there: the
    cautious reading, since the académie forbids detaching a teacher from that school."""
    if administrative:
        return administrative[0]
    return structures[0] if len(structures) == 1 else None


def _resolved(items: Any, by_external: Mapping[str, str] | None) -> list[str]:
    """Ids of `{id, …}` objects, or of external ids resolved with the map (the node lists
    its classes and structures by external id)."""
    ids: list[str] = []
    for item in items or ():
        if isinstance(item, dict):
            value = item.get("id")
        elif isinstance(item, str) and by_external is not None:
            value = by_external.get(item)
        else:
            value = None
        if isinstance(value, str) and value and value not in ids:
            ids.append(value)
    return ids


def mark_individual_blocks(users: Iterable[User]) -> list[User]:
    """entcore keeps one `blocked` flag per account, whether set by profile or one by one.
    Within a profile where some live accounts are blocked and others not, the blocked ones
    were blocked individually; a whole blocked profile reads as a profile block."""
    users = list(users)
    by_profile: dict[str, list[User]] = defaultdict(list)
    for user in users:
        if user.is_live:
            by_profile[user.profile].append(user)
    alone: set[str] = set()
    for members in by_profile.values():
        if any(not u.blocked for u in members):
            alone.update(u.id for u in members if u.blocked)
    return [replace(u, blocked_individually=u.id in alone) for u in users]


def group_type(raw: Mapping[str, Any]) -> str:
    """The group's type (ManualGroup, ProfileGroup, FunctionalGroup, FunctionGroup…)."""
    value = raw.get("type")
    if isinstance(value, str) and value:
        return value
    labels = [x for x in raw.get("labels") or () if x not in ("Group", "Visible")]
    return str(labels[0]) if labels else ""


def group_locked(raw: Mapping[str, Any]) -> bool:
    """entcore refuses (silently) to delete a group with `lockDelete`."""
    return bool(raw.get("lockDelete"))


def group_class_ids(raw: Mapping[str, Any]) -> list[str]:
    """The classes a group depends on (class profile groups)."""
    return _ids(raw.get("classes"))


def group_record(raw: Mapping[str, Any], structure_id: str, member_ids: Iterable[str]) -> Group:
    """A row of `GET /directory/group/admin/list` with its members."""
    return Group(
        id=text(raw, "id"),
        structure_id=structure_id,
        name=text(raw, "name") or text(raw, "displayName"),
        type=group_type(raw),
        member_ids=tuple(dict.fromkeys(member_ids)),
    )
