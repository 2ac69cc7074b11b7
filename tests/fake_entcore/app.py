"""The fake ENT's routes: entcore's directory API as its controllers, filters and services
behave (entcore 6.15), with a call log and fault injection for the tests.

Authentication as entcore does it: an unknown bearer token, or one whose OAuth2 scope lacks
the module (`directory`, `auth`), is answered with a 302 to the login page
(`UserAuthFilter.redirectLogin`); a resource filter that refuses answers 401
(`ActionFilter.deny`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_entcore.state import EntState, FakeUser

DELETABLE_SOURCES = ("MANUAL", "CSV", "CLASS_PARAM", "BE1D", "SSO")
MEMBER_GROUP_TYPES = ("ManualGroup", "FunctionalGroup")


@dataclass
class Call:
    """One request the fake received."""

    route: str
    path: str
    query: dict[str, list[str]]
    body: Any
    token: str | None


@dataclass
class Fault:
    """The next `times` calls to a route answer `status`, after hanging `hang` seconds if
    set; with `apply`, the change is carried out first (only its answer is lost)."""

    times: int
    status: int = 500
    hang: float = 0.0
    apply: bool = False


class Denied(Exception):
    """A refused request, answered as entcore does."""

    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class Ctx:
    """What a handler gets: the state, the caller and the request's parts."""

    state: EntState
    user: FakeUser
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any

    def adml(self) -> set[str]:
        return self.state.adml_scope(self.user)

    def require_admin(self) -> None:
        """DirectoryResourcesProvider.isAdmin / AdminFilter: any ADML."""
        if not self.adml():
            raise Denied(unauthorized())

    def require_structure(self, structure_id: str | None) -> None:
        """AdminStructureFilter, AdmlOfStructure: the structure in the ADML scope."""
        if not structure_id or structure_id not in self.adml():
            raise Denied(unauthorized())


Handler = Callable[[Ctx], Response]


def unauthorized() -> Response:
    return Response("Unauthorized", status_code=401, media_type="text/html")


def ok(body: Any = None, status: int = 200) -> Response:
    return JSONResponse({} if body is None else body, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)


@dataclass
class FakeEnt:
    """The fake ENT: its state, the calls received and the faults to inject."""

    state: EntState = field(default_factory=EntState)
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    stopping: bool = False

    def fail(self, route: str, times: int = 1, status: int = 500, *, apply: bool = False) -> None:
        """The next `times` calls to `route` (e.g. "PUT /directory/group/{groupId}/users/add")
        answer `status`; with `apply`, after carrying the change out."""
        self.faults.setdefault(route, []).append(Fault(times, status, apply=apply))

    def hang(
        self, route: str, times: int = 1, seconds: float = 2.0, *, apply: bool = False
    ) -> None:
        """The next `times` calls to `route` wait `seconds` (past the client's time-out), then
        answer 500; with `apply`, the change is carried out before the wait."""
        self.faults.setdefault(route, []).append(Fault(times, 500, hang=seconds, apply=apply))

    def calls_to(self, route: str) -> list[Call]:
        """The calls received on a route."""
        return [c for c in self.calls if c.route == route]

    def _fault(self, route: str) -> Fault | None:
        pending = self.faults.get(route)
        if not pending:
            return None
        fault = pending[0]
        fault.times -= 1
        if fault.times <= 0:
            pending.pop(0)
        return fault

    def endpoint(
        self, method: str, template: str, handler: Handler, scope: str = "directory"
    ) -> Route:
        route = f"{method} {template}"

        async def serve(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            query: dict[str, list[str]] = {}
            for key, value in request.query_params.multi_items():
                query.setdefault(key, []).append(value)
            header = request.headers.get("authorization", "")
            token = header[7:] if header.startswith("Bearer ") else None
            with self.state.lock:
                self.calls.append(Call(route, request.url.path, query, body, token))
                fault = self._fault(route)
            if fault is None or fault.apply:
                # Carried out first: the answer is what gets lost.
                with self.state.lock:
                    response = self._handle(request, token, scope, handler, query, body)
            if fault is None:
                return response
            if fault.hang:
                await self._sleep(fault.hang)
            return Response("Internal Server Error", status_code=fault.status)

        return Route(template, serve, methods=[method])

    async def _sleep(self, seconds: float) -> None:
        waited = 0.0
        while waited < seconds and not self.stopping:
            await asyncio.sleep(0.05)
            waited += 0.05

    def _handle(
        self,
        request: Request,
        token: str | None,
        scope: str,
        handler: Handler,
        query: dict[str, list[str]],
        body: Any,
    ) -> Response:
        grant = self.state.tokens.get(token or "")
        user = self.state.users.get(grant.user_id) if grant else None
        if grant is None or user is None or scope not in grant.scope:
            # UserAuthFilter.deny: to the login page, never a JSON error.
            callback = str(request.url)
            return Response(
                status_code=302, headers={"Location": f"/auth/login?callback={callback}"}
            )
        ctx = Ctx(self.state, user, dict(request.path_params), query, body)
        try:
            return handler(ctx)
        except Denied as denied:
            return denied.response


def build_app(ent: FakeEnt) -> Starlette:
    """The Starlette app of the fake ENT."""
    from tests.fake_entcore import routes

    return Starlette(routes=routes.table(ent))
