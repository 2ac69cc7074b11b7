"""Who is talking: a transport identity resolved to a directory account and its role."""

from __future__ import annotations

import logging
import time

from bot.core.services import Services
from intents.domain import DirectoryFailure, Role, Speaker

# Identities are reused this long between messages; a confirmed change always re-reads them,
# so a revoked link can at most see a proposal, never execute it.
SPEAKER_SECONDS = 5.0
_CACHE_LIMIT = 10_000

log = logging.getLogger(__name__)


class Identities:
    """Resolves speakers, with a short cache to keep the per-message cost low."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._cache: dict[tuple[str, str | None], tuple[float, Speaker]] = {}

    def speaker(
        self, speaker_key: str, login: str | None = None, *, fresh: bool = False
    ) -> Speaker:
        """The speaker's account and role; reused a few seconds unless `fresh` (executions)."""
        key = (speaker_key, login)
        cached = self._cache.get(key)
        now = time.monotonic()
        if not fresh and cached is not None and now - cached[0] < SPEAKER_SECONDS:
            return cached[1]
        speaker = self._resolve(speaker_key, login)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (now, speaker)
        if speaker.login is not None:
            # Also the account of that login, as linked() asks for it.
            self._cache[(speaker_key, speaker.login)] = (now, speaker)
        return speaker

    def linked(self, speaker_key: str, login: str | None, linked: str | None) -> Speaker:
        """The speaker, the link being already read (with the conversation state): the login a
        trusted transport asserts, else the linked one; its account is reused a few seconds."""
        login = login or linked
        if login is None:
            return Speaker(key=speaker_key)
        return self.speaker(speaker_key, login)

    def forget(self, speaker_key: str) -> None:
        """Drop cached identities of this speaker (after /connexion, /deconnexion)."""
        for key in [k for k in self._cache if k[0] == speaker_key]:
            del self._cache[key]

    def _resolve(self, speaker_key: str, login: str | None) -> Speaker:
        if login is None:
            login = self.services.accounts.login_for(speaker_key)
        if not login:
            return Speaker(key=speaker_key)
        directory = self.services.directory
        try:
            user = directory.user_by_login(login)
        except DirectoryFailure as failure:
            # The ENT shows nothing to an account that administers no school (a parent, a
            # teacher), or refused an expired sign-in: such a speaker has no school rights.
            log.info("%s read as a member of the public: %s", speaker_key, failure.message)
            return Speaker(key=speaker_key)
        if user is None or not user.is_live:
            return Speaker(key=speaker_key)
        role, structures = Role.PUBLIC, tuple(user.structures)
        if "DIRECTOR" in user.functions:
            role = Role.DIRECTOR
            # The schools the director administers: on the ENT, the scope of ADMIN_LOCAL (the
            # only schools its token lists), not every school the account belongs to.
            administered = {s.id for s in directory.structures()}
            structures = tuple(s for s in structures if s in administered)
        elif "ERUN" in user.functions:
            role = Role.ERUN
            home = directory.structure(user.home_structure) if user.home_structure else None
            if home is not None:
                same = [
                    s.id
                    for s in directory.structures()
                    if s.circonscription == home.circonscription
                ]
                structures = tuple([home.id] + [s for s in same if s != home.id])
        elif user.profile == "Relative":
            role = Role.PARENT
        elif user.profile in {"Teacher", "Personnel"}:
            role = Role.TEACHER
        if user.home_structure in structures:
            structures = (user.home_structure,) + tuple(
                s for s in structures if s != user.home_structure
            )
        return Speaker(
            key=speaker_key,
            login=login,
            user_id=user.id,
            display_name=user.full_name,
            role=role,
            structures=structures,
        )
