"""The command line end to end, through a subprocess, as scripts and operators use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"
DEV_SCHOOL = SHARED / "eval" / "dev-school.json"


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
    if not DEV_SCHOOL.exists():
        pytest.skip("shared/eval/dev-school.json absent")
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
    if not DEV_SCHOOL.exists():
        pytest.skip("shared/eval/dev-school.json absent")
    result = run_bot("classify", "--jsonl", "--directory", str(DEV_SCHOOL), "--structure", "X")
    assert result.returncode == 1 and "Traceback" not in result.stderr


@pytest.mark.skipif(not DEV_SET.exists(), reason="shared/eval/dev.jsonl absent")
def test_dev_set_accuracy_stays_above_the_targets() -> None:
    args = ["eval", str(DEV_SET), "--json"]
    if DEV_SCHOOL.exists():
        args += ["--directory", str(DEV_SCHOOL), "--structure", "0590456B"]
    result = run_bot(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accuracy_faq_dialogue"] >= 0.95
    assert report["accuracy_in_scope"] >= 0.90
    assert report["oos_rejected"] >= 0.90
    assert report["in_scope_wrongly_rejected"] <= 0.03
    if DEV_SCHOOL.exists():
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
