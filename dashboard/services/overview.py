"""Data of the overview (home) widgets. Each is a handful of index-driven queries
whose cost does not grow with the size of the history tables."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Count
from django.utils import timezone

from alerting.models import Alert
from dashboard.choices import CameraStatus, RiskLevel, Severity
from dashboard.models import Camera, Event, today_start
from jobs.models import Job
from monitoring.models import GpuStat, Log

logger = logging.getLogger(__name__)

# (key, title, URL name of the area the widget summarises), in display order.
WIDGETS = [
    ("gpus", "GPUs now", "monitoring:gpu"),
    ("alerts", "Pending alerts", "alerting:alerts"),
    ("jobs", "Running jobs", "jobs:list"),
    ("events", "Events today", "dashboard:events"),
    ("logs", "Errors in the last hour", "monitoring:logs"),
    ("cameras", "Cameras", "dashboard:events"),
]
# A GPU whose newest sample is older than this is shown as stale (sampler stopped?).
GPU_STALE_AFTER = dt.timedelta(minutes=2)
# A camera marked online that has not been seen for this long is flagged as silent.
CAMERA_SILENT_AFTER = dt.timedelta(minutes=10)
RUNNING_JOBS_SHOWN = 8
RECENT_ERRORS_SHOWN = 5


def _latest_gpu_samples() -> list:
    """Newest sample per (host, gpu_index): one index probe per GPU on idx_gpu_stats_gpu_recorded_at."""
    return list(GpuStat.objects.latest_per_gpu())


def _no_gpu_reason() -> str:
    """Why there are no GPU samples, as the sampler last reported it (monitoring's SamplerStatus)."""
    try:
        from monitoring.models import SamplerStatus
    except ImportError:
        return "no GPU samples have been recorded (is the worker running?)"
    status = SamplerStatus.objects.filter(available=False).exclude(reason=None).order_by("-updated_at").first()
    if status is not None and status.reason:
        return status.reason
    return "no GPU samples have been recorded (is the worker running?)"


def gpus_widget() -> dict:
    """Monitoring's gpu_status() (latest sample per GPU + why there is none), else the same from the tables."""
    try:
        from monitoring.services.sampler import gpu_status
    except ImportError:
        gpu_status = None
    if gpu_status is not None:
        status = gpu_status()
        gpus = [
            {
                "sample": card["sample"],
                "stale": card["stale"],
                "memory_percent": None if card["memory_percent"] is None else round(card["memory_percent"]),
                "memory_level": card["memory_pressure"],
            }
            for card in status["gpus"]
        ]
        reason = None if status["available"] else (status["reason"] or "unknown reason")
        return {"gpus": gpus, "reason": reason}
    now = timezone.now()
    gpus = []
    for s in _latest_gpu_samples():
        mem_pct = round(100 * s.memory_used / s.memory_total) if s.memory_used is not None and s.memory_total else None
        gpus.append(
            {
                "sample": s,
                "stale": now - s.recorded_at > GPU_STALE_AFTER,
                "memory_percent": mem_pct,
                "memory_level": None
                if mem_pct is None
                else ("critical" if mem_pct >= 95 else "warning" if mem_pct >= 85 else "ok"),
            }
        )
    reason = None if gpus else _no_gpu_reason()
    return {"gpus": gpus, "reason": reason}


def alerts_widget() -> dict:
    # idx_alerts_status: only open alerts are read, however long the history.
    rows = Alert.objects.open().order_by().values("severity").annotate(n=Count("id"))
    counts = {r["severity"]: r["n"] for r in rows}
    levels = [{"value": v, "label": label, "count": counts.get(v, 0)} for v, label in reversed(Severity.choices)]
    return {"levels": levels, "total": sum(counts.values())}


def jobs_widget() -> dict:
    # idx_jobs_status; one row more than shown tells whether there are more.
    running = list(Job.objects.running().order_by("-started_at", "-created_at")[: RUNNING_JOBS_SHOWN + 1])
    return {"jobs": running[:RUNNING_JOBS_SHOWN], "more": len(running) > RUNNING_JOBS_SHOWN}


def events_widget() -> dict:
    start = today_start()
    # A range of idx_events_started_at_id (today only).
    rows = Event.objects.filter(started_at__gte=start).order_by().values("risk_level").annotate(n=Count("id"))
    counts = {r["risk_level"]: r["n"] for r in rows}
    levels = [{"value": v, "label": label, "count": counts.get(v, 0)} for v, label in reversed(RiskLevel.choices)]
    unscored = counts.get(None, 0)
    return {"levels": levels, "unscored": unscored, "total": sum(counts.values()), "since": start}


def logs_widget() -> dict:
    now = timezone.now()
    since = now - dt.timedelta(hours=1)
    # idx_logs_timestamp bounds both queries to the last hour.
    errors = Log.objects.errors().between(since, now)
    return {
        "count": errors.count(),
        "recent": list(errors.order_by("-timestamp", "-id")[:RECENT_ERRORS_SHOWN]),
        "since": since,
    }


def cameras_widget() -> dict:
    now = timezone.now()
    cameras = list(Camera.objects.order_by("name", "id").only("id", "name", "status", "last_seen_at"))
    counts = {v: 0 for v in CameraStatus.values}
    attention = []
    for cam in cameras:
        counts[cam.status] = counts.get(cam.status, 0) + 1
        silent = cam.status == CameraStatus.ONLINE and (
            cam.last_seen_at is None or now - cam.last_seen_at > CAMERA_SILENT_AFTER
        )
        if cam.status != CameraStatus.ONLINE or silent:
            attention.append({"camera": cam, "silent": silent})
    return {
        "total": len(cameras),
        "online": counts.get(CameraStatus.ONLINE, 0),
        "offline": counts.get(CameraStatus.OFFLINE, 0),
        "error": counts.get(CameraStatus.ERROR, 0),
        "attention": attention,
    }


BUILDERS = {
    "gpus": gpus_widget,
    "alerts": alerts_widget,
    "jobs": jobs_widget,
    "events": events_widget,
    "logs": logs_widget,
    "cameras": cameras_widget,
}
