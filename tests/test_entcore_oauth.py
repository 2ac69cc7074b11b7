"""A director's OAuth2 sign-in to the ENT, against a fake entcore on 127.0.0.1: the
authorization URL, the fake's approval, the callback on the project's real web app, tokens
stored encrypted; wrong, replayed and expired states; a wrong client secret; refreshes, a
refused refresh, sign-out; and a state spent exactly once by concurrent threads and
processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from bot.entcore.oauth import (
    ClientRejected,
    EntLink,
    EntUnavailable,
    LinkedAccount,
    NotLinked,
    OAuthConfig,
    RelinkNeeded,
    TokenRefused,
    read_userinfo,
)
from bot.settings import SettingsError, load_settings
from bot.storage.ent_tokens import EntTokens, StateExpired, StateRejected, TokenKeyError
from bot.storage.store import Store
from bot.web.metrics import Metrics
from bot.web.oauth import oauth_callback
from bot.web.server import WebContext, create_app
from tests.conftest import postgres_schema
from tests.fake_entcore_oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeEntcoreOAuth,
    FakeUser,
    free_port,
    serve_in_thread,
)
from tests.support import Clock, migrated_store

SCHOOL = "5b3c1f0e-0590-4a01-9c1d-0590123a0000"
OTHER_SCHOOL = "5b3c1f0e-0590-4a01-9c1d-0590124b0000"
DIRECTOR = FakeUser(
    "u-claire",
    "claire.martin",
    "Claire",
    "Martin",
    structures=[SCHOOL],
    functions={"ADMIN_LOCAL": [SCHOOL, OTHER_SCHOOL]},
)
TEACHER = FakeUser("u-paul", "paul.leroy", "Paul", "Leroy", profile="Teacher", structures=[SCHOOL])
SPEAKER = "telegram:4242"
LINKED_PAGE = "Compte relié, vous pouvez revenir dans Telegram"


@dataclass
class Setup:
    """The fake ENT, the assistant's web app, and the sign-in service between them."""

    ent: FakeEntcoreOAuth
    link: EntLink
    store: Store
    public_url: str
    key: str
    told: list[LinkedAccount] = field(default_factory=list)

    def approve(self, speaker: str = SPEAKER) -> str:
        """/connexion, then the ENT's page approved: the callback URL the browser goes to."""
        url = self.link.start(speaker)
        answer = httpx.get(url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(f"{self.public_url}/oauth/callback?code=")
        return location


def _setup(
    tmp_path: Path, clock: Clock, secret: str = CLIENT_SECRET, *, failing_hook: bool = False
) -> Iterator[Setup]:
    ent = FakeEntcoreOAuth(clock=clock)
    ent.add_user(replace(DIRECTOR))
    ent.add_user(replace(TEACHER))
    ent.sign_in(DIRECTOR.id)
    store = Store.from_url(f"sqlite:///{tmp_path / 'oauth.db'}")
    store.upgrade()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    with serve_in_thread(ent.app) as ent_url:
        config = OAuthConfig(ent_url, CLIENT_ID, secret, public_url)
        key = Fernet.generate_key().decode()
        link = EntLink(config, EntTokens(store, key), clock=clock)
        setup = Setup(ent, link, store, public_url, key)

        async def tell(account: LinkedAccount) -> None:
            setup.told.append(account)

        def tell_and_fail(account: LinkedAccount) -> None:
            assert threading.current_thread() is not threading.main_thread()
            setup.told.append(account)
            raise RuntimeError("the chat is down")

        hook = tell_and_fail if failing_hook else tell
        context = WebContext(store.engine, Metrics(), oauth_callback=oauth_callback(link, hook))
        try:
            with serve_in_thread(create_app(context), port):
                yield setup
        finally:
            link.client.close()
            store.dispose()


@pytest.fixture
def setup(tmp_path: Path, clock: Clock) -> Iterator[Setup]:
    yield from _setup(tmp_path, clock)


def _raw_database(store: Store) -> str:
    """Every value of every ENT table, as text: what a copy of the database shows."""
    with store.engine.connect() as connection:
        rows = [
            *connection.execute(text("SELECT * FROM ent_tokens")),
            *connection.execute(text("SELECT * FROM ent_oauth_states")),
        ]
    return repr(rows)


# --- the whole sign-in ------------------------------------------------------------------


def test_a_director_signs_in_and_the_tokens_are_stored_encrypted(setup: Setup) -> None:
    url = setup.link.start(SPEAKER)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{setup.link.config.ent_url}/auth/oauth2/auth?")
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{setup.public_url}/oauth/callback"]
    assert query["scope"] == ["userinfo directory"]
    state = query["state"][0]
    assert state not in _raw_database(setup.store)  # only its hash is kept

    approved = httpx.get(url, follow_redirects=False)
    assert approved.status_code == 302
    page = httpx.get(approved.headers["location"])
    assert page.status_code == 200 and LINKED_PAGE in page.text
    assert page.headers["cache-control"] == "no-store"

    # The core was told: who, and director (ADML) of which structures.
    assert len(setup.told) == 1
    told = setup.told[0]
    assert (told.speaker_key, told.login, told.user_id) == (SPEAKER, "claire.martin", "u-claire")
    assert told.adml_structures == (SCHOOL, OTHER_SCHOOL) and told.is_director
    assert told.display_name == "Claire Martin"
    assert setup.link.account(SPEAKER) == replace(told, display_name="")
    # userinfo asked in version 2.0 (1.0 hides the functions); credentials sent as Basic.
    assert setup.ent.userinfo_versions == ["2.0"]
    assert setup.ent.token_requests == [("authorization_code", "basic")]

    # The bearer token acts as the director; no token of the ENT is readable in the database.
    assert setup.link.bearer_token(SPEAKER) in setup.ent.live_tokens(DIRECTOR.id)
    raw = _raw_database(setup.store)
    secrets = setup.ent.all_secrets()
    assert len(secrets) == 2 and SPEAKER in raw
    assert [s for s in secrets if s in raw] == []


def test_a_teacher_is_linked_without_the_director_role(setup: Setup) -> None:
    setup.ent.sign_in(TEACHER.id)
    assert LINKED_PAGE in httpx.get(setup.approve()).text
    assert setup.told[0].login == "paul.leroy"
    assert setup.told[0].adml_structures == () and not setup.told[0].is_director


def test_a_failing_hook_does_not_undo_the_link(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for failing in _setup(tmp_path, clock, failing_hook=True):
        page = httpx.get(failing.approve())
        assert page.status_code == 200 and LINKED_PAGE in page.text
        assert [t.login for t in failing.told] == ["claire.martin"]
        assert failing.link.account(SPEAKER) is not None
        assert "could not be told" in caplog.text


# --- states: wrong, replayed, expired ---------------------------------------------------


def test_a_wrong_state_is_refused(setup: Setup) -> None:
    location = setup.approve()
    forged = location.split("&state=")[0] + "&state=not-the-state"
    page = httpx.get(forged)
    assert page.status_code == 400 and "pas valable" in page.text
    missing = httpx.get(f"{setup.public_url}/oauth/callback?code=abc")
    assert missing.status_code == 400 and "incomplet" in missing.text
    assert setup.told == [] and setup.link.account(SPEAKER) is None
    # The genuine state still works once.
    assert httpx.get(location).status_code == 200


def test_a_replayed_state_is_refused(setup: Setup) -> None:
    location = setup.approve()
    assert httpx.get(location).status_code == 200
    again = httpx.get(location)
    assert again.status_code == 400 and "déjà servi" in again.text
    assert len(setup.told) == 1


def test_a_state_expires_after_ten_minutes(setup: Setup, clock: Clock) -> None:
    url = setup.link.start(SPEAKER)
    clock.advance(minutes=9, seconds=59)
    assert httpx.get(httpx.get(url).headers["location"]).status_code == 200

    url = setup.link.start("telegram:late")
    clock.advance(minutes=11)
    page = httpx.get(httpx.get(url).headers["location"])
    assert page.status_code == 400 and "expiré" in page.text
    assert setup.link.account("telegram:late") is None
    assert [t.speaker_key for t in setup.told] == [SPEAKER]


def test_an_error_from_the_ent_spends_the_state(setup: Setup) -> None:
    setup.ent.app_scope = {"userinfo"}  # the application lacks `directory`: server_error
    redirect = httpx.get(setup.link.start(SPEAKER)).headers["location"]
    assert "error=server_error" in redirect
    page = httpx.get(redirect)
    assert page.status_code == 400 and "/connexion" in page.text
    state = parse_qs(urlsplit(redirect).query)["state"][0]
    with pytest.raises(StateRejected):
        setup.link.tokens.consume_state(state, Clock().now)
    assert setup.told == []


# --- the client's credentials -----------------------------------------------------------


def test_a_wrong_client_secret_is_told_and_nothing_is_stored(tmp_path: Path, clock: Clock) -> None:
    for wrong in _setup(tmp_path, clock, secret="not-the-secret"):
        page = httpx.get(wrong.approve())
        assert page.status_code == 502
        assert "ENT_CLIENT_SECRET" in page.text and "administrateur" in page.text
        assert wrong.told == [] and wrong.link.account(SPEAKER) is None
        assert wrong.ent.tokens == {}


def test_a_refresh_with_a_wrong_secret_keeps_the_link(setup: Setup, clock: Clock) -> None:
    httpx.get(setup.approve())
    setup.ent.client_secret = "rotated-on-the-ent-side"
    clock.advance(hours=2)
    with pytest.raises(ClientRejected, match="ENT_CLIENT_SECRET"):
        setup.link.bearer_token(SPEAKER)
    assert setup.link.account(SPEAKER) is not None  # the director is not at fault


def test_userinfo_refusals_and_failures_are_told_apart() -> None:
    def answering(status: int, **headers: str) -> httpx.Client:
        return httpx.Client(
            transport=httpx.MockTransport(lambda _: httpx.Response(status, headers=headers))
        )

    for refused in (answering(401), answering(302, location="/auth/login")):
        with refused, pytest.raises(TokenRefused, match="reconnectez-vous avec /connexion"):
            read_userinfo(refused, "https://ent.test", "token")
    with answering(503) as down, pytest.raises(EntUnavailable, match="réessayez"):
        read_userinfo(down, "https://ent.test", "token")


# --- refresh, refused refresh, sign-out -------------------------------------------------


def test_an_expired_access_token_is_refreshed(setup: Setup, clock: Clock) -> None:
    httpx.get(setup.approve())
    first = setup.link.bearer_token(SPEAKER)
    clock.advance(minutes=30)
    assert setup.link.bearer_token(SPEAKER) == first  # still valid: no call to the ENT
    assert [g for g, _ in setup.ent.token_requests] == ["authorization_code"]

    clock.advance(minutes=29, seconds=30)  # within a minute of its end: refreshed first
    second = setup.link.bearer_token(SPEAKER)
    assert second != first
    assert setup.ent.token_requests[-1] == ("refresh_token", "basic")
    clock.advance(minutes=1)
    assert setup.ent.live_tokens(DIRECTOR.id) == [second]  # the first one has expired
    assert setup.link.bearer_token(SPEAKER) == second

    # The ADML scope is read again with the new token.
    setup.ent.users[DIRECTOR.id].functions = {"ADMIN_LOCAL": [SCHOOL]}
    third = setup.link.bearer_token(SPEAKER, force_refresh=True)
    assert third not in (first, second)
    account = setup.link.account(SPEAKER)
    assert account is not None and account.adml_structures == (SCHOOL,)
    assert [s for s in setup.ent.all_secrets() if s in _raw_database(setup.store)] == []


def test_a_refused_refresh_asks_to_sign_in_again(setup: Setup, clock: Clock) -> None:
    httpx.get(setup.approve())
    setup.ent.revoke(DIRECTOR.id)  # signed out of the ENT: its authorizations are gone
    clock.advance(hours=2)
    with pytest.raises(RelinkNeeded, match="reconnectez-vous avec /connexion"):
        setup.link.bearer_token(SPEAKER)
    assert setup.link.account(SPEAKER) is None
    with pytest.raises(NotLinked, match="/connexion"):
        setup.link.bearer_token(SPEAKER)


def test_signing_out_deletes_the_tokens(setup: Setup) -> None:
    httpx.get(setup.approve())
    pending = setup.link.start(SPEAKER)  # a sign-in under way is withdrawn too
    assert setup.link.unlink(SPEAKER)
    assert _raw_database(setup.store) == "[]"
    with pytest.raises(NotLinked):
        setup.link.bearer_token(SPEAKER)
    assert not setup.link.unlink(SPEAKER)
    assert httpx.get(httpx.get(pending).headers["location"]).status_code == 400


def test_a_changed_key_asks_to_sign_in_again(setup: Setup) -> None:
    httpx.get(setup.approve())
    new_key = Fernet.generate_key().decode()
    with pytest.raises(TokenKeyError):
        EntTokens(setup.store, new_key).get(SPEAKER)
    # Rotation: the new key first, the old one after it; what is stored is still read.
    rotated = EntTokens(setup.store, f"{new_key},{setup.key}").get(SPEAKER)
    assert rotated is not None and rotated.login == "claire.martin"
    # The old key dropped: the link cannot be read, and must be made again.
    moved = EntLink(setup.link.config, EntTokens(setup.store, new_key), setup.link.client)
    with pytest.raises(RelinkNeeded, match="reconnectez-vous"):
        moved.bearer_token(SPEAKER)
    assert setup.link.account(SPEAKER) is None


# --- a state is spent exactly once ------------------------------------------------------

STATES = 30
RACERS = 6


def _race(url: str, key: str, states: list[str], seed: int, barrier: Any) -> list[str]:
    """Try to spend every state; the ones this racer won."""
    store = Store.from_url(url)
    tokens = EntTokens(store, key)
    order = list(states)
    random.Random(seed).shuffle(order)
    won = []
    try:
        barrier.wait(timeout=60)
        for state in order:
            with contextlib.suppress(StateRejected):
                won.append(f"{state}={tokens.consume_state(state, Clock().now)}")
    finally:
        store.dispose()
    return won


def _race_in_process(
    url: str, key: str, states: list[str], seed: int, barrier: Any, out: Any
) -> None:
    """A racer in a process of its own, reporting to `out`."""
    try:
        out.put(_race(url, key, states, seed, barrier))
    except BaseException as error:  # the parent must hear of it
        out.put(repr(error))
        raise


def _issued(url: str, key: str) -> dict[str, str]:
    with migrated_store(url) as store:
        tokens = EntTokens(store, key)
        return {
            tokens.new_state(f"telegram:{n}", Clock().now): f"telegram:{n}" for n in range(STATES)
        }


def _check(issued: dict[str, str], wins: list[list[str]]) -> None:
    spent = Counter(w for won in wins for w in won)
    assert sorted(spent) == sorted(f"{s}={k}" for s, k in issued.items())
    assert set(spent.values()) == {1}, spent
    assert sum(1 for won in wins if won) >= 2 or RACERS == 1  # they did race


def test_a_state_is_spent_once_by_concurrent_threads(database_url: str) -> None:
    key = Fernet.generate_key().decode()
    issued = _issued(database_url, key)
    barrier = threading.Barrier(RACERS)
    wins: list[list[str]] = [[] for _ in range(RACERS)]

    def racer(n: int) -> None:
        wins[n] = _race(database_url, key, list(issued), n, barrier)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _check(issued, wins)


def test_a_state_is_spent_once_by_concurrent_processes() -> None:
    with postgres_schema() as url:
        key = Fernet.generate_key().decode()
        issued = _issued(url, key)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(4)
        out = context.Queue()
        processes = [
            context.Process(
                target=_race_in_process,
                args=(url, key, list(issued), n, barrier, out),
                daemon=True,
            )
            for n in range(4)
        ]
        for process in processes:
            process.start()
        try:
            wins = [out.get(timeout=120) for _ in processes]
        finally:
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        assert all(isinstance(w, list) for w in wins), wins
        _check(issued, wins)


def test_an_expired_state_is_spent_too(tmp_path: Path, clock: Clock) -> None:
    with migrated_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        tokens = EntTokens(store, Fernet.generate_key().decode())
        state = tokens.new_state(SPEAKER, clock.now)
        clock.advance(minutes=10)
        with pytest.raises(StateExpired):
            tokens.consume_state(state, clock.now)
        with pytest.raises(StateRejected) as again:
            tokens.consume_state(state, clock.now)
        assert type(again.value) is StateRejected
        kept = tokens.new_state(SPEAKER, clock.now)
        clock.advance(minutes=10, seconds=1)
        assert tokens.purge_states(clock.now) == 1
        with pytest.raises(StateRejected):
            tokens.consume_state(kept, clock.now)


# --- settings ---------------------------------------------------------------------------


def test_the_entcore_backend_asks_for_its_settings() -> None:
    key = Fernet.generate_key().decode()
    with pytest.raises(SettingsError, match="DIRECTORY_BACKEND=entcore demande ENT_URL"):
        load_settings(_env_file=None, directory_backend="entcore")
    with pytest.raises(SettingsError, match="ENT_CLIENT_SECRET, PUBLIC_URL, ENT_TOKEN_KEY"):
        load_settings(
            _env_file=None,
            directory_backend="entcore",
            ent_url="https://ent.test",
            ent_client_id="c",
        )
    with pytest.raises(SettingsError, match="ENT_TOKEN_KEY : doit être une clé Fernet"):
        load_settings(_env_file=None, ent_token_key="not-a-key")
    console = load_settings(
        _env_file=None,
        directory_backend="entcore",
        ent_url="https://ent.test/",
        ent_access_token="t",
    )
    assert console.ent_url == "https://ent.test"
    with pytest.raises(SettingsError, match="ENT_CLIENT_ID, ENT_CLIENT_SECRET, PUBLIC_URL"):
        OAuthConfig.from_settings(console)
    full = load_settings(
        _env_file=None,
        directory_backend="entcore",
        ent_url="https://ent.test",
        ent_client_id="assistant",
        ent_client_secret="the-client-secret",
        public_url="https://assistant.test/",
        ent_token_key=f"{key},{Fernet.generate_key().decode()}",
    )
    config = OAuthConfig.from_settings(full)
    assert config.redirect_uri == "https://assistant.test/oauth/callback"
    assert config.client_secret == "the-client-secret"
    assert "the-client-secret" not in repr(full) and key not in repr(full)
    assert "the-client-secret" in full.secrets()  # masked in the logs
