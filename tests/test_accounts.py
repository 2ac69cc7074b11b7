"""Telegram account linking: invitation codes, redemption, rate limiting, revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.storage.accounts import CODE_ALPHABET, AccountLinks, LinkError, UnknownLogin
from bot.storage.store import Store
from bot.storage.tables import LinkCodeRow
from tests.support import migrated_store

NOW = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The demo school on a SQLite file, or in a throw-away PostgreSQL schema."""
    with migrated_store(database_url, demo=True) as opened:
        yield opened


@pytest.fixture
def accounts(store: Store) -> AccountLinks:
    return store.accounts


def test_invite_and_redeem(accounts: AccountLinks) -> None:
    code = accounts.invite("claire.martin", NOW)
    assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert not set(code) & set("0O1IL")
    assert accounts.login_for("tg:100") is None
    assert accounts.redeem("tg:100", code, NOW + timedelta(minutes=5)) == "claire.martin"
    assert accounts.login_for("tg:100") == "claire.martin"
    links = accounts.list_links()
    assert [(link.login, link.speaker_key) for link in links] == [("claire.martin", "tg:100")]
    assert links[0].linked_at == NOW + timedelta(minutes=5)


def test_code_is_forgiving_about_case_and_spaces(accounts: AccountLinks) -> None:
    code = accounts.invite("parent.demo", NOW)
    typed = f" {code[:4].lower()} {code[4:]} "
    assert accounts.redeem("tg:7", typed, NOW) == "parent.demo"


def test_code_is_single_use(accounts: AccountLinks) -> None:
    code = accounts.invite("claire.martin", NOW)
    accounts.redeem("tg:1", code, NOW)
    with pytest.raises(LinkError, match="déjà été utilisé"):
        accounts.redeem("tg:2", code, NOW)
    assert accounts.login_for("tg:2") is None


def test_code_expires_after_48_hours(accounts: AccountLinks) -> None:
    late = accounts.invite("claire.martin", NOW)
    on_time = accounts.invite("claire.martin", NOW)
    with pytest.raises(LinkError, match="expiré"):
        accounts.redeem("tg:1", late, NOW + timedelta(hours=48, seconds=1))
    assert accounts.redeem("tg:1", on_time, NOW + timedelta(hours=47, minutes=59)) == (
        "claire.martin"
    )


def test_only_a_salted_hash_is_stored(store: Store, accounts: AccountLinks) -> None:
    first = accounts.invite("claire.martin", NOW)
    second = accounts.invite("claire.martin", NOW)
    with Session(store.engine) as session:
        hashes = list(session.scalars(select(col(LinkCodeRow.code_hash))))
    assert len(hashes) == 2
    for stored in hashes:
        assert first not in stored and second not in stored
        assert first.lower() not in stored and second.lower() not in stored
    # A per-code salt: the same scheme never gives two equal hashes.
    assert hashes[0] != hashes[1]


def test_unknown_or_removed_login_cannot_be_invited(accounts: AccountLinks) -> None:
    with pytest.raises(UnknownLogin, match="nobody"):
        accounts.invite("nobody", NOW)
    with pytest.raises(UnknownLogin, match="supprimé"):
        accounts.invite("gerard.lenoir", NOW)


def test_five_wrong_codes_then_refused_for_an_hour(accounts: AccountLinks) -> None:
    good = accounts.invite("claire.martin", NOW)
    for minute in range(5):
        with pytest.raises(LinkError, match="pas valable"):
            accounts.redeem("tg:9", "AAAA2222", NOW + timedelta(minutes=minute))
    # The sixth attempt is refused without looking at the code, even a good one.
    with pytest.raises(LinkError, match="attendez"):
        accounts.redeem("tg:9", good, NOW + timedelta(minutes=10))
    # Other speakers are not affected.
    other = accounts.invite("parent.demo", NOW)
    assert accounts.redeem("tg:10", other, NOW + timedelta(minutes=10)) == "parent.demo"
    # The window rolls: an hour after the first failures, the good code works.
    assert accounts.redeem("tg:9", good, NOW + timedelta(minutes=61)) == "claire.martin"


def test_reused_and_expired_codes_count_as_failures(accounts: AccountLinks) -> None:
    code = accounts.invite("claire.martin", NOW)
    accounts.redeem("tg:1", code, NOW)
    for _ in range(5):
        with pytest.raises(LinkError, match="déjà"):
            accounts.redeem("tg:2", code, NOW)
    with pytest.raises(LinkError, match="attendez"):
        accounts.redeem("tg:2", code, NOW)


def test_linking_replaces_the_previous_link(accounts: AccountLinks) -> None:
    accounts.redeem("tg:1", accounts.invite("claire.martin", NOW), NOW)
    accounts.redeem("tg:1", accounts.invite("parent.demo", NOW), NOW + timedelta(minutes=1))
    assert accounts.login_for("tg:1") == "parent.demo"
    assert [(r.login, r.speaker_key) for r in accounts.list_links()] == [("parent.demo", "tg:1")]


def test_unlink(accounts: AccountLinks) -> None:
    accounts.redeem("tg:1", accounts.invite("claire.martin", NOW), NOW)
    assert accounts.unlink("tg:1") is True
    assert accounts.unlink("tg:1") is False
    assert accounts.login_for("tg:1") is None


def test_revoke_unlinks_everyone_and_voids_unused_codes(accounts: AccountLinks) -> None:
    accounts.redeem("tg:1", accounts.invite("claire.martin", NOW), NOW)
    accounts.redeem("tg:2", accounts.invite("claire.martin", NOW), NOW + timedelta(minutes=1))
    accounts.redeem("tg:3", accounts.invite("parent.demo", NOW), NOW)
    pending = accounts.invite("claire.martin", NOW)
    assert accounts.revoke("claire.martin", NOW + timedelta(hours=1)) == ["tg:1", "tg:2"]
    assert accounts.login_for("tg:1") is None and accounts.login_for("tg:2") is None
    assert accounts.login_for("tg:3") == "parent.demo"
    with pytest.raises(LinkError):
        accounts.redeem("tg:4", pending, NOW + timedelta(hours=2))
    assert accounts.revoke("claire.martin") == []


def test_a_code_for_an_account_removed_since_is_refused(store: Store) -> None:
    code = store.accounts.invite("martine.duhamel", NOW)
    store.directory.remove_manual_account("usr-m03", NOW.date())
    with pytest.raises(LinkError, match="plus actif"):
        store.accounts.redeem("tg:5", code, NOW)
