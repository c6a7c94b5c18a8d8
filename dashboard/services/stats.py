"""Feedback and event-audit statistics, aggregated in SQL (one row per bucket or group)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDay, TruncWeek
from django.utils import timezone

from dashboard.choices import FeedbackType
from dashboard.models import Camera, EventAudit


def _rate(part: int, total: int) -> float | None:
    return part / total if total else None


# Width and origin of dashboard_feedback_rollup's buckets (migration 0004_feedback_rollup,
# date_bin(INTERVAL '15 minutes', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')).
ROLLUP_WIDTH = dt.timedelta(minutes=15)
ROLLUP_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _first_whole_bucket(since: dt.datetime) -> dt.datetime:
    """The start of the first rollup bucket that lies entirely at or after `since`."""
    into = (since - ROLLUP_ORIGIN) % ROLLUP_WIDTH
    return since + (ROLLUP_WIDTH - into) if into else since


# Whole buckets from the rollup, and the raw rows of the partial bucket the window starts
# in joined to their events (idx_event_feedback_created_at, then events_pkey: a few rows).
FEEDBACK_COUNTS_SQL = """
    SELECT {rollup_week} AS week, camera_id, feedback_type, sum(n)::int AS n
    FROM dashboard_feedback_rollup WHERE bucket >= %s
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT {raw_week}, e.camera_id, f.feedback_type, count(*)::int
    FROM event_feedback f JOIN events e ON e.id = f.event_id
    WHERE f.created_at >= %s AND f.created_at < %s
    GROUP BY 1, 2, 3
"""


def _week_sql(column: str) -> tuple[str, list]:
    """TruncWeek(column) as Django compiles it: weeks start on Monday in the current time zone."""
    sql, params = connection.ops.datetime_trunc_sql("week", column, (), timezone.get_current_timezone_name())
    return sql, list(params)


def feedback_counts(since: dt.datetime) -> list[dict]:
    """Feedback since `since` per (week, camera, type), as `n`, in no particular order.

    Both halves of FEEDBACK_COUNTS_SQL truncate to weeks like TruncWeek("created_at")
    (a bucket never straddles a week boundary, see the migration), so the sums are
    exactly the raw aggregation's. A key can come once from each half.
    """
    whole_from = _first_whole_bucket(since)
    rollup_week, rollup_params = _week_sql("bucket")
    raw_week, raw_params = _week_sql("f.created_at")
    sql = FEEDBACK_COUNTS_SQL.format(rollup_week=rollup_week, raw_week=raw_week)
    with connection.cursor() as cur:
        cur.execute(sql, [*rollup_params, whole_from, *raw_params, since, whole_from])
        rows = cur.fetchall()
    # As TruncWeek's converter does: the database gives local wall time, made aware here.
    tz = timezone.get_current_timezone() if settings.USE_TZ else None
    return [
        {
            "week": timezone.make_aware(week.replace(tzinfo=None), tz) if tz else week,
            "camera": camera,
            "type": kind,
            "n": n,
        }
        for week, camera, kind, n in rows
    ]


def feedback_stats(weeks: int) -> dict:
    """By type, by camera, and the false-positive rate per week over the last `weeks` weeks.

    One query for the counts (see feedback_counts) and one for the camera names."""
    since = timezone.now() - dt.timedelta(weeks=weeks)
    fp = FeedbackType.FALSE_POSITIVE
    by_type_n: Counter[str] = Counter()
    camera_n: Counter[str] = Counter()
    camera_fp: Counter[str] = Counter()
    week_n: Counter[dt.datetime] = Counter()
    week_fp: Counter[dt.datetime] = Counter()
    for r in feedback_counts(since):
        by_type_n[r["type"]] += r["n"]
        camera_n[r["camera"]] += r["n"]
        week_n[r["week"]] += r["n"]
        if r["type"] == fp:
            camera_fp[r["camera"]] += r["n"]
            week_fp[r["week"]] += r["n"]
    total = sum(by_type_n.values())
    by_type = [
        {"type": value, "label": label, "count": by_type_n[value], "share": _rate(by_type_n[value], total)}
        for value, label in FeedbackType.choices
    ]
    cameras = [c for c, n in camera_n.items() if n]
    # Ordered by the database (its collation decides ties on the total, as ORDER BY did).
    names = dict(Camera.objects.filter(id__in=cameras).order_by("id").values_list("id", "name"))
    rank = {c: i for i, c in enumerate(names)}
    by_camera = [
        {
            "event__camera_id": c,
            "event__camera__name": names.get(c),
            "total": camera_n[c],
            "false_positives": camera_fp[c],
            "fp_rate": _rate(camera_fp[c], camera_n[c]),
        }
        for c in sorted(cameras, key=lambda c: (-camera_n[c], rank.get(c, len(rank)), c))
    ]
    by_week = [
        {"week": w, "total": week_n[w], "false_positives": week_fp[w], "fp_rate": _rate(week_fp[w], week_n[w])}
        for w in sorted(w for w, n in week_n.items() if n)
    ]
    return {"since": since, "total": total, "by_type": by_type, "by_camera": by_camera, "by_week": by_week}


def rebuild_feedback_rollup() -> None:
    """Recompute dashboard_feedback_rollup from event_feedback and events (after a load with
    triggers disabled, session_replication_role = replica). Writers of both tables wait meanwhile."""
    with connection.cursor() as cur:
        cur.execute("SELECT dashboard_feedback_rollup_rebuild()")


def _mean(total, n):
    return total / n if n else None


def audit_stats(days: int, worst: int = 20) -> dict:
    """Average scores per bucket, model contribution rates, worst-scored events (last `days` days)."""
    since = timezone.now() - dt.timedelta(days=days)
    recent = EventAudit.objects.filter(audited_at__gte=since)  # idx_event_audits_audited_at
    trunc = TruncDay if days <= 31 else TruncWeek
    # One pass over the window: per-bucket counts and sums, from which the page's overall
    # averages and model rates are added up in Python. Two queries (per bucket, then overall)
    # read every audit in the window twice, the page's main cost at 50k audits.
    sums = {f"sum_{f}": Sum(f) for f in EventAudit.SCORE_FIELDS}
    counts = {f"n_{f}": Count(f) for f in EventAudit.SCORE_FIELDS}
    flag_counts = {f: Count("id", filter=Q(**{f: True})) for f in EventAudit.FLAG_FIELDS}
    rows = list(
        recent.annotate(bucket=trunc("audited_at"))
        .values("bucket")
        .annotate(
            n=Count("id"),
            **sums,
            **counts,
            **flag_counts,
            sum_utilization=Sum("enrichment_utilization"),
            sum_prompt_tokens=Sum("prompt_token_estimate"),
        )
        .order_by("bucket")
    )
    over_time = [
        {"bucket": r["bucket"], "n": r["n"], **{f: _mean(r[f"sum_{f}"], r[f"n_{f}"]) for f in EventAudit.SCORE_FIELDS}}
        for r in rows
    ]
    total = sum(r["n"] for r in rows)
    flags = {f: sum(r[f] for r in rows) for f in EventAudit.FLAG_FIELDS}
    for f in EventAudit.SCORE_FIELDS:
        flags[f"avg_{f}"] = _mean(sum(r[f"sum_{f}"] or 0 for r in rows), sum(r[f"n_{f}"] for r in rows))
    # Both columns are NOT NULL, so every audit counts towards their averages.
    flags["avg_utilization"] = _mean(sum(r["sum_utilization"] or 0 for r in rows), total)
    flags["avg_prompt_tokens"] = _mean(sum(r["sum_prompt_tokens"] or 0 for r in rows), total)
    contributions = [
        {
            "flag": f,
            "label": f.removeprefix("has_").replace("_", " "),
            "count": flags[f],
            "rate": _rate(flags[f], total),
        }
        for f in EventAudit.FLAG_FIELDS
    ]
    # idx_event_audits_overall_score walked from the lowest score.
    worst_rows = list(
        recent.filter(overall_quality_score__isnull=False)
        .select_related("event__camera")
        .order_by("overall_quality_score", "-audited_at")[:worst]
    )
    return {
        "since": since,
        "bucket": "day" if trunc is TruncDay else "week",
        "total": total,
        "overall": {f: flags[f"avg_{f}"] for f in EventAudit.SCORE_FIELDS},
        "avg_utilization": flags["avg_utilization"],
        "avg_prompt_tokens": flags["avg_prompt_tokens"],
        "over_time": over_time,
        "contributions": contributions,
        "worst": worst_rows,
    }
