"""Alert life cycle: pending → delivered → acknowledged | dismissed, with optimistic locking.

Every change is one compare-and-swap ``UPDATE … WHERE id = %s AND version_id = %s``
that also bumps ``version_id``; a stale version writes nothing and raises
:class:`Conflict`. Each change writes one audit row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from alerting.choices import ACKNOWLEDGEABLE, DISMISSABLE, AlertStatus

CONFLICT_MESSAGE = "This alert was changed by someone else; reload and try again."


class AlertActionError(Exception):
    """A refused change; `message` is for people, `status` the HTTP status to answer."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Conflict(AlertActionError):
    status = 409

    def __init__(self, message: str = CONFLICT_MESSAGE):
        super().__init__(message)


class NotAllowed(AlertActionError):
    status = 409


class NotFound(AlertActionError):
    status = 404


ACTIONS = {
    # action: (target status, statuses it may come from, refusal)
    "acknowledge": (AlertStatus.ACKNOWLEDGED, ACKNOWLEDGEABLE, "Only pending or delivered alerts can be acknowledged"),
    "dismiss": (AlertStatus.DISMISSED, DISMISSABLE, "This alert is already dismissed"),
}


def change_status(alert_id, expected_version: int, action: str, *, request=None, actor: str | None = None):
    """Apply `action` if the alert is still at `expected_version`; returns the updated Alert."""
    from alerting.models import Alert
    from monitoring.services.audit import record

    if action not in ACTIONS:
        raise AlertActionError(f"Unknown action {action!r}.")
    target, allowed, refusal = ACTIONS[action]
    try:
        alert_id = uuid.UUID(str(alert_id))
    except ValueError:
        raise NotFound("No alert has this id.")
    try:
        expected_version = int(expected_version)
    except (TypeError, ValueError):
        raise AlertActionError("The alert version is missing or not a number; reload and try again.")
    now = timezone.now()
    current = None
    with transaction.atomic():
        with connection.cursor() as cur:
            # The locked sub-select hands back the status as it was just before this change (for the audit).
            cur.execute(
                "UPDATE alerts a SET status = %s, version_id = a.version_id + 1, updated_at = %s"
                " FROM (SELECT id, status FROM alerts WHERE id = %s FOR UPDATE) old"
                " WHERE a.id = old.id AND a.version_id = %s AND a.status = ANY(%s)"
                " RETURNING old.status",
                [target, now, alert_id, expected_version, [str(s) for s in allowed]],
            )
            row = cur.fetchone()
        if row is not None:
            record(
                f"alert.{action}",
                "alert",
                alert_id,
                request=request,
                actor=actor,
                details={
                    "changes": {
                        "status": [row[0], str(target)],
                        "version_id": [expected_version, expected_version + 1],
                    }
                },
            )
        else:
            current = Alert.objects.filter(pk=alert_id).values("status", "version_id").first()
    if row is None:
        # Refusals are audited outside the (empty) transaction so the row survives the raise.
        if current is None:
            raise NotFound("This alert no longer exists.")
        if current["version_id"] != expected_version:
            record(
                f"alert.{action}",
                "alert",
                alert_id,
                request=request,
                actor=actor,
                details={
                    "reason": "conflict",
                    "expected_version": expected_version,
                    "current_version": current["version_id"],
                },  # fmt: skip
                status="failure",
            )
            raise Conflict()
        raise NotAllowed(f"{refusal}; it is {current['status']}.")
    return Alert.objects.select_related("rule", "event").get(pk=alert_id)


DONE_MESSAGES = {"acknowledge": "Acknowledged.", "dismiss": "Dismissed."}


def acknowledge(alert_id, expected_version, **kw):
    return change_status(alert_id, expected_version, "acknowledge", **kw)


def dismiss(alert_id, expected_version, **kw):
    return change_status(alert_id, expected_version, "dismiss", **kw)


@dataclass
class BulkResult:
    alert_id: str
    ok: bool
    message: str
    alert: object = None


def bulk_change(items, action: str, *, request=None) -> list[BulkResult]:
    """`items`: (alert_id, expected_version) pairs; each succeeds or fails on its own."""
    results = []
    for alert_id, version in items:
        try:
            alert = change_status(alert_id, version, action, request=request)
            results.append(BulkResult(str(alert_id), True, DONE_MESSAGES[action], alert))
        except AlertActionError as exc:
            results.append(BulkResult(str(alert_id), False, exc.message))
    return results
