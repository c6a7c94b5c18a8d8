"""DatabaseLogHandler: our own loggers' records into the `logs` table, off the caller's thread.

`emit()` only turns the record into a tuple and puts it on a bounded queue
(a few microseconds); a daemon thread drains the queue and writes batches with a
database connection of its own. When the queue is full (database down for long,
or a log storm) records are dropped and counted, never waited for. When the
database is unreachable the writer keeps its batch and retries with backoff;
once it is back it stores a WARNING row saying how many records were lost.

The handler never logs its own trouble through `logging` (that could feed it
back into itself): it writes one line to stderr, at most once a minute.

Configured in settings.LOGGING for the dashboard, monitoring, alerting and jobs
loggers; disabled under tests unless LOG_TO_DATABASE=1 or a test builds its own.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import sys
import threading
import time
import weakref

_LEVELS = (
    (logging.CRITICAL, "CRITICAL"),
    (logging.ERROR, "ERROR"),
    (logging.WARNING, "WARNING"),
    (logging.INFO, "INFO"),
)

# Attributes every LogRecord has; anything else came from `extra=` and goes to logs.extra.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
# `extra=` keys with a column of their own.
_COLUMNS = {"camera_id": 100, "event_id": None, "request_id": 36, "detection_id": None, "duration_ms": None}

INSERT_SQL = (
    "INSERT INTO logs (timestamp, level, component, message, camera_id, event_id, request_id,"
    " detection_id, duration_ms, extra, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'backend')"
)

_FORMATTER = logging.Formatter()
_handlers: weakref.WeakSet = weakref.WeakSet()
_writer_threads = threading.local()


def dropped_count() -> int:
    """Records this process dropped (queue full, or rows the database refused) since it started."""
    return sum(h.dropped for h in list(_handlers))


def level_name(levelno: int) -> str:
    for threshold, name in _LEVELS:
        if levelno >= threshold:
            return name
    return "DEBUG"


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL.
    return text.replace("\x00", "") if "\x00" in text else text


def _jsonable(value, depth: int = 0):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return _clean(value) if isinstance(value, str) else value
    if depth > 4:
        return _clean(repr(value))[:500]
    if isinstance(value, dict):
        return {_clean(str(k))[:200]: _jsonable(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in list(value)[:100]]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return _clean(str(value))[:2000]


def _int_or_none(value):
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if -(2**31) <= value < 2**31 else None


class DatabaseLogHandler(logging.Handler):
    def __init__(
        self,
        level=logging.NOTSET,
        *,
        enabled: bool = True,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_message_length: int = 10_000,
        alias: str = "default",
        connect=None,
    ):
        super().__init__(level)
        self.enabled = enabled
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_message_length = max_message_length
        self.alias = alias
        # A callable returning a DB-API connection; default: a fresh Django connection.
        self._connect = connect
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._dropped = 0
        self._drop_lock = threading.Lock()
        self._reported_drops = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()
        self._stopping = threading.Event()
        self._last_complaint = 0.0
        _handlers.add(self)
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (h := ref()) is not None and h._after_fork())

    # --- caller side -----------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        return self._dropped

    def _drop(self, n: int = 1) -> None:
        with self._drop_lock:
            self._dropped += n

    def emit(self, record: logging.LogRecord) -> None:
        if not self.enabled or getattr(_writer_threads, "active", False):
            return
        try:
            if self._thread is None or self._pid != os.getpid():
                self._start()
            self._queue.put_nowait(self._row(record))
        except queue.Full:
            self._drop()
        except Exception:
            self.handleError(record)

    def _row(self, record: logging.LogRecord) -> tuple:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = (self.formatter or _FORMATTER).formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{record.stack_info}"
        extras = record.__dict__.keys() - _STANDARD
        columns = {}
        extra = None
        if extras:
            extra = {}
            for key in extras:
                value = record.__dict__[key]
                if key in _COLUMNS:
                    columns[key] = value
                else:
                    extra[key] = _jsonable(value)
            extra = extra or None
        return (
            record.created,
            level_name(record.levelno),
            record.name[:50],
            message[: self.max_message_length],
            columns,
            extra,
        )

    # --- writer side -------------------------------------------------------------------------

    def _after_fork(self) -> None:
        # gunicorn and django-q2 fork workers: the parent's writer thread did not come
        # along, and a lock held by another parent thread at fork time never would be freed.
        self._start_lock = threading.Lock()
        self._drop_lock = threading.Lock()
        self._queue = queue.Queue(maxsize=self.capacity)
        self._thread = None
        self._pid = os.getpid()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid != os.getpid():
                # Forked child (gunicorn worker): the parent's thread and queue did not come along.
                self._queue = queue.Queue(maxsize=self.capacity)
                self._thread = None
                self._pid = os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="watchpost-db-log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        _writer_threads.active = True  # records logged from this thread are never enqueued
        q = self._queue
        conn = None
        backoff = 0.5
        pending: list[tuple] = []
        stop = False
        while not (stop and not pending):
            if not pending:
                try:
                    item = q.get(timeout=self.flush_interval)
                except queue.Empty:
                    if self._stopping.is_set():
                        break
                    continue
                taken = 1
                if item is None:
                    stop = True
                else:
                    pending.append(item)
                while len(pending) < self.batch_size and not stop:
                    try:
                        item = q.get_nowait()
                    except queue.Empty:
                        break
                    taken += 1
                    if item is None:
                        stop = True
                    else:
                        pending.append(item)
                # Count sentinels as done now; rows are marked done once written or dropped.
                for _ in range(taken - len(pending)):
                    q.task_done()
                if not pending:
                    continue
            try:
                if conn is None:
                    conn = self._open()
                self._write(conn, pending)
                self._done(q, len(pending))
                pending = []
                backoff = 0.5
            except Exception as exc:
                conn = self._discard(conn)
                if not self._is_outage(exc):
                    # The batch itself is bad (a value the database refuses): write the rows
                    # one by one so one bad record costs one record, not the batch.
                    remaining = self._write_one_by_one(pending)
                    self._done(q, len(pending) - len(remaining))
                    pending = remaining
                    if not pending:
                        continue
                self._complain(f"cannot write log records to the database ({type(exc).__name__}: {exc}); retrying")
                if stop or self._stopping.wait(backoff):
                    # Shutting down while the database is away: give up on what is left.
                    self._drop(len(pending))
                    self._done(q, len(pending))
                    pending = []
                    break
                backoff = min(backoff * 2, 30.0)
        self._discard(conn)

    @staticmethod
    def _done(q: queue.Queue, n: int) -> None:
        for _ in range(n):
            q.task_done()

    def _open(self):
        if self._connect is not None:
            return self._connect()
        from django.db import connections

        conn = connections.create_connection(self.alias)
        conn.ensure_connection()
        conn.set_autocommit(True)
        return conn

    def _discard(self, conn):
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        return None

    @staticmethod
    def _is_outage(exc: BaseException) -> bool:
        from django.db import InterfaceError, OperationalError

        try:
            import psycopg

            raw = (psycopg.OperationalError, psycopg.InterfaceError)
        except ImportError:  # pragma: no cover
            raw = ()
        return isinstance(exc, (OperationalError, InterfaceError, *raw))

    def _params(self, row: tuple) -> tuple:
        created, level, component, message, columns, extra = row
        return (
            dt.datetime.fromtimestamp(created, dt.UTC),
            level,
            _clean(component),
            _clean(message),
            None if columns.get("camera_id") is None else _clean(str(columns["camera_id"]))[:100],
            _int_or_none(columns.get("event_id")),
            None if columns.get("request_id") is None else _clean(str(columns["request_id"]))[:36],
            _int_or_none(columns.get("detection_id")),
            _int_or_none(columns.get("duration_ms")),
            None if extra is None else json.dumps(extra, default=str),
        )

    def _write(self, conn, rows: list[tuple]) -> None:
        params = [self._params(r) for r in rows]
        drops = self.dropped - self._reported_drops
        if drops > 0:
            now = dt.datetime.now(dt.UTC)
            params.append(
                (now, "WARNING", "monitoring.logging", f"{drops} log record(s) were dropped (queue full or database unreachable)",
                 None, None, None, None, None, json.dumps({"dropped": drops, "pid": os.getpid()}))
            )  # fmt: skip
        with conn.cursor() as cur:
            cur.executemany(INSERT_SQL, params)
        if drops > 0:
            self._reported_drops += drops

    def _write_one_by_one(self, rows: list[tuple]) -> list[tuple]:
        """Returns the rows still to write (non-empty when the database went away meanwhile)."""
        conn = None
        try:
            conn = self._open()
            for i, row in enumerate(rows):
                try:
                    with conn.cursor() as cur:
                        cur.execute(INSERT_SQL, self._params(row))
                except Exception as exc:
                    if self._is_outage(exc):
                        return rows[i:]
                    self._drop()
            return []
        except Exception:
            return rows
        finally:
            self._discard(conn)

    def _complain(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_complaint >= 60:
            self._last_complaint = now
            try:
                sys.stderr.write("DatabaseLogHandler: " + " ".join(text.split()) + "\n")
            except Exception:
                pass

    # --- control ---------------------------------------------------------------------------

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until every record queued so far is written or dropped; False on timeout."""
        q = self._queue
        deadline = time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                q.all_tasks_done.wait(min(remaining, 0.1))
        return True

    def close(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self._stopping.set()
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            thread.join(timeout=1.0)
        self._thread = None
        super().close()
