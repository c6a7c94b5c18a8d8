"""Live progress through a second database connection.

Exports stream one `COPY … TO STDOUT` (the connection is busy until the last
row), and backup / restore run inside one long transaction (their writes are
invisible until commit). Either way the main connection cannot tell the pages
how far the work got, so progress, heartbeats and the cancel flag go through a
separate, autocommit connection.

That connection never waits on a lock for long (lock_timeout) and never raises:
progress is best effort, the final state is always written by the main
connection. Under pytest the job rows live in the test's uncommitted
transaction, invisible here, so these updates simply match no row.
"""

from __future__ import annotations

import logging
import time

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from jobs.choices import JobStatus

logger = logging.getLogger(__name__)


class LiveReporter:
    """Throttled progress for one running job and its export/backup/restore row."""

    def __init__(self, ctx, table: str | None = None, row_id=None, *, min_interval: float = 0.5):
        self.ctx = ctx
        self.table = table
        self.row_id = row_id
        self.min_interval = min_interval
        self._conn = None
        self._last = 0.0
        self._broken = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken side connection must not mask the real outcome
                pass
            self._conn = None

    def _execute(self, sql: str, params=()):
        if self._broken:
            return None
        try:
            if self._conn is None:
                self._conn = connections.create_connection(DEFAULT_DB_ALIAS)
                self._conn.ensure_connection()
                with self._conn.cursor() as cur:
                    cur.execute("SET lock_timeout = '2s'; SET statement_timeout = '10s'")
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchone() if cur.description else cur.rowcount
        except DatabaseError as exc:
            logger.warning("live progress update failed (%s); continuing without it", exc)
            self.close()
            return None
        except Exception:
            # e.g. database access blocked in a test, or no server: stop trying, keep working.
            logger.warning("live progress unavailable", exc_info=True)
            self._broken = True
            return None

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.min_interval

    def update(self, percent: int | None, step: str | None = None, *, force: bool = False, **row_fields) -> bool:
        """Write progress if `min_interval` passed (or force); True when it wrote."""
        if not force and not self.due():
            return False
        self._last = time.monotonic()
        pct = None if percent is None else max(0, min(100, int(percent)))
        self._execute(
            "UPDATE jobs SET progress_percent = COALESCE(%s, progress_percent), "
            "current_step = COALESCE(%s, current_step), heartbeat_at = now() "
            "WHERE id = %s AND status = %s AND attempt_number = %s",
            [pct, step and step[:255], self.ctx.job_id, JobStatus.RUNNING, self.ctx.attempt_number],
        )
        if self.table and self.row_id is not None:
            fields = dict(row_fields)
            if pct is not None:
                fields["progress_percent"] = pct
            if step is not None:
                fields["current_step"] = step[:255]
            if fields:
                # Column names come from our own code, never from input.
                sets = ", ".join(f"{name} = %s" for name in fields)
                self._execute(f"UPDATE {self.table} SET {sets} WHERE id = %s", [*fields.values(), self.row_id])
        return True

    def cancel_requested(self) -> bool:
        row = self._execute("SELECT cancel_requested FROM jobs WHERE id = %s", [self.ctx.job_id])
        return bool(row and row[0])
