from django_q.models import Schedule

from dashboard.services.health import HEARTBEAT_FUNC


def ensure_schedules() -> None:
    Schedule.objects.update_or_create(
        name="worker-heartbeat",
        defaults={"func": HEARTBEAT_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
