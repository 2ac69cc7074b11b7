"""The command line end to end, through a subprocess, as scripts and operators use it."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.app import DEMO_SCHOOL, open_store
from bot.cli.storage import add_commands
from bot.storage.store import Store
from tests.support import DEV_SCHOOL, DEV_SET, ROOT, need_shared

JJ = "0590123A"


def run_bot(*args: str, stdin: str = "", db: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    if db is not None:
        env["DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=db.parent if db else ROOT,
        timeout=120,
    )


def jsonl(*items: dict) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def test_help_lists_the_contract_commands() -> None:
    out = run_bot("--help").stdout
    for command in (
        "chat",
        "classify",
        "eval",
        "knowledge",
        "directory",
        "audit",
        "db",
        "accounts",
    ):
        assert command in out


def test_knowledge_check_is_clean() -> None:
    result = run_bot("knowledge", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 erreur(s)" in result.stdout


def test_chat_jsonl_answers_the_educonnect_question(tmp_path: Path) -> None:
    result = run_bot(
        "chat",
        "--jsonl",
        stdin=jsonl({"text": "comment activer mon compte educonnect"}),
        db=tmp_path / "a.db",
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[0])
    assert line["intent"] == "educonnect.activate"
    assert "FranceConnect" in line["replies"][0]["text"]


def test_chat_jsonl_as_director_changes_the_database_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "school.db"
    first = run_bot(
        "chat",
        "--jsonl",
        "--as",
        "claire.martin",
        stdin=jsonl({"text": "supprime le groupe APE 2021"}),
        db=db,
    )
    reply = json.loads(first.stdout.splitlines()[0])
    assert reply["intent"] == "action.delete_group"
    assert reply["replies"][-1]["buttons"] == ["Confirmer", "Annuler"]
    # A later run continues the conversation: the pending confirmation survived.
    second = run_bot(
        "chat", "--jsonl", "--as", "claire.martin", stdin=jsonl({"press": "Confirmer"}), db=db
    )
    done = json.loads(second.stdout.splitlines()[0])
    assert "C'est fait" in done["replies"][0]["text"]
    exported = json.loads(run_bot("directory", "export", db=db).stdout)
    assert "grp-ape-2021" not in {g["id"] for g in exported["groups"]}
    audit = [json.loads(x) for x in run_bot("audit", "--json", db=db).stdout.splitlines()]
    assert audit[-1]["action"] == "action.delete_group" and audit[-1]["outcome"] == "done"


def test_chat_rejects_an_unknown_login(tmp_path: Path) -> None:
    result = run_bot("chat", "--jsonl", "--as", "nobody.here", stdin="", db=tmp_path / "b.db")
    assert result.returncode == 1
    assert "Compte inconnu" in result.stderr and "Traceback" not in result.stderr


def test_chat_jsonl_survives_bad_lines(tmp_path: Path) -> None:
    result = run_bot(
        "chat",
        "--jsonl",
        stdin="not json\n[1,2]\n" + jsonl({"text": "bonjour"}),
        db=tmp_path / "c.db",
    )
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert "error" in lines[0] and "error" in lines[1]
    assert lines[2]["intent"] == "dialogue.greet"


def test_classify_jsonl_with_and_without_a_directory() -> None:
    messages = jsonl(
        {"text": "bloque les parents et les eleves"},
        {"text": "rattache Lucas Morel au CM1"},
        {"text": "quel temps fera-t-il demain"},
    )
    plain = [
        json.loads(x) for x in run_bot("classify", "--jsonl", stdin=messages).stdout.splitlines()
    ]
    assert plain[0]["intent"] == "action.block"
    assert plain[0]["entities"] == {"profiles": ["Relative", "Student"]}
    assert plain[2]["intent"] == "out_of_scope"
    assert 0.0 <= plain[1]["confidence"] <= 1.0
    need_shared(DEV_SCHOOL)
    with_school = [
        json.loads(x)
        for x in run_bot(
            "classify",
            "--jsonl",
            "--directory",
            str(DEV_SCHOOL),
            "--structure",
            "0590456B",
            stdin=messages,
        ).stdout.splitlines()
    ]
    assert with_school[1]["intent"] == "action.attach_teacher"
    assert with_school[1]["entities"] == {"teacher": "usr-t09", "class": "cls-cm1"}


def test_classify_refuses_an_unknown_structure() -> None:
    need_shared(DEV_SCHOOL)
    result = run_bot("classify", "--jsonl", "--directory", str(DEV_SCHOOL), "--structure", "X")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_dev_set_accuracy_stays_above_the_targets() -> None:
    need_shared(DEV_SET)
    need_shared(DEV_SCHOOL)
    args = ["eval", str(DEV_SET), "--json"]
    args += ["--directory", str(DEV_SCHOOL), "--structure", "0590456B"]
    result = run_bot(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accuracy_faq_dialogue"] >= 0.95
    assert report["accuracy_in_scope"] >= 0.90
    assert report["oos_rejected"] >= 0.90
    assert report["in_scope_wrongly_rejected"] <= 0.03
    assert report["accuracy_action_query"] >= 0.90
    assert report["entity_exact_match"] >= 0.90


def test_unreachable_database_and_bad_settings_give_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    for bad in (
        {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/x"},
        {"DATABASE_URL": "pas-une-url"},
        {"PORT": "abc"},
    ):
        result = subprocess.run(
            [sys.executable, "-m", "bot", "chat", "--jsonl"],
            input="",
            capture_output=True,
            text=True,
            env={**env, **bad},
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- command line -----------------------------------------------------------------------


def _run(settings: SimpleNamespace, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="bot")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args, settings)


def test_cli_directory_audit_and_accounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = SimpleNamespace(database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    assert _run(settings, "db", "upgrade") == 0
    assert "table" in capsys.readouterr().out
    assert _run(settings, "directory", "import", str(DEMO_SCHOOL)) == 0
    assert capsys.readouterr().out.startswith("Annuaire importé : 2 structure(s)")
    output = tmp_path / "out.json"
    assert _run(settings, "directory", "export", "--output", str(output)) == 0
    assert json.loads(output.read_text(encoding="utf-8")) == json.loads(
        DEMO_SCHOOL.read_text(encoding="utf-8")
    )
    assert _run(settings, "directory", "export") == 0
    assert "École primaire Jean Jaurès" in capsys.readouterr().out  # ensure_ascii=False

    bad = tmp_path / "bad.json"
    bad.write_text("{pas du json", encoding="utf-8")
    assert _run(settings, "directory", "import", str(bad)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "JSON" in err and "Traceback" not in err

    store = Store.from_url(settings.database_url)
    try:
        store.audit.record(
            "claire.martin",
            "action.block",
            ["usr-p01"],
            "done",
            "1 compte",
            JJ,
            at=datetime(2025, 9, 1, 8, 0, tzinfo=UTC),
        )
    finally:
        store.dispose()
    assert _run(settings, "audit", "--json") == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["who"] == "claire.martin" and line["outcome"] == "done"
    assert _run(settings, "audit") == 0
    assert "claire.martin action.block done usr-p01 — 1 compte" in capsys.readouterr().out

    assert _run(settings, "accounts", "invite", "claire.martin") == 0
    code = capsys.readouterr().out.split()[0]
    assert len(code) == 8
    store = Store.from_url(settings.database_url)
    try:
        assert store.accounts.redeem("tg:1", code) == "claire.martin"
    finally:
        store.dispose()
    assert _run(settings, "accounts", "list") == 0
    assert "claire.martin\ttg:1" in capsys.readouterr().out
    assert _run(settings, "accounts", "revoke", "claire.martin") == 0
    assert "1 liaison" in capsys.readouterr().out
    assert _run(settings, "accounts", "invite", "nobody") == 1
    assert "nobody" in capsys.readouterr().err
    assert _run(settings, "accounts", "revoke", "nobody") == 1


def test_cli_bad_database_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    settings = SimpleNamespace(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert _run(settings, "audit") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Base de données" in err


def test_open_store_seeds_the_demo_once(tmp_path: Path) -> None:
    settings = SimpleNamespace(database_url=f"sqlite:///{tmp_path / 'fresh.db'}")
    store = open_store(settings)
    try:
        assert store.directory.user_by_login("claire.martin") is not None
        store.directory.delete_group("grp-gar")
    finally:
        store.dispose()
    store = open_store(settings)
    try:
        # A second start keeps the changed directory rather than reseeding it.
        assert store.directory.group("grp-gar") is None
    finally:
        store.dispose()
