"""The processes of `bench load`: webhook instances started, stopped and restarted on their
port, their environment, and the database connections the faults kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.channels.telegram.fake_bot_api import FAKE_TOKEN

SECRET = "load-secret-" + "x" * 20
START_SECONDS = 120.0
# Clock ticks per second of /proc/<pid>/stat's CPU times.
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def instance_env(api_url: str, database_url: str) -> dict[str, str]:
    """The environment shared by every instance: the fake Bot API, the schema, the secret."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_", "PORT"))
    }
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.update(
        TELEGRAM_TOKEN=FAKE_TOKEN,
        TELEGRAM_API_URL=api_url,
        DATABASE_URL=database_url,
        WEBHOOK_SECRET=SECRET,
        LOG_LEVEL="WARNING",
    )
    return env


def tagged(url: str) -> tuple[str, str]:
    """The URL with an application_name that pg_terminate_backend can pick out, and the tag."""
    tag = f"load_{uuid.uuid4().hex[:8]}"
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}application_name={tag}", tag


def kill_connections(url: str, tag: str) -> int:
    """Terminate every PostgreSQL connection of the instances; how many there were."""
    engine = create_engine(make_url(url).set(query={}))
    try:
        with engine.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                    "pg_stat_activity WHERE application_name = :tag) AS killed"
                ),
                {"tag": tag},
            ).scalar_one()
            connection.commit()
            return int(killed)
    finally:
        engine.dispose()


class Instance:
    """One `python -m bot webhook` process, always on the same port (restarts included)."""

    def __init__(self, index: int, env: dict[str, str], logs: Path, demo: bool) -> None:
        self.index = index
        self.port = free_port()
        self.env = {
            **env,
            "PORT": str(self.port),
            "WEBHOOK_URL": f"http://127.0.0.1:{self.port}/telegram",
        }
        self.log = logs / f"instance-{index}.log"
        self.demo = demo
        self.process: subprocess.Popen[bytes] | None = None
        # CPU seconds used by the processes already stopped (a restart starts a new one).
        self.cpu_before = 0.0

    @property
    def url(self) -> str:
        """Where Telegram (the generator) POSTs updates."""
        return f"http://127.0.0.1:{self.port}/telegram"

    async def start(self) -> float:
        """Start the process; wait until it accepts connections; the seconds that took."""
        started = time.monotonic()
        command = [sys.executable, "-m", "bot", "webhook"] + (["--demo"] if self.demo else [])
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        while time.monotonic() - started < START_SECONDS:
            if self.process.poll() is not None:
                raise RuntimeError(f"instance {self.index} exited:\n{self.log_tail()}")
            if await _listening(self.port):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise RuntimeError(f"instance {self.index} did not listen within {START_SECONDS} s")

    async def stop(self) -> None:
        """SIGTERM, as a deployment does: the updates accepted are processed before exit."""
        if self.process is None or self.process.poll() is not None:
            return
        cpu = self.cpu_seconds()
        self.process.send_signal(signal.SIGTERM)
        for _ in range(600):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        else:
            self.process.kill()
            self.process.wait()
        self.cpu_before += cpu

    def cpu_seconds(self) -> float:
        """CPU seconds of this instance so far (every process it had); 0 where /proc lacks."""
        current = 0.0
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{self.process.pid}/stat").read_text()
                # Fields after the command name (which may hold spaces): utime, stime are 14, 15.
                fields = stat.rsplit(")", 1)[1].split()
                current = (int(fields[11]) + int(fields[12])) / _TICKS
        return self.cpu_before + current

    def log_tail(self, lines: int = 30) -> str:
        """The end of this instance's log, for the error that says why it exited."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def tracebacks(self) -> int:
        """Tracebacks written in this instance's log."""
        return self.log.read_text(errors="replace").count("Traceback")


async def _listening(port: int) -> bool:
    """Whether something accepts connections on that port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.5)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
