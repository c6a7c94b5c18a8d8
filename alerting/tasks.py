"""django-q2 entry points and tracked job types of the alerting app.

Every function takes primary keys (or nothing), loads what it needs and calls one
service; each is safe to run twice.
"""

from __future__ import annotations

import logging

from alerting.services import baselines, engine, notify
from jobs.services.tracked import register

logger = logging.getLogger(__name__)


# Events per engine call in evaluate_events: one load query and one write transaction
# (per engine.WRITE_CHUNK alerts) for this many events, instead of one commit per event.
EVALUATION_CHUNK = 500


def evaluate_events(event_ids: list[int]) -> dict:
    """Evaluate several events at once: the events one transaction saved (alerting/signals.py),
    and what code that bulk-creates or re-scores events with update() enqueues itself.

    Chunks of EVALUATION_CHUNK events; a chunk that fails does not stop the later ones,
    and its error is raised at the end so the task shows as failed (running it again is
    safe: evaluation is idempotent).
    """
    ids = list(dict.fromkeys(int(i) for i in event_ids))
    evaluated, alerts, suppressed, first_error = 0, [], 0, None
    for start in range(0, len(ids), EVALUATION_CHUNK):
        chunk = ids[start : start + EVALUATION_CHUNK]
        try:
            results = engine.evaluate_events(chunk)
        except Exception as exc:
            logger.exception("rule engine: %d events from %s not all evaluated", len(chunk), chunk[0])
            first_error = first_error or exc
            continue
        evaluated += len(results)
        alerts += [str(a.pk) for r in results for a in r.created]
        suppressed += sum(len(r.suppressed) for r in results)
    if first_error is not None:
        raise first_error
    return {"events": len(ids), "missing": len(ids) - evaluated, "alerts": alerts, "suppressed": suppressed}


def evaluate_event(event_id: int) -> dict:
    """One event (tasks queued before evaluate_events existed, callers with one event)."""
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
