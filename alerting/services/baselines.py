"""Activity and class baselines: exponentially weighted moving averages of real counts.

* Activity: per camera × weekday × hour, the number of events that started in
  that local hour. One sample per slot per week.
* Class: per camera × detection class × hour, the number of detections of that
  class in that local hour. One sample per slot per day.

Each sample updates ``avg = alpha·count + (1 − alpha)·avg`` (the first sample sets
``avg = count``) and ``sample_count += 1``. Hours without events are samples too
(count 0); otherwise a baseline could only ever rise. Upstream's formula never
moved off 1.0; this one converges to the observed counts (tested).

Slots use the site's local time (settings.TIME_ZONE): a household's rhythm follows
the wall clock, not UTC.

The hourly update is idempotent: a slot whose ``last_updated`` is at or after the
end of the hour being processed already contains that hour, so running the task
twice (or after a rebuild) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

HOUR = dt.timedelta(hours=1)


def site_tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def alpha() -> float:
    return float(settings.BASELINE_ALPHA)


def ewma(avg: float, samples: int, count: float, a: float | None = None) -> float:
    a = alpha() if a is None else a
    return float(count) if samples <= 0 else a * count + (1 - a) * avg


def local_hour_start(when: dt.datetime) -> dt.datetime:
    local = when.astimezone(site_tz())
    return local.replace(minute=0, second=0, microsecond=0)


def slot_of(when: dt.datetime) -> tuple[int, int]:
    """(day_of_week 0=Monday, hour) of an instant in the site's time zone."""
    local = when.astimezone(site_tz())
    return local.weekday(), local.hour


def previous_complete_hour(now: dt.datetime | None = None) -> dt.datetime:
    return local_hour_start(now or timezone.now()) - HOUR


# --- Hourly update ------------------------------------------------------------------------

_ACTIVITY_UPSERT = """
INSERT INTO activity_baselines (camera_id, hour, day_of_week, avg_count, sample_count, last_updated)
SELECT c.id, %(hour)s, %(dow)s, coalesce(n.cnt, 0), 1, %(now)s
  FROM cameras c
  LEFT JOIN (SELECT camera_id, count(*) AS cnt FROM events
              WHERE started_at >= %(start)s AND started_at < %(end)s GROUP BY camera_id) n ON n.camera_id = c.id
ON CONFLICT ON CONSTRAINT uq_activity_baselines_slot DO UPDATE SET
  avg_count = CASE WHEN activity_baselines.sample_count <= 0 THEN EXCLUDED.avg_count
                   ELSE %(alpha)s * EXCLUDED.avg_count + (1 - %(alpha)s) * activity_baselines.avg_count END,
  sample_count = activity_baselines.sample_count + 1,
  last_updated = EXCLUDED.last_updated
WHERE activity_baselines.last_updated < %(end)s
"""

# Classes a camera has ever had a baseline for get a 0 sample in hours without them.
_CLASS_UPSERT = """
INSERT INTO class_baselines (camera_id, detection_class, hour, frequency, sample_count, last_updated)
SELECT k.camera_id, k.cls, %(hour)s, coalesce(n.cnt, 0), 1, %(now)s
  FROM (SELECT DISTINCT camera_id, detection_class AS cls FROM class_baselines
        UNION
        SELECT DISTINCT camera_id, object_type FROM detections
         WHERE detected_at >= %(start)s AND detected_at < %(end)s) k
  LEFT JOIN (SELECT camera_id, object_type, count(*) AS cnt FROM detections
              WHERE detected_at >= %(start)s AND detected_at < %(end)s
              GROUP BY camera_id, object_type) n ON n.camera_id = k.camera_id AND n.object_type = k.cls
ON CONFLICT ON CONSTRAINT uq_class_baselines_slot DO UPDATE SET
  frequency = CASE WHEN class_baselines.sample_count <= 0 THEN EXCLUDED.frequency
                   ELSE %(alpha)s * EXCLUDED.frequency + (1 - %(alpha)s) * class_baselines.frequency END,
  sample_count = class_baselines.sample_count + 1,
  last_updated = EXCLUDED.last_updated
WHERE class_baselines.last_updated < %(end)s
"""


def update_hour(hour_start: dt.datetime | None = None, now: dt.datetime | None = None) -> dict:
    """Fold one complete local hour (default: the previous one) into every camera's baselines."""
    now = now or timezone.now()
    start = local_hour_start(hour_start) if hour_start else previous_complete_hour(now)
    end = start + HOUR
    if end > now:
        raise ValueError("That hour is not complete yet.")
    dow, hour = slot_of(start)
    params = {"hour": hour, "dow": dow, "start": start, "end": end, "now": now, "alpha": alpha()}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_ACTIVITY_UPSERT, params)
        activity = cur.rowcount
        cur.execute(_CLASS_UPSERT, params)
        classes = cur.rowcount
    return {"hour": start.isoformat(), "activity_slots": activity, "class_slots": classes}


# --- Rebuild from history ----------------------------------------------------------------------


def _hourly_counts(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def rebuild(camera_id: str | None = None, ctx=None, now: dt.datetime | None = None) -> dict:
    """Recompute baselines from all events and detections up to the last complete hour.

    Counting happens in SQL (one GROUP BY per table and camera, bucketed into local
    hours with date_trunc(…, tz)); Python only walks the hours of each camera's
    history to apply the EWMA in time order, zeros included.
    """
    from alerting.models import ActivityBaseline, ClassBaseline
    from dashboard.models import Camera

    now = now or timezone.now()
    end = local_hour_start(now)  # exclusive: the current hour is not complete
    tz_name = settings.TIME_ZONE
    a = alpha()
    cameras = list(Camera.objects.order_by("id").values_list("id", flat=True))
    if camera_id is not None:
        if camera_id not in cameras:
            raise ValueError(f"Unknown camera {camera_id!r}.")
        cameras = [camera_id]
    totals = {"cameras": 0, "activity_slots": 0, "class_slots": 0, "hours": 0}
    for i, cam in enumerate(cameras):
        if ctx is not None:
            ctx.check_cancelled()
            ctx.progress(100 * i / max(len(cameras), 1), step=f"Camera {cam} ({i + 1} of {len(cameras)})")
        events = _hourly_counts(
            "SELECT date_trunc('hour', started_at, %s) AS h, count(*) FROM events"
            " WHERE camera_id = %s AND started_at < %s GROUP BY h",
            [tz_name, cam, end],
        )
        dets = _hourly_counts(
            "SELECT date_trunc('hour', detected_at, %s) AS h, object_type, count(*) FROM detections"
            " WHERE camera_id = %s AND detected_at < %s GROUP BY h, object_type",
            [tz_name, cam, end],
        )
        event_counts = {h: n for h, n in events}
        class_counts: dict[str, dict] = defaultdict(dict)
        for h, cls, n in dets:
            class_counts[cls][h] = n
        class_first = {cls: min(counts) for cls, counts in class_counts.items()}
        starts = [h for h, _ in events] + [h for h, _, _ in dets]
        activity: dict[tuple[int, int], list] = {}
        klass: dict[tuple[str, int], list] = {}
        hours = 0
        if starts:
            h = local_hour_start(min(starts))
            while h < end:
                dow, hour = slot_of(h)
                slot = activity.setdefault((dow, hour), [0.0, 0])
                slot[0] = ewma(slot[0], slot[1], event_counts.get(h, 0), a)
                slot[1] += 1
                for cls, counts in class_counts.items():
                    if h < class_first[cls]:
                        continue  # like the hourly update: a class gets zero samples once it is known
                    cslot = klass.setdefault((cls, hour), [0.0, 0])
                    cslot[0] = ewma(cslot[0], cslot[1], counts.get(h, 0), a)
                    cslot[1] += 1
                # Absolute steps, then back to local time: DST days have 23 or 25 hours.
                h = local_hour_start(h + HOUR)
                hours += 1
        with transaction.atomic():
            ActivityBaseline.objects.filter(camera_id=cam).delete()
            ClassBaseline.objects.filter(camera_id=cam).delete()
            ActivityBaseline.objects.bulk_create(
                ActivityBaseline(
                    camera_id=cam, day_of_week=d, hour=hr, avg_count=v[0], sample_count=v[1], last_updated=now
                )  # fmt: skip
                for (d, hr), v in activity.items()
            )
            ClassBaseline.objects.bulk_create(
                ClassBaseline(
                    camera_id=cam, detection_class=cls, hour=hr, frequency=v[0], sample_count=v[1], last_updated=now
                )  # fmt: skip
                for (cls, hr), v in klass.items()
            )
        totals["cameras"] += 1
        totals["activity_slots"] += len(activity)
        totals["class_slots"] += len(klass)
        totals["hours"] += hours
        if ctx is not None:
            ctx.log(f"{cam}: {hours} hours, {len(activity)} activity and {len(klass)} class slots")
    if ctx is not None:
        ctx.progress(100, step="Done")
    return totals


# --- Anomaly scores ------------------------------------------------------------------------------


def min_samples() -> int:
    return int(settings.BASELINE_MIN_SAMPLES)


def anomaly_score(observed: float, avg: float) -> float:
    """How unusual `observed` is for a slot averaging `avg`: a Poisson-style z-score.

    (observed − avg) / max(√avg, 1): the spread of counts grows with their mean; the
    floor keeps quiet slots (avg near 0) from turning one event into a huge score.
    """
    return round((observed - avg) / max(math.sqrt(max(avg, 0.0)), 1.0), 2)


def anomaly_score_for_event(event) -> float | None:
    """Score for the event's camera × weekday × hour slot; None until the slot has enough samples."""
    from alerting.models import ActivityBaseline
    from dashboard.models import Event

    start = local_hour_start(event.started_at)
    dow, hour = slot_of(start)
    baseline = (
        ActivityBaseline.objects.filter(camera_id=event.camera_id, day_of_week=dow, hour=hour)
        .values("avg_count", "sample_count")
        .first()
    )
    if baseline is None or baseline["sample_count"] < min_samples():
        return None
    # idx_events_camera_started_at serves this one-hour range.
    observed = Event.objects.filter(
        camera_id=event.camera_id, started_at__gte=start, started_at__lt=start + HOUR
    ).count()
    return anomaly_score(observed, baseline["avg_count"])


def heatmap(camera_id: str) -> dict:
    """Activity grid [weekday][hour] and class rows for the baselines page (two small queries)."""
    from alerting.models import ActivityBaseline, ClassBaseline

    grid = [[None] * 24 for _ in range(7)]
    peak = 0.0
    for row in ActivityBaseline.objects.filter(camera_id=camera_id).values(
        "day_of_week", "hour", "avg_count", "sample_count"
    ):
        grid[row["day_of_week"]][row["hour"]] = row
        peak = max(peak, row["avg_count"])
    classes: dict[str, list] = {}
    class_peak = 0.0
    for row in (
        ClassBaseline.objects.filter(camera_id=camera_id)
        .order_by("detection_class", "hour")
        .values("detection_class", "hour", "frequency", "sample_count")
    ):
        classes.setdefault(row["detection_class"], [None] * 24)[row["hour"]] = row
        class_peak = max(class_peak, row["frequency"])
    return {"grid": grid, "peak": peak, "classes": classes, "class_peak": class_peak}


def heat_level(value: float | None, peak: float) -> int:
    """0-9 bucket for CSS classes (no inline styles under the Content-Security-Policy)."""
    if value is None or peak <= 0:
        return 0
    return max(0, min(9, math.ceil(9 * value / peak)))
