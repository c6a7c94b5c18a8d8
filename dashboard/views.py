from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def placeholder(request, title: str, issue: str):
    """Areas that later issues build: say so plainly instead of pretending."""
    return render(request, "placeholder.html", {"title": title, "issue": issue})


def home(request):
    return render(request, "dashboard/home.html", {"title": "Overview"})


def events_placeholder(request):
    return placeholder(request, "Events", "Event review (issue 6)")


def _worker_heartbeat_age() -> float | None:
    """Seconds since the django-q2 cluster last reported in, or None if never."""
    try:
        from django_q.models import Schedule  # noqa: F401
        from django_q.status import Stat

        stats = Stat.get_all()
    except Exception:
        stats = []
    ages = []
    now = timezone.now()
    for stat in stats:
        ts = getattr(stat, "tob", None) or getattr(stat, "timestamp", None)
        if ts:
            ages.append((now - ts).total_seconds())
    if ages:
        return min(ages)
    # The ORM broker leaves a trace in django_q_ormq/success; the newest task is a fallback.
    from django_q.models import Success

    last = Success.objects.order_by("-stopped").values_list("stopped", flat=True).first()
    return (now - last).total_seconds() if last else None


@login_not_required
@never_cache
@require_GET
def healthz(request):
    body: dict = {"database": "ok"}
    status = 200
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception as exc:  # the point of this endpoint is to report it, not to 500
        body["database"] = f"unreachable: {exc.__class__.__name__}"
        status = 503
    age = None
    if status == 200:
        try:
            age = _worker_heartbeat_age()
        except Exception:
            age = None
    body["worker_heartbeat_age_seconds"] = None if age is None else round(age, 1)
    body["worker"] = "unknown" if age is None else ("ok" if age < dt.timedelta(minutes=2).total_seconds() else "stale")
    body["status"] = "ok" if status == 200 else "error"
    return JsonResponse(body, status=status)
