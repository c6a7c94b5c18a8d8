"""Worker liveness for /healthz.

The web process cannot see django-q2's in-memory cluster stats (the ORM broker
keeps them in each process's cache), so the cluster runs `heartbeat` every minute
and /healthz reads the newest successful run from django-q2's own Success table.
"""

from __future__ import annotations

from django.utils import timezone

HEARTBEAT_FUNC = "dashboard.services.health.heartbeat"


def heartbeat() -> str:
    return timezone.now().isoformat()


def worker_heartbeat_age() -> float | None:
    from django_q.models import Success

    last = Success.objects.filter(func=HEARTBEAT_FUNC).order_by("-stopped").values_list("stopped", flat=True).first()
    return (timezone.now() - last).total_seconds() if last else None
