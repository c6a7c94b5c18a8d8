"""django-q2 entry points and tracked job types of the alerting app.

Every function takes primary keys (or nothing), loads what it needs and calls one
service; each is safe to run twice.
"""

from __future__ import annotations

from alerting.services import baselines, engine, notify
from jobs.services.tracked import register


def evaluate_event(event_id: int) -> dict:
    """Started after commit when an event is created or re-scored (alerting/signals.py)."""
    result = engine.evaluate_event(event_id)
    if result is None:
        return {"event_id": event_id, "missing": True}
    return {
        "event_id": event_id,
        "alerts": [str(a.pk) for a in result.created],
        "suppressed": [[str(r), key, why] for r, key, why in result.suppressed],
    }


def update_baselines() -> dict:
    """Hourly schedule (alerting/schedules.py): fold the previous complete hour into the baselines."""
    return baselines.update_hour()


@register("alert_delivery", timeout=120, retry_base=10, retry_max=600, label="Alert delivery")
def deliver_alert(ctx, *, alert_id: str, channel_type: str, target: str):
    """One attempt to send an alert through one channel; raising lets the job retry with backoff."""
    row = notify.deliver(alert_id, channel_type, target, job_id=ctx.job_id)
    if row is None:
        return {"skipped": True}
    return {"delivery_id": row.pk, "attempt": row.attempt, "http_status": row.http_status}


@register("baseline_rebuild", timeout=1800, label="Baseline rebuild")
def rebuild_baselines(ctx, *, camera_id: str | None = None):
    return baselines.rebuild(camera_id=camera_id, ctx=ctx)
