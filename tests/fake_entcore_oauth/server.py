"""entcore's OAuth2 endpoints as its source has them (auth module: AuthController,
OAuthDataHandler, OAuthAuthorizationResponse, the userinfo adapters; and the oauth2-server
library's Token endpoint, grant handlers and client-credential fetcher):

- GET /auth/oauth2/auth: response_type must be `code` and client_id given (else redirect
  with error=invalid_request), a scope given (invalid_scope), a known client
  (unauthorized_client), a signed-in user (else a redirect to the login page), a scope the
  application has (else server_error). Then redirect_uri + ?code=…&state=… (or &code=… when
  it has a query already), appended without encoding.
- POST /auth/oauth2/token: client credentials from `Authorization: Basic` first, else the
  client_id/client_secret fields; missing ones 400 invalid_request; a wrong secret, or a
  grant type the application does not have (refresh_token always allowed), 401
  invalid_client. authorization_code: the code of the last 10 minutes (else 400
  invalid_grant), of this client (401 invalid_client), with the same redirect_uri (400
  redirect_uri_mismatch). refresh_token: a known one (else 400 invalid_grant); the same
  refresh token is given back (entcore does not rotate it). A new access token each time.
- GET|POST /auth/oauth2/userinfo: `Authorization: Bearer` (or `OAuth`), a live token (else
  401). The answer's version from `Accept: …version=X.Y`, else ?version=: 1.0 (default)
  hides functions, structures and groupsIds from OAuth clients and maps the profile type;
  2.0 gives the session as is, functions = {code: {code, scope}}.

The user who "approves" is the one signed in (sign_in()); the clock is injectable.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

CLIENT_ID = "assistant-rentree"
CLIENT_SECRET = "fake-client-secret"
CODE_LIFETIME = timedelta(minutes=10)
_VERSION = re.compile(r"version=([0-9]+\.[0-9]+)")
_BEARER = re.compile(r"^\s*(OAuth|Bearer)\s+([^\s,]*)")
_BASIC = re.compile(r"^\s*(Basic)\s+(.*)$")
_TYPES_V1 = {
    "Teacher": "ENSEIGNANT",
    "Student": "ELEVE",
    "Relative": "PERSRELELEVE",
    "SuperAdmin": "SUPERADMIN",
    "Personnel": "PERSEDUCNAT",
}


@dataclass
class FakeUser:
    """An ENT account as its session describes it."""

    id: str
    login: str
    first_name: str
    last_name: str
    profile: str = "Personnel"
    structures: list[str] = field(default_factory=list)
    # Function code → scope (structure ids), as HAS_FUNCTION's scope.
    functions: dict[str, list[str]] = field(default_factory=dict)

    def session(self) -> dict[str, Any]:
        """The session JSON entcore builds for this user (the fields userinfo shows)."""
        return {
            "userId": self.id,
            "login": self.login,
            "username": f"{self.first_name} {self.last_name}",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "externalId": f"ext-{self.id}",
            "type": self.profile,
            "level": "",
            "classNames": [],
            "classes": [],
            "realClassesNames": [],
            "structures": list(self.structures),
            "structureNames": [f"École {s}" for s in self.structures],
            "uai": [],
            "groupsIds": [f"group-{s}" for s in self.structures],
            "functions": {
                code: {"code": code, "scope": list(scope)}
                for code, scope in self.functions.items()
            },
            "authorizedActions": [],
            "apps": [],
            "children": {},
            "childrenIds": [],
            "federated": None,
            "hasApp": False,
            "cache": {},
        }


@dataclass
class _AuthInfo:
    id: str
    client_id: str
    user_id: str
    scope: str
    redirect_uri: str | None
    code: str | None
    refresh_token: str
    created_at: datetime


@dataclass
class _Token:
    token: str
    auth_id: str
    created_on: datetime
    expires_in: int


class FakeEntcoreOAuth:
    """The fake server's state and its Starlette app."""

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        app_scope: tuple[str, ...] = ("userinfo", "directory"),
        grant_type: str = "authorization_code",
        token_lifetime: int = 3600,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.app_scope = set(app_scope)
        self.grant_type = grant_type
        self.token_lifetime = token_lifetime
        self.clock = clock or (lambda: datetime.now(UTC))
        self.users: dict[str, FakeUser] = {}
        self.signed_in: str | None = None
        self.auths: dict[str, _AuthInfo] = {}
        self.tokens: dict[str, _Token] = {}
        # What reached the token endpoint: (grant_type, credentials from "basic" or "form").
        self.token_requests: list[tuple[str, str]] = []
        self.userinfo_versions: list[str] = []
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/auth/oauth2/auth", self._authorize, methods=["GET"]),
                Route("/auth/oauth2/token", self._token, methods=["POST"]),
                Route("/auth/oauth2/userinfo", self._userinfo, methods=["GET", "POST"]),
            ]
        )

    # --- the test's controls ----------------------------------------------------------

    def add_user(self, user: FakeUser) -> FakeUser:
        """Create an account."""
        self.users[user.id] = user
        return user

    def sign_in(self, user_id: str | None) -> None:
        """The user whose browser holds an ENT session (None: nobody signed in)."""
        self.signed_in = user_id

    def revoke(self, user_id: str) -> None:
        """Delete the user's authorizations and tokens (entcore's logout/SLO does): their
        refresh tokens are refused from now on."""
        with self._lock:
            gone = {a.id for a in self.auths.values() if a.user_id == user_id}
            self.auths = {k: a for k, a in self.auths.items() if k not in gone}
            self.tokens = {k: t for k, t in self.tokens.items() if t.auth_id not in gone}

    def live_tokens(self, user_id: str) -> list[str]:
        """The user's access tokens that have not expired."""
        now = self.clock()
        return [
            t.token
            for t in self.tokens.values()
            if self.auths[t.auth_id].user_id == user_id and not self._expired(t, now)
        ]

    def all_secrets(self) -> list[str]:
        """Every access and refresh token issued and still known."""
        return [t.token for t in self.tokens.values()] + [
            a.refresh_token for a in self.auths.values()
        ]

    # --- the endpoints ----------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        redirect_uri = params.get("redirect_uri") or ""
        state = params.get("state")
        client_id = (params.get("client_id") or "").strip()
        if params.get("response_type") != "code" or not client_id:
            return _redirect(redirect_uri, "error=invalid_request", state)
        scope = params.get("scope") or ""
        if not scope:
            return _redirect(redirect_uri, "error=invalid_scope", state)
        if client_id != self.client_id:
            return _redirect(redirect_uri, "error=unauthorized_client", state)
        if self.signed_in is None:
            return RedirectResponse(f"/auth/login?callback={request.url.path}", 302)
        if not set(scope.split()) <= self.app_scope:
            return _redirect(redirect_uri, "error=server_error", state)
        auth = _AuthInfo(
            id=uuid.uuid4().hex,
            client_id=client_id,
            user_id=self.signed_in,
            scope=scope,
            redirect_uri=redirect_uri,
            code=str(uuid.uuid4()),
            refresh_token=str(uuid.uuid4()),
            created_at=self.clock(),
        )
        with self._lock:
            self.auths[auth.id] = auth
        return _redirect(redirect_uri, f"code={auth.code}", state)

    async def _token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, as entcore reads it (no multipart here).
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = str(form.get("grant_type") or "")
        if not grant:
            return _error(400, "invalid_request", "'grant_type' not found")
        if grant not in ("authorization_code", "refresh_token", "password", "client_credentials"):
            return _error(400, "unsupported_grant_type")
        client_id, secret, source = _credentials(request, form)
        self.token_requests.append((grant, source))
        if not client_id:
            return _error(400, "invalid_request", "'client_id' not found")
        if not secret:
            return _error(400, "invalid_request", "'client_secret' not found")
        if (
            client_id != self.client_id
            or secret != self.client_secret
            or (grant != "refresh_token" and grant != self.grant_type)
        ):
            return _error(401, "invalid_client")
        now = self.clock()
        with self._lock:
            if grant == "authorization_code":
                code, redirect_uri = form.get("code"), form.get("redirect_uri")
                if not code or not redirect_uri:
                    return _error(400, "invalid_request")
                auth = next(
                    (
                        a
                        for a in self.auths.values()
                        if a.code == code and a.created_at >= now - CODE_LIFETIME
                    ),
                    None,
                )
                if auth is None:
                    return _error(400, "invalid_grant")
                if auth.client_id != client_id:
                    return _error(401, "invalid_client")
                if not auth.redirect_uri or auth.redirect_uri != redirect_uri:
                    return _error(400, "redirect_uri_mismatch")
            elif grant == "refresh_token":
                refresh = form.get("refresh_token")
                if not refresh:
                    return _error(400, "invalid_request")
                auth = next((a for a in self.auths.values() if a.refresh_token == refresh), None)
                if auth is None:
                    return _error(400, "invalid_grant")
                if auth.client_id != client_id:
                    return _error(401, "invalid_client")
            else:
                return _error(400, "invalid_grant")
            token = _Token(str(uuid.uuid4()), auth.id, now, self.token_lifetime)
            self.tokens[token.token] = token
        return JSONResponse(
            {
                "token_type": "Bearer",
                "access_token": token.token,
                "expires_in": token.expires_in,
                "refresh_token": auth.refresh_token,
                "scope": auth.scope,
            }
        )

    async def _userinfo(self, request: Request) -> Response:
        found = _BEARER.match(request.headers.get("Authorization", ""))
        token = self.tokens.get(found.group(2)) if found else None
        if token is None or self._expired(token, self.clock()):
            return Response(status_code=401)
        auth = self.auths.get(token.auth_id)
        if auth is None or "userinfo" not in auth.scope.split():
            return Response(status_code=401)
        session = self.users[auth.user_id].session()
        accept = _VERSION.search(request.headers.get("Accept", ""))
        version = accept.group(1) if accept else request.query_params.get("version", "")
        self.userinfo_versions.append(version)
        if version.lstrip("v") in ("2.0", "2.1"):
            for key in ("manualGroups", "structureNodes", "structureExternalId"):
                session.pop(key, None)
            if version.lstrip("v") == "2.0":
                session.pop("cache", None)
            return JSONResponse(session)
        return JSONResponse(_version_1_0(session))

    @staticmethod
    def _expired(token: _Token, now: datetime) -> bool:
        return token.created_on + timedelta(seconds=token.expires_in) < now


def _version_1_0(info: dict[str, Any]) -> dict[str, Any]:
    """userinfo 1.0 for an OAuth client (UserInfoAdapterV1_0Json with a client id)."""
    shown = {k: v for k, v in info.items() if k not in ("cache", "realClassesNames", "classes")}
    shown["type"] = _TYPES_V1.get(str(info.get("type")), "")
    class_names, structure_names = shown.pop("classNames", []), shown.pop("structureNames", [])
    shown.pop("federated", None)
    if class_names:
        shown["classId"] = class_names[0]
    if structure_names:
        shown["schoolName"] = structure_names[0]
    for hidden in ("functions", "groupsIds", "structures", "apps", "authorizedActions"):
        shown.pop(hidden, None)
    shown.pop("children", None)
    return shown


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str, str]:
    """(client id, secret, where they came from): the Basic header first, then the form."""
    header = _BASIC.match(request.headers.get("Authorization", ""))
    if header:
        decoded = base64.b64decode(header.group(2)).decode()
        client_id, _, secret = decoded.partition(":")
        return client_id, secret, "basic"
    return str(form.get("client_id") or ""), str(form.get("client_secret") or ""), "form"


def _redirect(redirect_uri: str, params: str, state: str | None) -> Response:
    """entcore's doRedirect: parameters appended as they are, state last."""
    if state and state.strip():
        params += f"&state={state}"
    joiner = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{params}", 302)


def _error(status: int, kind: str, description: str = "") -> Response:
    return JSONResponse({"error": kind, "error_description": description}, status_code=status)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_in_thread(app: ASGIApp, port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread, on `port` (0: a free one);
    yields its base URL, stops it on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
    )
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
