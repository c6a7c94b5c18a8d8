"""django-q2 schedules of the alerting app; `make run` calls ensure_schedules() (idempotent)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_q.models import Schedule

BASELINE_SCHEDULE = "alerting-baselines-hourly"


def ensure_schedules() -> None:
    # Two minutes past each hour, so the previous hour's last events have landed.
    now = timezone.now()
    next_run = now.replace(minute=2, second=0, microsecond=0)
    if next_run <= now:
        next_run += dt.timedelta(hours=1)
    schedule, created = Schedule.objects.get_or_create(
        name=BASELINE_SCHEDULE,
        defaults={
            "func": "alerting.tasks.update_baselines",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
            "next_run": next_run,
        },
    )
    if not created and (
        schedule.func != "alerting.tasks.update_baselines" or schedule.schedule_type != Schedule.HOURLY
    ):
        schedule.func = "alerting.tasks.update_baselines"
        schedule.schedule_type = Schedule.HOURLY
        schedule.repeats = -1
        schedule.save()
