"""django-q2 schedules of the monitoring app; `make run` calls ensure_schedules() at start-up."""

from __future__ import annotations

SAMPLER_SCHEDULE = "monitoring.sample_gpus"
SAMPLER_FUNC = "monitoring.tasks.sample_gpus"


def ensure_schedules() -> None:
    """Idempotent: a per-minute schedule; each run samples until the next one takes over (see run_sampler)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SAMPLER_SCHEDULE,
        defaults={"func": SAMPLER_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
