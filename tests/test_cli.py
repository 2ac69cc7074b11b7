"""The command line end to end, through a subprocess, as scripts and operators use it."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from bot.app import DEMO_SCHOOL
from bot.cli.errors import Refused, guarded
from bot.cli.main import main
from bot.cli.storage import add_commands
from bot.settings import SettingsError
from bot.storage.accounts import UnknownLogin
from bot.storage.school_rules import SchoolFileError
from bot.storage.store import Store
from tests.support import DEV_SCHOOL, DEV_SET, ROOT, need_shared

JJ = "0590123A"


def run_bot(
    *args: str, stdin: str = "", db: Path | None = None, home: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m bot ARGS`: with `db`, DATABASE_URL names that SQLite file (an operator's
    database); with `home`, no DATABASE_URL at all and `home` as the working directory (the
    README's embedded default, `assistant-rentree.db` there)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TELEGRAM_") and k != "DATABASE_URL"
    }
    if db is not None:
        env["DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=home or (db.parent if db else ROOT),
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
    # The README's first command on a fresh machine: no DATABASE_URL, no db upgrade before.
    result = run_bot(
        "chat",
        "--jsonl",
        stdin=jsonl({"text": "comment activer mon compte educonnect"}),
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "assistant-rentree.db").is_file()
    line = json.loads(result.stdout.splitlines()[0])
    assert line["intent"] == "educonnect.activate"
    assert "FranceConnect" in line["replies"][0]["text"]


def test_chat_jsonl_as_director_changes_the_database_and_persists(tmp_path: Path) -> None:
    # The embedded default, seeded with the demo school by its first start.
    first = run_bot(
        "chat",
        "--jsonl",
        "--as",
        "claire.martin",
        stdin=jsonl({"text": "supprime le groupe APE 2021"}),
        home=tmp_path,
    )
    reply = json.loads(first.stdout.splitlines()[0])
    assert reply["intent"] == "action.delete_group"
    assert reply["replies"][-1]["buttons"] == ["Confirmer", "Annuler"]
    # A later run continues the conversation: the pending confirmation survived.
    second = run_bot(
        "chat",
        "--jsonl",
        "--as",
        "claire.martin",
        stdin=jsonl({"press": "Confirmer"}),
        home=tmp_path,
    )
    done = json.loads(second.stdout.splitlines()[0])
    assert "C'est fait" in done["replies"][0]["text"]
    exported = json.loads(run_bot("directory", "export", home=tmp_path).stdout)
    assert "grp-ape-2021" not in {g["id"] for g in exported["groups"]}
    audit = [json.loads(x) for x in run_bot("audit", "--json", home=tmp_path).stdout.splitlines()]
    assert audit[-1]["action"] == "action.delete_group" and audit[-1]["outcome"] == "done"


def test_audit_reads_one_line_an_entry_with_school_who_and_accounts(tmp_path: Path) -> None:
    said = run_bot(
        "chat",
        "--jsonl",
        "--as",
        "claire.martin",
        stdin=jsonl(
            {"text": "bloque les parents"},
            {"press": "Confirmer"},
            {"text": "détache hugo lambert"},
            {"text": "supprime le groupe APE 2021-2022"},
            {"text": "oui"},
        ),
        home=tmp_path,
    )
    assert said.returncode == 0, said.stderr
    result = run_bot("audit", home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3  # a two-line detail (« N'oubliez pas… ») stays on its line
    block, detach, delete = lines
    for line in lines:
        assert " | 0590123A École primaire Jean Jaurès | console:claire.martin | " in line
    assert "| action.block | done | Camille Dumont (usr-p01), " in block
    assert block.count("(usr-") == 14 and "Relative" not in block
    assert "Ana Ferreira" not in block  # already blocked: not changed by this order
    assert "N'oubliez pas de les débloquer" in block
    # The pending detach, replaced by the next order, names the teacher it would have detached.
    assert "| action.detach_teacher | superseded | Hugo Lambert (usr-t11) — " in detach
    # A deleted group is still named: the directory remembers what it deleted.
    assert "| action.delete_group | done | APE 2021-2022 (grp-ape-2021) — " in delete

    objects = [
        json.loads(x) for x in run_bot("audit", "--json", home=tmp_path).stdout.splitlines()
    ]
    assert [o["outcome"] for o in objects] == ["done", "superseded", "done"]
    for entry in objects:
        assert entry["who"] == "console:claire.martin"
        assert (entry["structure_id"], entry["structure"]) == (JJ, "École primaire Jean Jaurès")
    assert len(objects[0]["targets"]) == 14 and "usr-p01" in objects[0]["targets"]


def test_chat_rejects_an_unknown_login(tmp_path: Path) -> None:
    result = run_bot("chat", "--jsonl", "--as", "nobody.here", stdin="", home=tmp_path)
    assert result.returncode == 1
    assert "Compte inconnu" in result.stderr and "Traceback" not in result.stderr


def test_chat_jsonl_survives_bad_lines(tmp_path: Path) -> None:
    result = run_bot(
        "chat",
        "--jsonl",
        stdin="not json\n[1,2]\n" + jsonl({"text": "bonjour"}),
        home=tmp_path,
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


def test_classify_and_eval_never_open_the_database(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    lines = tmp_path / "lines.jsonl"
    lines.write_text(jsonl({"text": "bonjour", "intent": "dialogue.greet"}), encoding="utf-8")
    classified = run_bot("classify", "--jsonl", stdin=jsonl({"text": "bonjour"}), db=db)
    assert classified.returncode == 0, classified.stderr
    evaluated = run_bot("eval", str(lines), "--json", db=db)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy_in_scope"] == 1.0
    # Both understand on a throw-away in-memory store: DATABASE_URL is never created.
    assert not db.exists()


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
    """A storage sub-command with these settings, inside the guard that main() uses."""
    parser = argparse.ArgumentParser(prog="bot")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return guarded(lambda: args.func(args, settings))


def _raises(error: BaseException) -> int:
    raise error


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (SchoolFileError("fichier refusé : structure X"), 1, "Fichier refusé : structure X"),
        (UnknownLogin("Aucun compte « x »."), 1, "Aucun compte « x »."),
        (SettingsError("Configuration invalide — PORT"), 1, "Configuration invalide — PORT"),
        (Refused("TELEGRAM_TOKEN refusé"), 1, "TELEGRAM_TOKEN refusé"),
        (KeyError("Compte inconnu : x"), 1, "Compte inconnu : x"),
        (
            OperationalError("SELECT 1", {}, Exception("connexion refusée\ndétail")),
            1,
            "Base de données inaccessible ou invalide : connexion refusée",
        ),
        (FileNotFoundError(2, "No such file"), 1, "Erreur d'entrée-sortie : No such file"),
        (ZeroDivisionError("division by zero"), 1, "Erreur inattendue (ZeroDivisionError)"),
        (KeyboardInterrupt(), 130, ""),
        (BrokenPipeError(), 0, ""),
    ],
)
def test_one_guard_gives_one_line_and_the_contract_status(
    capsys: pytest.CaptureFixture[str], error: BaseException, status: int, line: str
) -> None:
    assert guarded(lambda: _raises(error)) == status
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == (1 if line else 0), err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMANDE" in capsys.readouterr().out


def test_the_console_script_runs_the_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    module, _, function = project["project"]["scripts"]["assistant-rentree"].partition(":")
    assert (module, function) == ("bot.cli.main", "main")


def test_cli_directory_audit_and_accounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = SimpleNamespace(
        database_url=f"sqlite:///{tmp_path / 'cli.db'}", database_url_given=True
    )
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
    assert (
        "| 0590123A École primaire Jean Jaurès | claire.martin | action.block | done | "
        "Camille Dumont (usr-p01) — 1 compte"
    ) in capsys.readouterr().out

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


def test_directory_import_refuses_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "school.db"
    settings = SimpleNamespace(database_url=f"sqlite:///{db}", database_url_given=True)
    assert _run(settings, "directory", "import", str(tmp_path / "missing.json")) == 1
    assert capsys.readouterr().err.startswith("Fichier introuvable")
    assert not db.exists()  # read before the database is opened
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    assert _run(settings, "directory", "import", str(listed)) == 1
    assert "objet JSON" in capsys.readouterr().err


def test_cli_bad_database_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    settings = SimpleNamespace(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", database_url_given=True
    )
    assert _run(settings, "audit") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Base de données" in err
