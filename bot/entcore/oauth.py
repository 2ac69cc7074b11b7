"""A director's sign-in to the ENT (entcore's OAuth2 authorization code) and the bearer
token the assistant then acts with, as that director. From entcore's source (auth module:
AuthController, OAuthDataHandler; the oauth2-server library it uses):
- GET /auth/oauth2/auth sends the signed-in user back to redirect_uri with `code` and
  `state` appended unencoded (our states are URL-safe), or `error=…&state=…`. A code lives
  10 minutes.
- POST /auth/oauth2/token (form): client id and secret from a Basic header, else the form
  fields. Wrong secret: 401 invalid_client; unknown code or refresh token: 400
  invalid_grant. A refresh gives the same refresh token back (a new one would be kept).
- GET /auth/oauth2/userinfo: its default format (1.0) hides `functions` from OAuth clients,
  so version 2.0 is asked, which has functions = {"ADMIN_LOCAL": {"code", "scope": [structure
  ids]}}: an ADML of those structures is their director here.
client_credentials has no user: it is never used to act.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.settings import Settings, SettingsError
from bot.storage.ent_tokens import EntTokens, StateRejected, StoredTokens, TokenKeyError
from bot.storage.tables import utc_now

log = logging.getLogger(__name__)

SCOPE = "userinfo directory"
CALLBACK_PATH = "/oauth/callback"
AUTHORIZE_PATH = "/auth/oauth2/auth"
TOKEN_PATH = "/auth/oauth2/token"
USERINFO_PATH = "/auth/oauth2/userinfo"
USERINFO_VERSION = "2.0"
ADMIN_LOCAL = "ADMIN_LOCAL"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# An access token this close to its end is refreshed first: it must outlive the request.
EXPIRY_MARGIN = timedelta(seconds=60)
# entcore's default lifetime, for a server that would not say.
DEFAULT_EXPIRES_IN = 3600

Clock = Callable[[], datetime]


class EntAuthError(Exception):
    """Base of the sign-in errors; str() is a French sentence for the user."""


class EntUnavailable(EntAuthError):
    """The ENT did not answer, or answered with a server error."""


class ClientRejected(EntAuthError):
    """The ENT refused the assistant's client id or secret (401 invalid_client)."""


class GrantRefused(EntAuthError):
    """The ENT refused the code of a sign-in (400 invalid_grant): expired or unknown."""


class RelinkNeeded(EntAuthError):
    """The speaker must sign in to the ENT again (refresh refused, link lost)."""


class NotLinked(RelinkNeeded):
    """The speaker never signed in to the ENT, or signed out."""


class TokenRefused(EntAuthError):
    """The ENT refused a bearer token (401)."""


_RELINK = "Votre connexion à l'ENT a expiré : reconnectez-vous avec /connexion."
_UNAVAILABLE = "L'ENT ne répond pas pour l'instant : réessayez dans quelques minutes."


@dataclass(frozen=True)
class OAuthConfig:
    """Where the ENT is, who the assistant is to it, and where the director comes back."""

    ent_url: str
    client_id: str
    client_secret: str
    public_url: str
    scope: str = SCOPE

    @property
    def redirect_uri(self) -> str:
        """PUBLIC_URL + /oauth/callback, the same at the authorization and at the token."""
        return self.public_url.rstrip("/") + CALLBACK_PATH

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuthConfig:
        """From ENT_URL, ENT_CLIENT_ID, ENT_CLIENT_SECRET and PUBLIC_URL; SettingsError (one
        French line) when one is missing."""
        missing = [n for n in settings.missing_ent_oauth() if n != "ENT_TOKEN_KEY"]
        if settings.ent_url is None:
            missing.insert(0, "ENT_URL")
        if missing:
            raise SettingsError(
                f"La connexion à l'ENT demande {', '.join(missing)} : complétez la configuration."
            )
        assert settings.ent_client_id and settings.ent_client_secret and settings.public_url
        return cls(
            ent_url=str(settings.ent_url).rstrip("/"),
            client_id=settings.ent_client_id,
            client_secret=settings.ent_client_secret.get_secret_value(),
            public_url=settings.public_url,
        )


def authorization_url(config: OAuthConfig, state: str) -> str:
    """The ENT's authorization page for this sign-in."""
    query = {"response_type": "code", "client_id": config.client_id}
    query |= {"redirect_uri": config.redirect_uri, "scope": config.scope, "state": state}
    return f"{config.ent_url}{AUTHORIZE_PATH}?{urlencode(query)}"


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint gave."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str


@dataclass(frozen=True)
class EntIdentity:
    """Who a bearer token is, from userinfo: the ADML scope makes a director."""

    user_id: str
    login: str
    display_name: str
    profile: str
    adml_structures: tuple[str, ...]

    @property
    def is_director(self) -> bool:
        """An ADML (function ADMIN_LOCAL) of at least one structure."""
        return bool(self.adml_structures)


@dataclass(frozen=True)
class LinkedAccount:
    """A speaker linked to the ENT, as the core sees it."""

    speaker_key: str
    user_id: str
    login: str
    adml_structures: tuple[str, ...]
    display_name: str = ""

    @property
    def is_director(self) -> bool:
        """Director (ADML) of the structures in adml_structures."""
        return bool(self.adml_structures)


def identity_from_userinfo(data: dict[str, Any]) -> EntIdentity:
    """Read userinfo's answer (version 2.0); EntUnavailable when it is not one."""
    user_id = data.get("userId") or data.get("id")
    login = data.get("login")
    if not isinstance(user_id, str) or not isinstance(login, str):
        raise EntUnavailable("L'ENT a répondu sans dire qui vous êtes : réessayez plus tard.")
    functions = data.get("functions")
    if not isinstance(functions, dict):
        # Version 1.0 (the default) hides the functions from OAuth clients.
        log.warning("entcore userinfo: no functions in the answer; no ADML scope read")
        functions = {}
    adml = functions.get(ADMIN_LOCAL)
    scope = adml.get("scope") if isinstance(adml, dict) else None
    structures = tuple(s for s in scope or () if isinstance(s, str) and s)
    name = data.get("username") or " ".join(
        str(data.get(part) or "") for part in ("firstName", "lastName")
    )
    profile = str(data.get("type") or "")
    return EntIdentity(user_id, login, str(name).strip(), profile, structures)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


class OAuthClient:
    """The ENT's token and userinfo endpoints, over httpx (synchronous: call it off the
    event loop)."""

    def __init__(
        self, config: OAuthConfig, *, http: httpx.Client | None = None, clock: Clock = utc_now
    ) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=TIMEOUT)
        self._clock = clock

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def exchange_code(self, code: str) -> TokenSet:
        """The tokens of a sign-in's code."""
        return self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.redirect_uri,
            }
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens from a refresh token; RelinkNeeded when the ENT refuses it."""
        try:
            tokens = self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        except GrantRefused:
            raise RelinkNeeded(_RELINK) from None
        if not tokens.refresh_token:
            # entcore gives the same refresh token back; one that says nothing keeps it too.
            tokens = TokenSet(tokens.access_token, refresh_token, tokens.expires_at, tokens.scope)
        return tokens

    def userinfo(self, access_token: str) -> EntIdentity:
        """Who the token is; TokenRefused on 401."""
        return read_userinfo(self._http, self.config.ent_url, access_token)

    def _token(self, form: dict[str, str]) -> TokenSet:
        config = self.config
        # entcore reads the Basic header first and the form fields otherwise: both are sent,
        # so that any server of this API finds the credentials where it looks.
        form = {**form, "client_id": config.client_id, "client_secret": config.client_secret}
        now = self._clock()
        try:
            response = self._http.post(
                config.ent_url + TOKEN_PATH,
                data=form,
                auth=(config.client_id, config.client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as error:
            log.warning("entcore token endpoint unreachable (%s)", type(error).__name__)
            raise EntUnavailable(_UNAVAILABLE) from None
        body = _json(response)
        kind = str(body.get("error") or "")
        if response.status_code == 401 or kind in ("invalid_client", "unauthorized_client"):
            log.error("entcore refused the client credentials (%s)", response.status_code)
            raise ClientRejected(
                "L'ENT refuse l'identifiant ou le secret de l'assistant (ENT_CLIENT_ID, "
                "ENT_CLIENT_SECRET) : prévenez l'administrateur de l'assistant."
            )
        if kind == "invalid_grant":
            raise GrantRefused(
                "L'ENT n'a pas accepté cette connexion (lien expiré ou déjà utilisé) : "
                "recommencez avec /connexion dans Telegram."
            )
        if response.status_code >= 500 or response.status_code == 509:
            log.warning("entcore token endpoint answered %s", response.status_code)
            raise EntUnavailable(_UNAVAILABLE)
        access = body.get("access_token")
        if response.status_code != 200 or not isinstance(access, str) or not access:
            log.error("entcore token endpoint: %s %s", response.status_code, kind or "?")
            raise EntAuthError(
                "L'ENT a refusé la connexion de l'assistant "
                f"({kind or response.status_code}) : prévenez l'administrateur."
            )
        expires_in = body.get("expires_in")
        seconds = expires_in if isinstance(expires_in, int | float) else DEFAULT_EXPIRES_IN
        return TokenSet(
            access_token=access,
            refresh_token=str(body.get("refresh_token") or ""),
            expires_at=now + timedelta(seconds=seconds),
            scope=str(body.get("scope") or config.scope),
        )


def read_userinfo(http: httpx.Client, ent_url: str, access_token: str) -> EntIdentity:
    """GET userinfo (version 2.0, which keeps the functions) with a bearer token; also who
    ENT_ACCESS_TOKEN is, for the console. TokenRefused on 401 or a redirect to the login
    page, EntUnavailable otherwise."""
    try:
        response = http.get(
            ent_url.rstrip("/") + USERINFO_PATH,
            params={"version": USERINFO_VERSION},
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": f"application/json;version={USERINFO_VERSION}",
            },
        )
    except httpx.HTTPError as error:
        log.warning("entcore userinfo unreachable (%s)", type(error).__name__)
        raise EntUnavailable(_UNAVAILABLE) from None
    if response.status_code in (302, 401, 403):  # 302: entcore's way to its login page
        raise TokenRefused(_RELINK)
    if response.status_code != 200:
        log.warning("entcore userinfo answered %s", response.status_code)
        raise EntUnavailable(_UNAVAILABLE)
    return identity_from_userinfo(_json(response))


def identify(ent_url: str, access_token: str) -> EntIdentity:
    """Who a bearer token is (ENT_ACCESS_TOKEN, for the console and scripts)."""
    with httpx.Client(timeout=TIMEOUT) as http:
        return read_userinfo(http, ent_url, access_token)


class EntLink:
    """Sign-in, tokens and sign-out of the speakers: what /connexion, /deconnexion and the
    entcore backend call. Synchronous (HTTP and database): call it off the event loop."""

    def __init__(
        self,
        config: OAuthConfig,
        tokens: EntTokens,
        client: OAuthClient | None = None,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.client = client or OAuthClient(config, clock=clock)
        self._clock = clock

    def start(self, speaker_key: str) -> str:
        """The URL of the ENT's authorization page for this speaker (valid 10 minutes)."""
        return authorization_url(self.config, self.tokens.new_state(speaker_key, self._clock()))

    def complete(self, code: str, state: str) -> LinkedAccount:
        """The callback: spend the state (StateRejected, StateExpired), exchange the code,
        read userinfo and store the tokens. EntAuthError subclasses on the ENT's refusals."""
        speaker_key = self.tokens.consume_state(state, self._clock())
        tokens = self.client.exchange_code(code)
        if not tokens.refresh_token:
            log.warning("entcore gave no refresh token: the link lasts one access token")
        identity = self.client.userinfo(tokens.access_token)
        self.tokens.save(
            speaker_key,
            user_id=identity.user_id,
            login=identity.login,
            access_token=tokens.access_token,
            access_expires_at=tokens.expires_at,
            refresh_token=tokens.refresh_token,
            scope=tokens.scope,
            adml_structures=identity.adml_structures,
            now=self._clock(),
        )
        log.info("ENT link made (director: %s)", identity.is_director)
        name, structures = identity.display_name, identity.adml_structures
        return LinkedAccount(speaker_key, identity.user_id, identity.login, structures, name)

    def abandon(self, state: str) -> None:
        """Spend the state of a sign-in the ENT ended with an error: it cannot serve again."""
        with contextlib.suppress(StateRejected):
            self.tokens.consume_state(state, self._clock())

    def account(self, speaker_key: str) -> LinkedAccount | None:
        """The speaker's ENT account and ADML scope, or None when not linked."""
        stored = self._stored(speaker_key)
        if stored is None:
            return None
        return LinkedAccount(speaker_key, stored.user_id, stored.login, stored.adml_structures)

    def bearer_token(self, speaker_key: str, *, force_refresh: bool = False) -> str:
        """A valid access token for the speaker, refreshed first when it (nearly) expired or
        when `force_refresh` (the ENT just answered 401 to it). NotLinked, RelinkNeeded
        (refresh refused: the link is deleted), EntUnavailable, ClientRejected."""
        stored = self._stored(speaker_key)
        if stored is None:
            raise NotLinked("Vous n'êtes pas relié à l'ENT : connectez-vous avec /connexion.")
        if not force_refresh and stored.access_expires_at - EXPIRY_MARGIN > self._clock():
            return stored.access_token
        try:
            fresh = self.client.refresh(stored.refresh_token)
        except RelinkNeeded:
            self.tokens.forget(stored)
            log.info("ENT refresh refused: link deleted")
            raise
        structures: tuple[str, ...] | None = None
        try:
            # The ADML scope may have changed since the sign-in: read it again.
            structures = self.client.userinfo(fresh.access_token).adml_structures
        except EntAuthError as error:
            log.warning("userinfo after a refresh failed (%s): scope kept", type(error).__name__)
        written = self.tokens.refreshed(
            stored,
            access_token=fresh.access_token,
            access_expires_at=fresh.expires_at,
            refresh_token=fresh.refresh_token,
            adml_structures=structures,
            now=self._clock(),
        )
        if not written and self.tokens.get(speaker_key) is None:
            # Signed out while the refresh was under way: the new token is not used.
            raise NotLinked("Vous n'êtes plus relié à l'ENT : connectez-vous avec /connexion.")
        return fresh.access_token

    def unlink(self, speaker_key: str) -> bool:
        """Forget the speaker's ENT tokens (/deconnexion); True when there were some."""
        return self.tokens.delete(speaker_key)

    def _stored(self, speaker_key: str) -> StoredTokens | None:
        try:
            return self.tokens.get(speaker_key)
        except TokenKeyError as error:
            # ENT_TOKEN_KEY changed: what is stored is unreadable, and useless.
            self.tokens.delete(speaker_key)
            raise RelinkNeeded(str(error)) from None
