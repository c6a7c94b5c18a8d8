"""The feedback rollup (dashboard_feedback_rollup) kept by PostgreSQL triggers, and the statistics read from it."""

from __future__ import annotations

import datetime as dt
import io
import random
import threading
import zoneinfo

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncWeek

from dashboard.choices import FeedbackType
from dashboard.models import Camera, Event, EventFeedback
from dashboard.services import stats
from tests import factories

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
TYPES = FeedbackType.values


def rollup() -> dict[tuple, int]:
    """The rollup as {(bucket, camera_id, feedback_type): n}, empty buckets left out."""
    with connection.cursor() as cur:
        cur.execute("SELECT bucket, camera_id, feedback_type, n FROM dashboard_feedback_rollup WHERE n <> 0")
        return {(bucket, camera, kind): n for bucket, camera, kind, n in cur.fetchall()}


def fresh() -> dict[tuple, int]:
    """The same counts aggregated from scratch in Python: what the triggers must keep."""
    counts: dict[tuple, int] = {}
    for fb in EventFeedback.objects.select_related("event"):
        into = (fb.created_at - stats.ROLLUP_ORIGIN) % stats.ROLLUP_WIDTH
        key = (fb.created_at - into, fb.event.camera_id, fb.feedback_type)
        counts[key] = counts.get(key, 0) + 1
    return counts


def feedback(camera: Camera, kind: str, at: dt.datetime) -> EventFeedback:
    fb = factories.EventFeedbackFactory(event=factories.EventFactory(camera=camera), feedback_type=kind)
    EventFeedback.objects.filter(pk=fb.pk).update(created_at=at)
    fb.refresh_from_db()
    return fb


@pytest.mark.django_db
def test_every_write_path_keeps_the_rollup_equal_to_a_fresh_aggregation():
    porch = factories.CameraFactory(id="porch")
    yard = factories.CameraFactory(id="yard")
    a = feedback(porch, "accurate", T0 + dt.timedelta(minutes=1))
    b = feedback(porch, "accurate", T0 + dt.timedelta(minutes=14))
    c = feedback(yard, "false_positive", T0 + dt.timedelta(minutes=15))
    assert (
        rollup()
        == fresh()
        == {(T0, "porch", "accurate"): 2, (T0 + dt.timedelta(minutes=15), "yard", "false_positive"): 1}
    )

    # Several rows in one statement (bulk_create) and a path around the ORM.
    events = [factories.EventFactory(camera=yard) for _ in range(3)]
    EventFeedback.objects.bulk_create(
        [EventFeedback(event=e, feedback_type="missed_threat", created_at=T0 + dt.timedelta(hours=2)) for e in events]
    )
    raw_event = factories.EventFactory(camera=porch)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO event_feedback (event_id, feedback_type, created_at) VALUES (%s, 'correct', %s)",
            [raw_event.pk, T0 + dt.timedelta(days=3)],
        )
    assert rollup() == fresh()
    assert rollup()[(T0 + dt.timedelta(hours=2), "yard", "missed_threat")] == 3

    # Updates: type, time (to another bucket), event (to another camera), and one that changes no key.
    EventFeedback.objects.filter(pk=a.pk).update(feedback_type="false_positive")
    EventFeedback.objects.filter(pk=b.pk).update(created_at=T0 + dt.timedelta(weeks=1))
    EventFeedback.objects.filter(pk=c.pk).update(event=factories.EventFactory(camera=porch))
    EventFeedback.objects.filter(feedback_type="missed_threat").update(notes="edited")
    assert rollup() == fresh()
    assert (T0 + dt.timedelta(minutes=15), "yard", "false_positive") not in rollup()  # emptied bucket is gone

    # An event moves to another camera, through save() and through a bulk update.
    events[0].camera = porch
    events[0].save()
    Event.objects.filter(pk__in=[events[1].pk, raw_event.pk]).update(camera=yard)
    Event.objects.filter(camera=yard).update(reviewed=True)  # other columns: nothing moves
    assert rollup() == fresh()
    assert rollup()[(T0 + dt.timedelta(hours=2), "porch", "missed_threat")] == 1

    # Deletes: a feedback row, and an event (Django deletes its feedback first).
    EventFeedback.objects.filter(pk=a.pk).delete()
    events[2].delete()
    assert rollup() == fresh()

    # The foreign key is deferred: an event may go before its feedback in one transaction.
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM events WHERE id = %s", [raw_event.pk])
        assert rollup() == fresh()  # the event's feedback no longer joins to an event
        cur.execute("DELETE FROM event_feedback WHERE event_id = %s", [raw_event.pk])
    assert rollup() == fresh()
    assert rollup() != {}

    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as a restore does: no deferred checks pending
        cur.execute("TRUNCATE event_feedback")
    assert rollup() == fresh() == {}


@pytest.mark.django_db
def test_a_restore_truncate_and_copy_rebuilds_the_rollup_and_rebuild_repairs_it():
    rng = random.Random(7)
    cameras = [factories.CameraFactory(id=f"cam_{i}") for i in range(3)]
    for _ in range(60):
        feedback(rng.choice(cameras), rng.choice(TYPES), T0 + dt.timedelta(minutes=rng.randrange(0, 3000)))
    expected = fresh()
    assert rollup() == expected

    # What jobs.services.backup does: TRUNCATE, then COPY (row data through the statement triggers).
    buf = io.BytesIO()
    with connection.cursor() as cur:
        with cur.copy("COPY event_feedback TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
            for data in copy:
                buf.write(data)
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("TRUNCATE event_feedback")
        assert rollup() == {}
        with cur.copy("COPY event_feedback FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write(buf.getvalue())
    assert rollup() == expected

    with connection.cursor() as cur:
        cur.execute("DELETE FROM dashboard_feedback_rollup")
    stats.rebuild_feedback_rollup()
    assert rollup() == expected


# --- feedback_stats against the raw aggregation -------------------------------------------------


def raw_feedback_stats(since: dt.datetime) -> dict:
    """The page's numbers aggregated over the raw rows (what feedback_stats did before the rollup)."""
    recent = EventFeedback.objects.filter(created_at__gte=since)
    fp = Q(feedback_type=FeedbackType.FALSE_POSITIVE)
    counts = dict(recent.values_list("feedback_type").annotate(n=Count("id")).order_by())
    by_camera = [
        (r["event__camera_id"], r["event__camera__name"], r["total"], r["false_positives"])
        for r in recent.values("event__camera_id", "event__camera__name")
        .annotate(total=Count("id"), false_positives=Count("id", filter=fp))
        .order_by("-total", "event__camera_id")
    ]
    by_week = [
        (r["week"], r["total"], r["false_positives"])
        for r in recent.annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(total=Count("id"), false_positives=Count("id", filter=fp))
        .order_by("week")
    ]
    return {"total": sum(counts.values()), "by_type": counts, "by_camera": by_camera, "by_week": by_week}


def page_numbers(data: dict) -> dict:
    return {
        "total": data["total"],
        "by_type": {r["type"]: r["count"] for r in data["by_type"] if r["count"]},
        "by_camera": [
            (r["event__camera_id"], r["event__camera__name"], r["total"], r["false_positives"])
            for r in data["by_camera"]
        ],
        "by_week": [(r["week"], r["total"], r["false_positives"]) for r in data["by_week"]],
    }


# Zones whose weeks start on a UTC hour, half-way through one, and at a quarter past; one with DST.
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def test_feedback_stats_equal_the_raw_aggregation(db, settings, monkeypatch, zone):
    settings.TIME_ZONE = zone
    now = dt.datetime(2026, 3, 4, 10, 7, 31, 123456, tzinfo=dt.UTC)  # 12 weeks back: mid-bucket
    monkeypatch.setattr(stats.timezone, "now", lambda: now)
    since = now - dt.timedelta(weeks=12)
    whole_from = stats._first_whole_bucket(since)
    assert since < whole_from < since + stats.ROLLUP_WIDTH
    # Ids whose order differs between byte order and a linguistic collation, tied on totals.
    cameras = [factories.CameraFactory(id=i) for i in ("side_gate", "sidegate", "side-b", "yard")]
    rng = random.Random(zone)
    # Straddling the window start and the end of its partial first bucket, to the microsecond.
    edges = [since, whole_from]
    for edge in edges:
        for offset in (-1, 0, 1):
            feedback(rng.choice(cameras), rng.choice(TYPES), edge + dt.timedelta(microseconds=offset))
    for minutes in (1, 5, 14):
        feedback(rng.choice(cameras), "false_positive", since + dt.timedelta(minutes=minutes))
    # Around every local Monday 00:00 in the window (not on a UTC hour in the half-hour zones).
    tz = zoneinfo.ZoneInfo(zone)
    local = since.astimezone(tz)
    first_monday = (local - dt.timedelta(days=local.weekday())).replace(tzinfo=None, hour=0, minute=0, second=0)
    for week in range(14):
        boundary = (first_monday.replace(microsecond=0) + dt.timedelta(weeks=week)).replace(tzinfo=tz)
        for minutes in (-20, -1, 0, 1, 20):
            feedback(rng.choice(cameras), rng.choice(TYPES), boundary + dt.timedelta(minutes=minutes))
    for _ in range(150):
        feedback(rng.choice(cameras), rng.choice(TYPES), now - dt.timedelta(minutes=rng.uniform(0, 14 * 7 * 24 * 60)))
    # Two cameras tied on their totals.
    for camera in cameras[:2]:
        for kind in TYPES:
            feedback(camera, kind, now - dt.timedelta(days=1))

    got = page_numbers(stats.feedback_stats(12))
    want = raw_feedback_stats(since)
    assert got == want
    assert got["total"] > 0 and len(got["by_week"]) >= 12


def test_feedback_stats_with_the_window_starting_on_a_bucket_boundary(db, monkeypatch, django_assert_num_queries):
    now = T0 + dt.timedelta(weeks=12)
    monkeypatch.setattr(stats.timezone, "now", lambda: now)
    porch = factories.CameraFactory(id="porch")
    feedback(porch, "false_positive", T0)
    feedback(porch, "accurate", T0 - dt.timedelta(microseconds=1))
    with django_assert_num_queries(2):  # the counts, the camera names
        data = stats.feedback_stats(12)
    assert (
        page_numbers(data)
        == raw_feedback_stats(T0)
        == {
            "total": 1,
            "by_type": {"false_positive": 1},
            "by_camera": [("porch", "Porch", 1, 1)],
            "by_week": [(dt.datetime(2026, 3, 2, tzinfo=dt.UTC), 1, 1)],
        }
    )


def test_feedback_stats_ignore_empty_buckets(db, monkeypatch):
    monkeypatch.setattr(stats.timezone, "now", lambda: T0 + dt.timedelta(weeks=12))
    porch = factories.CameraFactory(id="porch")
    factories.CameraFactory(id="yard")
    feedback(porch, "accurate", T0 + dt.timedelta(weeks=11))
    with connection.cursor() as cur:  # buckets at zero (the triggers delete theirs, but need not)
        cur.execute(
            "INSERT INTO dashboard_feedback_rollup (bucket, camera_id, feedback_type, n) "
            "VALUES (%s, 'yard', 'false_positive', 0), (%s, 'porch', 'accurate', 0)",
            [T0 + dt.timedelta(weeks=10), T0 + dt.timedelta(days=1)],
        )
    data = stats.feedback_stats(12)
    assert page_numbers(data) == raw_feedback_stats(T0)
    assert [r["event__camera_id"] for r in data["by_camera"]] == ["porch"] and len(data["by_week"]) == 1


# --- concurrency: a camera move racing feedback on the same event --------------------------------


def _in_thread(fn) -> tuple[threading.Thread, threading.Event, list]:
    done, errors = threading.Event(), []

    def run():
        try:
            fn()
        except Exception as exc:  # surfaced by the test
            errors.append(exc)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done, errors


@pytest.mark.django_db(transaction=True)
def test_feedback_written_while_its_event_changes_camera_lands_on_the_new_camera():
    porch, yard = factories.CameraFactory(id="porch"), factories.CameraFactory(id="yard")
    event = factories.EventFactory(camera=porch)
    with transaction.atomic():
        Event.objects.filter(pk=event.pk).update(camera=yard)
        thread, done, errors = _in_thread(
            lambda: EventFeedback.objects.create(event_id=event.pk, feedback_type="accurate")
        )
        assert not done.wait(0.5), "the feedback trigger should wait for the camera move"
    thread.join(10)
    assert not errors and done.is_set()
    assert rollup() == fresh() and {k[1] for k in rollup()} == {"yard"}


@pytest.mark.django_db(transaction=True)
def test_a_camera_move_waits_for_feedback_being_written_and_moves_it():
    porch, yard = factories.CameraFactory(id="porch"), factories.CameraFactory(id="yard")
    event = factories.EventFactory(camera=porch)
    with transaction.atomic():
        EventFeedback.objects.create(event_id=event.pk, feedback_type="false_positive")
        thread, done, errors = _in_thread(lambda: Event.objects.filter(pk=event.pk).update(camera=yard))
        assert not done.wait(0.5), "the camera move should wait for the feedback's transaction"
    thread.join(10)
    assert not errors and done.is_set()
    assert rollup() == fresh() and {k[1] for k in rollup()} == {"yard"}
