"""DatabaseLogHandler: non-blocking emit, batched inserts, drops counted, outages survived.

The writer thread uses its own database connection: what it commits is visible
to the test's connection, and outside the test transaction, so the `clean_logs`
fixture deletes it afterwards through a connection of its own (cheaper than a
transactional test's flush of every table). "Database down" is a real refused
connection (a closed port), not a mock.
"""

import io
import logging
import threading
import time
from contextlib import redirect_stderr

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection, connections

from monitoring import logging as db_logging
from monitoring.logging import DatabaseLogHandler, dropped_count
from monitoring.models import Log

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_logs")]


def django_connection():
    conn = connections.create_connection("default")
    conn.ensure_connection()
    conn.set_autocommit(True)
    return conn


def dead_database():
    # Nothing listens on port 1: the same error a stopped PostgreSQL gives.
    return psycopg.connect("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1")


@pytest.fixture
def clean_logs():
    yield
    conn = django_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM logs")
    finally:
        conn.close()


class RecordingHandler(DatabaseLogHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def _write(self, conn, rows):
        super()._write(conn, rows)
        self.batches.append(len(rows))


@pytest.fixture
def make_logger():
    made = []

    def make(handler, name="monitoring.tests.handler"):
        logger = logging.getLogger(name)
        made.append((logger, handler, logger.handlers, logger.propagate, logger.level))
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        return logger

    yield make
    for logger, handler, handlers, propagate, level in made:
        handler.close()
        logger.handlers = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def test_records_are_written_in_batches_by_the_background_thread(make_logger):
    handler = RecordingHandler(batch_size=100, flush_interval=0.05)
    log = make_logger(handler)
    for i in range(250):
        log.info("record %s of the batch test", i)
    assert handler.flush(timeout=10)
    assert Log.objects.count() == 250
    assert max(handler.batches) <= 100 and sum(handler.batches) == 250
    assert len(handler.batches) < 250  # batched, not one insert per record
    row = Log.objects.get(message="record 7 of the batch test")
    assert row.level == "INFO" and row.component == "monitoring.tests.handler" and row.source == "backend"


def test_emit_never_waits_for_the_database(make_logger):
    release = threading.Event()

    def slow_connect():
        release.wait(10)  # the database takes forever to answer
        return django_connection()

    handler = DatabaseLogHandler(connect=slow_connect, capacity=100_000)
    log = make_logger(handler)
    log.info("warm-up")  # starts the writer
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(1000):
            log.info("order %s shipped to %s", i, "camera_1")
        best = min(best, (time.perf_counter() - start) / 1000)
    release.set()
    assert best < 0.0001, f"emit took {best * 1e6:.1f} µs per record"
    assert handler.flush(timeout=20)
    assert Log.objects.count() == 3001


def test_full_queue_drops_and_counts_then_reports_the_loss(make_logger):
    release = threading.Event()

    def blocked_connect():
        release.wait(10)
        return django_connection()

    handler = DatabaseLogHandler(connect=blocked_connect, capacity=10, flush_interval=0.05)
    log = make_logger(handler)
    before = dropped_count()
    log.warning("first")
    time.sleep(0.2)  # the writer took "first" and now waits for the database
    for i in range(25):
        log.warning("flood %s", i)
    assert handler.dropped == 15
    assert dropped_count() - before == 15
    release.set()
    assert handler.flush(timeout=10)
    messages = list(Log.objects.values_list("message", flat=True))
    assert len([m for m in messages if m.startswith(("first", "flood"))]) == 11
    notice = Log.objects.get(component="monitoring.logging")
    assert notice.level == "WARNING" and notice.message.startswith("15 log record(s) were dropped")
    assert notice.extra["dropped"] == 15


def test_database_outage_is_retried_without_recursion(make_logger):
    state = {"down": True}

    def connect():
        return dead_database() if state["down"] else django_connection()

    handler = DatabaseLogHandler(connect=connect, flush_interval=0.05)
    # The handler also listens to the root of its own package: if it logged its
    # failures through `logging`, they would come back to it.
    log = make_logger(handler, name="monitoring")
    child = logging.getLogger("monitoring.tests.outage")
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        child.error("written once the database is back")
        time.sleep(0.8)  # several failed attempts
        assert handler._queue.qsize() == 0  # the batch is held by the writer, not re-queued
        state["down"] = False
        assert handler.flush(timeout=40)
    assert list(Log.objects.values_list("message", flat=True)) == ["written once the database is back"]
    complaints = stderr.getvalue().splitlines()
    assert len(complaints) == 1 and "cannot write log records to the database" in complaints[0]
    assert log.handlers == [handler]


def test_a_row_the_database_refuses_costs_only_that_row(make_logger):
    handler = DatabaseLogHandler(flush_interval=0.05)
    log = make_logger(handler)
    log.info("good one")
    log.info("bad one", extra={"event_id": 5})
    log.info("good two")
    # A value no CHECK allows: the level column only takes the five levels.
    original = handler._params

    def params(row):
        values = original(row)
        return (values[0], "BOGUS", *values[2:]) if values[3] == "bad one" else values

    handler._params = params
    assert handler.flush(timeout=10)
    assert sorted(Log.objects.values_list("message", flat=True)) == ["good one", "good two"]
    assert handler.dropped == 1


def test_extra_fields_go_to_their_columns_and_the_rest_to_extra(make_logger):
    handler = DatabaseLogHandler(flush_interval=0.05)
    log = make_logger(handler, name="alerting.rules")
    log.warning(
        "zone %s entered",
        "porch",
        extra={"camera_id": "front_door", "event_id": 42, "duration_ms": 17, "request_id": "r-1", "zone": {"id": 3}},
    )
    assert handler.flush(timeout=10)
    row = Log.objects.get()
    assert row.message == "zone porch entered" and row.level == "WARNING" and row.component == "alerting.rules"
    assert (row.camera_id, row.event_id, row.duration_ms, row.request_id) == ("front_door", 42, 17, "r-1")
    assert row.extra == {"zone": {"id": 3}}


def test_exceptions_keep_their_traceback_and_nul_is_stripped(make_logger):
    handler = DatabaseLogHandler(flush_interval=0.05)
    log = make_logger(handler)
    try:
        raise ValueError("bad\x00value")
    except ValueError:
        log.exception("failed to parse")
    assert handler.flush(timeout=10)
    row = Log.objects.get()
    assert row.level == "ERROR"
    assert row.message.startswith("failed to parse\nTraceback") and "ValueError: badvalue" in row.message


def test_search_vector_is_maintained_by_the_database_for_raw_inserts():
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO logs (level, component, message) VALUES ('ERROR', 'detector', 'Camera stream timeout')"
        )
        cur.execute("SELECT search_vector::text FROM logs")
        vector = cur.fetchone()[0]
    assert "'timeout':3A" in vector and "'detector':4B" in vector and "'error':5C" in vector
    assert Log.objects.search("timeout").count() == 1
    assert Log.objects.search("detector -timeout").count() == 0


def test_handler_is_configured_for_our_loggers_but_off_under_tests():
    assert django_settings.LOG_TO_DATABASE is False
    for name in ("dashboard", "monitoring", "alerting", "jobs"):
        handlers = [h for h in logging.getLogger(name).handlers if isinstance(h, DatabaseLogHandler)]
        assert len(handlers) == 1 and handlers[0].enabled is False


def test_disabled_handler_does_nothing():
    handler = DatabaseLogHandler(enabled=False)
    handler.emit(logging.LogRecord("dashboard", logging.ERROR, __file__, 1, "nope", (), None))
    assert handler._thread is None and handler._queue.qsize() == 0
    assert db_logging.level_name(5) == "DEBUG" and db_logging.level_name(25) == "INFO"
