"""Feedback and event-audit statistics, aggregated in SQL (one row per bucket or group)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Avg, Count, OuterRef, Q, Subquery
from django.db.models.functions import TruncDay, TruncWeek
from django.utils import timezone

from dashboard.choices import FeedbackType
from dashboard.models import Camera, Event, EventAudit, EventFeedback


def _rate(part: int, total: int) -> float | None:
    return part / total if total else None


def feedback_stats(weeks: int) -> dict:
    """By type, by camera, and the false-positive rate per week over the last `weeks` weeks.

    Every query is bounded by idx_event_feedback_created_at."""
    since = timezone.now() - dt.timedelta(weeks=weeks)
    recent = EventFeedback.objects.filter(created_at__gte=since)
    labels = dict(FeedbackType.choices)
    by_type_rows = recent.values("feedback_type").annotate(n=Count("id")).order_by()
    counts = {r["feedback_type"]: r["n"] for r in by_type_rows}
    total = sum(counts.values())
    by_type = [
        {"type": value, "label": label, "count": counts.get(value, 0), "share": _rate(counts.get(value, 0), total)}
        for value, label in labels.items()
    ]
    fp = Q(feedback_type=FeedbackType.FALSE_POSITIVE)
    # The camera comes from a scalar subquery per feedback row (events_pkey) rather than a join:
    # for a join the planner would hash all of events (a sequential scan of millions of rows)
    # to match a few thousand feedback rows.
    camera_of_event = Subquery(Event.objects.filter(pk=OuterRef("event_id")).values("camera_id")[:1])
    per_camera = (
        recent.annotate(camera=camera_of_event)
        .values("camera")
        .annotate(total=Count("id"), false_positives=Count("id", filter=fp))
        .order_by("-total", "camera")
    )
    rows = list(per_camera)
    names = dict(Camera.objects.filter(id__in=[r["camera"] for r in rows]).values_list("id", "name"))
    by_camera = [
        {
            "event__camera_id": r["camera"],
            "event__camera__name": names.get(r["camera"]),
            "total": r["total"],
            "false_positives": r["false_positives"],
            "fp_rate": _rate(r["false_positives"], r["total"]),
        }
        for r in rows
    ]
    by_week = [
        {**r, "fp_rate": _rate(r["false_positives"], r["total"])}
        for r in recent.annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(total=Count("id"), false_positives=Count("id", filter=fp))
        .order_by("week")
    ]
    return {"since": since, "total": total, "by_type": by_type, "by_camera": by_camera, "by_week": by_week}


def audit_stats(days: int, worst: int = 20) -> dict:
    """Average scores per bucket, model contribution rates, worst-scored events (last `days` days)."""
    since = timezone.now() - dt.timedelta(days=days)
    recent = EventAudit.objects.filter(audited_at__gte=since)  # idx_event_audits_audited_at
    trunc = TruncDay if days <= 31 else TruncWeek
    averages = {f: Avg(f) for f in EventAudit.SCORE_FIELDS}
    over_time = list(
        recent.annotate(bucket=trunc("audited_at"))
        .values("bucket")
        .annotate(n=Count("id"), **averages)
        .order_by("bucket")
    )
    flags = recent.aggregate(
        total=Count("id"),
        **{f: Count("id", filter=Q(**{f: True})) for f in EventAudit.FLAG_FIELDS},
        **{f"avg_{f}": Avg(f) for f in EventAudit.SCORE_FIELDS},
        avg_utilization=Avg("enrichment_utilization"),
        avg_prompt_tokens=Avg("prompt_token_estimate"),
    )
    total = flags["total"]
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
