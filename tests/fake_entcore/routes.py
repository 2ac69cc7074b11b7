"""The fake ENT's handlers, one per entcore route, with the filter entcore applies to it."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from tests.fake_entcore.app import (
    DELETABLE_SOURCES,
    MEMBER_GROUP_TYPES,
    Ctx,
    Denied,
    FakeEnt,
    no_content,
    ok,
    unauthorized,
)
from tests.fake_entcore.state import FakeGroup, FakeUser


def not_found() -> Response:
    return Response("Not Found", status_code=404, media_type="text/html")


def bad_request(error: str) -> Response:
    return ok({"error": error}, 400)


# --- reads ---------------------------------------------------------------------------------


def list_structures(ctx: Ctx) -> Response:
    """StructureController.listAdmin (isAdmin): the ADML's structures."""
    ctx.require_admin()
    scope = ctx.adml()
    return ok(
        [ctx.state.structure_json(s) for s in ctx.state.structures.values() if s.id in scope]
    )


def list_classes(ctx: Ctx) -> Response:
    """ClassController.listAdmin (isAdmin): classes of the structure, within the scope."""
    ctx.require_admin()
    sid = (ctx.query.get("structureId") or [""])[0]
    scope = ctx.adml()
    return ok(
        [
            {"id": c.id, "name": c.name, "externalId": c.external_id}
            for c in ctx.state.classes.values()
            if c.structure_id in scope and (not sid or c.structure_id == sid)
        ]
    )


def structure_users(ctx: Ctx) -> Response:
    """StructureController.userList (AdminStructureFilter on :id); listUserMode "multi":
    pre-deleted accounts of the school come with their deleteDate."""
    sid = ctx.params["id"]
    ctx.require_structure(sid)
    rows = [
        ctx.state.user_row(u, sid)
        for u in ctx.state.users.values()
        if sid in u.structures or (u.delete_date is not None and sid in u.backup_structures)
    ]
    return ok(sorted(rows, key=lambda r: (r["lastName"], r["firstName"])))


def _any_admin_of(ctx: Ctx, user: FakeUser | None) -> bool:
    """AnyAdminOfUser: the account in the scope, or its backup (pre-deleted) there."""
    if user is None:
        return False
    scope = ctx.adml()
    return bool(scope.intersection(user.structures) or scope.intersection(user.backup_structures))


def get_user(ctx: Ctx) -> Response:
    """UserController.get (UserAccessOrVisible): oneself or an account the ADML administers;
    anything else, an unknown id included, is refused by the filter (401)."""
    user = ctx.state.users.get(ctx.params["userId"])
    if user is None or (user.id != ctx.user.id and not _any_admin_of(ctx, user)):
        return unauthorized()
    return ok(ctx.state.user_node(user))


def list_groups(ctx: Ctx) -> Response:
    """GroupController.listAdmin (isAdmin): the structure's and its classes' groups."""
    ctx.require_admin()
    sid = (ctx.query.get("structureId") or [""])[0]
    scope = ctx.adml()
    return ok(
        [
            ctx.state.group_row(g)
            for g in ctx.state.groups.values()
            if g.structure_id in scope and (not sid or g.structure_id == sid)
        ]
    )


def list_users(ctx: Ctx) -> Response:
    """UserController.listAdmin (isAdmin); by groupId, with no scope check (as entcore)."""
    ctx.require_admin()
    gid = (ctx.query.get("groupId") or [""])[0]
    group = ctx.state.groups.get(gid)
    if group is None:
        return ok([])
    return ok([ctx.state.member_row(ctx.state.users[m]) for m in ctx.state.members(group)])


# --- changes -------------------------------------------------------------------------------


def block_profile(ctx: Ctx) -> Response:
    """StructureController.blockUsers (AdminStructureFilter): one profile, 204, no counts;
    `blocked` set on every account of the school's profile group."""
    sid = ctx.params["id"]
    ctx.require_structure(sid)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    profile = body.get("profile")
    block = body.get("block", True)
    if not isinstance(profile, str) or not isinstance(block, bool):
        return bad_request("invalid.body")
    for user in ctx.state.users.values():
        if sid in user.structures and user.profile == profile:
            user.blocked = block
    return no_content()


def block_user(ctx: Ctx) -> Response:
    """AuthController.blockUser (ADML of a school of the account): 200, empty."""
    user = ctx.state.users.get(ctx.params["userId"])
    if user is None or not ctx.adml().intersection(user.structures):
        return unauthorized()
    body = ctx.body if isinstance(ctx.body, dict) else {}
    user.blocked = bool(body.get("block", True))
    return Response(status_code=200)


def _class_filter(ctx: Ctx, class_id: str) -> None:
    """AdmlOfStructureOrClass: the class's structure in the ADML scope."""
    school_class = ctx.state.classes.get(class_id)
    if school_class is None or school_class.structure_id not in ctx.adml():
        raise Denied(unauthorized())


def link_class(ctx: Ctx) -> Response:
    """ClassController.linkUser: 200 {"id"}, or 404 when nothing was linked."""
    class_id, user_id = ctx.params["classId"], ctx.params["userId"]
    _class_filter(ctx, class_id)
    user = ctx.state.users.get(user_id)
    if user is None or user.delete_date is not None:
        return not_found()
    school_class = ctx.state.classes[class_id]
    if class_id not in user.classes:
        user.classes.append(class_id)
    if school_class.structure_id not in user.structures:
        user.structures.append(school_class.structure_id)
    return ok({"id": user.id})


def unlink_class(ctx: Ctx) -> Response:
    """ClassController.unlinkUser (notEmptyResponseHandler): 200 {"id"} or 404."""
    class_id, user_id = ctx.params["classId"], ctx.params["userId"]
    _class_filter(ctx, class_id)
    user = ctx.state.users.get(user_id)
    if user is None or class_id not in user.classes:
        return not_found()
    user.classes.remove(class_id)
    for group in ctx.state.groups.values():
        if group.class_id == class_id and user.id in group.members:
            group.members.remove(user.id)
    return ok({"id": user.id})


def unlink_structure(ctx: Ctx) -> Response:
    """StructureController.unlinkUser: out of the school, its classes and its groups."""
    sid, user_id = ctx.params["structureId"], ctx.params["userId"]
    ctx.require_structure(sid)
    user = ctx.state.users.get(user_id)
    if user is None or not ctx.state.unlink_structure(user, sid):
        return ok({})
    return ok({"id": user.id})


def link_structure(ctx: Ctx) -> Response:
    """StructureController.linkUser: 200 with the account's id, 404 when unknown."""
    sid, user_id = ctx.params["structureId"], ctx.params["userId"]
    ctx.require_structure(sid)
    user = ctx.state.users.get(user_id)
    if user is None or user.delete_date is not None or sid not in ctx.state.structures:
        return not_found()
    if sid not in user.structures:
        user.structures.append(sid)
    return ok({"id": user.id})


def _group_filter(ctx: Ctx, group: FakeGroup | None) -> FakeGroup:
    """DirectoryResourcesProvider.isAdminOfGroup: the group's school in the scope."""
    if group is None or group.structure_id not in ctx.adml():
        raise Denied(unauthorized())
    return group


def delete_group(ctx: Ctx) -> Response:
    """GroupController.delete: Group.manualDelete acts on a ManualGroup without lockDelete
    only; the answer is 204 whatever happened."""
    group = _group_filter(ctx, ctx.state.groups.get(ctx.params["groupId"]))
    if group.type == "ManualGroup" and not group.lock_delete:
        del ctx.state.groups[group.id]
    return no_content()


def add_group_users(ctx: Ctx) -> Response:
    """GroupController.addUsers (AdminFilter: any ADML, whatever the group's school):
    Group.addUsers links only to ManualGroup and FunctionalGroup; 200 {} in every case."""
    ctx.require_admin()
    body = ctx.body if isinstance(ctx.body, dict) else {}
    user_ids = body.get("userIds")
    if not isinstance(user_ids, list):
        return ok({})
    group = ctx.state.groups.get(ctx.params["groupId"])
    if group is not None and group.type in MEMBER_GROUP_TYPES:
        for user_id in user_ids:
            if user_id in ctx.state.users and user_id not in group.members:
                group.members.append(user_id)
    return ok({})


def create_group(ctx: Ctx) -> Response:
    """GroupController.create (isAdminOfStructureOrClass on the body): 201 {"id"}."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    sid = body.get("structureId")
    ctx.require_structure(sid if isinstance(sid, str) else None)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return bad_request("invalid.body")
    group = FakeGroup(ctx.state.new_id(), name, "ManualGroup", str(sid))
    ctx.state.add_group(group)
    return ok({"id": group.id}, 201)


def delete_users(ctx: Ctx) -> Response:
    """UserController.delete then ManualFeeder.deleteUser: the filter checks the first
    account; any account of another source fails the whole call (400); every account is
    pre-deleted and those with an activationCode deleted for good."""
    ids = ctx.query.get("userId") or []
    first = ctx.state.users.get(ids[0]) if ids else None
    if first is None or not ctx.adml().intersection(first.structures):
        return unauthorized()
    users = [ctx.state.users.get(i) for i in ids]
    if any(u is None or u.source not in DELETABLE_SOURCES for u in users):
        return bad_request("unauthorized.user")
    for user in users:
        assert user is not None
        ctx.state.pre_delete(user)
        if user.activation_code:
            ctx.state.delete_for_good(user)
    return ok({})


def restore_users(ctx: Ctx) -> Response:
    """UserController.restore (AnyAdminOfUser on the first account): 200 {}."""
    ids = ctx.query.get("userId") or []
    first = ctx.state.users.get(ids[0]) if ids else None
    if not _any_admin_of(ctx, first):
        return unauthorized()
    for user_id in ids:
        user = ctx.state.users.get(user_id)
        if user is not None:
            ctx.state.restore(user)
    return ok({})


def userinfo(ctx: Ctx) -> Response:
    """/auth/oauth2/userinfo, version 2.0 (the one that keeps the functions): who the bearer
    token is, for the console's ENT_ACCESS_TOKEN."""
    user = ctx.user
    return ok(
        {
            "userId": user.id,
            "login": user.login,
            "username": f"{user.first_name} {user.last_name}",
            "type": user.profile,
            "functions": {
                code: {"code": code, "scope": list(scope)}
                for code, scope in user.functions.items()
            },
        }
    )


def table(ent: FakeEnt) -> list[Route]:
    """Every route of the fake, with the OAuth2 scope its module needs."""
    e = ent.endpoint
    return [
        e("GET", "/directory/structure/admin/list", list_structures),
        e("GET", "/directory/class/admin/list", list_classes),
        e("GET", "/directory/structure/{id}/users", structure_users),
        e("GET", "/directory/user/admin/list", list_users),
        e("GET", "/directory/user/{userId}", get_user),
        e("GET", "/directory/group/admin/list", list_groups),
        e("PUT", "/directory/structure/{id}/profile/block", block_profile),
        e("PUT", "/directory/class/{classId}/link/{userId}", link_class),
        e("DELETE", "/directory/class/{classId}/unlink/{userId}", unlink_class),
        e("DELETE", "/directory/structure/{structureId}/unlink/{userId}", unlink_structure),
        e("PUT", "/directory/structure/{structureId}/link/{userId}", link_structure),
        e("DELETE", "/directory/group/{groupId}", delete_group),
        e("PUT", "/directory/group/{groupId}/users/add", add_group_users),
        e("POST", "/directory/group", create_group),
        e("DELETE", "/directory/user", delete_users),
        e("PUT", "/directory/restore/user", restore_users),
        e("PUT", "/auth/block/{userId}", block_user, scope="auth"),
        e("GET", "/auth/oauth2/userinfo", userinfo, scope="userinfo"),
    ]
