"""django-q2 schedules of the jobs app; `ensure_schedules()` is idempotent (run it at every start).

- jobs-dispatch-due: every minute, hand retries whose backoff has elapsed to django-q2
  (so retry delays have one-minute granularity; see jobs/services/tracked.py).
- jobs-timeout-sweep: every minute, detect running jobs whose worker died.
- jobs-retention: daily, start the tracked retention job.
"""

from __future__ import annotations

from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "jobs-dispatch-due",
        "func": "jobs.tasks.dispatch_due_jobs",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "jobs-timeout-sweep",
        "func": "jobs.tasks.sweep_timeouts",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {"name": "jobs-retention", "func": "jobs.tasks.enqueue_retention", "schedule_type": Schedule.DAILY},
]


def ensure_schedules() -> list[str]:
    names = []
    for spec in SCHEDULES:
        spec = dict(spec)
        name = spec.pop("name")
        defaults = {"repeats": -1, "minutes": None, **spec}
        Schedule.objects.update_or_create(name=name, defaults=defaults)
        names.append(name)
    return names
