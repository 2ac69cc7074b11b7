"""The fake ENT holding a school file's directory (shared/school-format.md), as entcore would
hold it: the same school the local backend imports, so that both can be compared and the
conversation tests run on either.

What entcore cannot hold is dropped as entcore does, or listed in `SchoolOnEnt.caveats`:
- structures keep id (the UAI, also set as entcore's `UAI`) and name; entcore's structure list
  (`DefaultSchoolService.listAdmin`) has no city and the ENT no circonscription: not held;
- `DIRECTOR` becomes entcore's ADML (`ADMIN_LOCAL`, scope = the account's structures);
  entcore has no eRun notion: `ERUN` is kept as a function code of that name, which gives no
  right in the ENT (an eRun's token cannot read the directory);
- `activated: false` is an `activationCode`; `pre_deleted` is entcore's pre-deletion
  (`deleteDate`, relations moved to the backup); a `deleted` account is absent (entcore
  deletes for good);
- `blocked_individually` has no counterpart: entcore keeps one `blocked` flag per account;
- groups keep id, name, type and members (live ones); a `ProfileGroup`'s members are derived
  by entcore from its profile (and class), so its `filter` is inferred from the members;
- share favourites belong to each user and have no admin route: the fake holds none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.storage.school_rules import load_file, refusal, validate
from bot.storage.schoolfile import blocked_alone
from tests.fake_entcore.state import CLASS_PROFILES, EntState, FakeGroup, FakeUser

# The scope asked by the assistant, with `auth` for individual blocks (PUT /auth/block).
TOKEN_SCOPE = "userinfo directory auth"
# entcore's Resp-Affect-GAR group is protected from deletion (as in seed.py).
LOCKED_GROUPS = ("Resp-Affect-GAR",)


@dataclass
class SchoolOnEnt:
    """A school file held by the fake ENT: its state, a bearer token per live account
    (login → token), the validated file, and what the ENT could not hold as the file says."""

    state: EntState
    tokens: dict[str, str]
    data: dict[str, Any]
    caveats: list[str] = field(default_factory=list)

    def token(self, login: str) -> str:
        """The bearer token of this login (KeyError for a removed or unknown account)."""
        return self.tokens[login]

    def directors(self) -> dict[str, list[str]]:
        """Login → the structures of its ADML scope, for every account with a token."""
        return {
            u.login: sorted(self.state.adml_scope(u))
            for u in self.state.users.values()
            if u.login in self.tokens and self.state.adml_scope(u)
        }


def token_for(login: str) -> str:
    """The bearer token given to an account of a school file."""
    return f"tok-{login}"


def epoch_ms(day: str) -> int:
    """An ISO day as entcore's `deleteDate` (Neo4j timestamp(): epoch milliseconds, UTC)."""
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def state_from_school(source: Path | str | dict[str, Any]) -> SchoolOnEnt:
    """The fake ENT's state for a school file (path or parsed JSON), checked with the
    project's own rules first (a broken file raises SchoolFileError, as its import does)."""
    data = load_file(source) if isinstance(source, str | Path) else source
    errors = validate(data)
    if errors:
        raise refusal(errors)
    state = EntState()
    caveats: list[str] = []
    for structure in data["structures"]:
        sid = structure["id"]
        state.add_structure(sid, sid, structure["name"])
        for school_class in structure["classes"]:
            state.add_class(school_class["id"], sid, school_class["name"])
    # entcore creates its profile groups with the schools and classes; the file's own
    # ProfileGroups stand for them (see _profile_group), so that the ENT holds exactly the
    # file's groups.
    state.groups.clear()

    deleted = {u["id"] for u in data["users"] if u.get("deleted")}
    removed = deleted | {u["id"] for u in data["users"] if u.get("pre_deleted")}
    pre_deleted: list[tuple[FakeUser, str]] = []
    guessed = blocked_alone(data["users"])
    for user in data["users"]:
        if user["id"] in deleted:
            continue
        functions: dict[str, list[str]] = {}
        for function in user["functions"]:
            code = "ADMIN_LOCAL" if function == "DIRECTOR" else function
            functions[code] = list(user["structures"])
        fake = state.add_user(
            FakeUser(
                user["id"],
                user["login"],
                user["first_name"],
                user["last_name"],
                user["profile"],
                source=user["source"],
                activation_code=None if user["activated"] else f"ACT-{user['id']}",
                blocked=user["blocked"],
                functions=functions,
                structures=list(user["structures"]),
                classes=list(user["classes"]),
                administrative=user["home_structure"],
            )
        )
        if user.get("pre_deleted"):
            pre_deleted.append((fake, user["pre_deleted"]))
        alone = user.get("blocked_individually", user["id"] in guessed)
        if alone != (user["id"] in guessed):
            caveats.append(
                f"{user['id']}: blocked_individually={alone} is not what entcore's single "
                "`blocked` flag reads as"
            )

    for group in data.get("groups", []):
        members = [m for m in group["members"] if m not in deleted]
        fake_group = FakeGroup(
            group["id"],
            group["name"],
            group["type"],
            group["structure"],
            lock_delete=group["name"] in LOCKED_GROUPS,
            members=[] if group["type"] == "ProfileGroup" else members,
        )
        if group["type"] == "ProfileGroup":
            _profile_group(state, fake_group, members, removed, caveats)
        state.add_group(fake_group)

    # After the groups: the pre-deletion moves the account's group links to its backup.
    for fake, day in pre_deleted:
        state.pre_delete(fake)
        fake.delete_date = epoch_ms(day)

    tokens: dict[str, str] = {}
    for user in state.users.values():
        if state.live(user):
            tokens[user.login] = token_for(user.login)
            state.add_token(tokens[user.login], user.id, TOKEN_SCOPE)
    if data.get("share_favorites"):
        caveats.append(
            f"{len(data['share_favorites'])} share favourite(s) not held: entcore has no "
            "admin route for them"
        )
    return SchoolOnEnt(state, tokens, data, caveats)


def _profile_group(
    state: EntState,
    group: FakeGroup,
    members: list[str],
    removed: set[str],
    caveats: list[str],
) -> None:
    """A file's ProfileGroup as entcore's: its members are those of a profile in the school
    (or a class), so the profile and class are inferred from the members. Members the ENT
    cannot derive go to `caveats`."""
    # entcore links only live accounts to profile groups (pre-deletion moves the links).
    live = [m for m in members if m not in removed]
    profiles = Counter(state.users[m].profile for m in live)
    if not profiles:
        # No member to infer from: no filter, so no member in the ENT either.
        return
    profile = profiles.most_common(1)[0][0]
    group.filter = profile
    wanted = set(live)
    if wanted == set(_of_profile(state, removed, profile, group.structure_id, None)):
        return
    for school_class in state.classes.values():
        if (
            school_class.structure_id == group.structure_id
            and profile in CLASS_PROFILES
            and wanted
            == set(_of_profile(state, removed, profile, group.structure_id, school_class.id))
        ):
            group.class_id = school_class.id
            return
    caveats.append(
        f"{group.id}: ProfileGroup whose members are not all the {profile} accounts of its "
        "school or of a class; entcore derives them from the profile"
    )


def _of_profile(
    state: EntState, removed: set[str], profile: str, structure_id: str, class_id: str | None
) -> list[str]:
    """Live accounts of a profile in a school, or in one of its classes."""
    return [
        u.id
        for u in state.users.values()
        if u.id not in removed
        and u.profile == profile
        and (class_id in u.classes if class_id else structure_id in u.structures)
    ]
