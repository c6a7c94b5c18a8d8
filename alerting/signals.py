"""Start the rule engine when an event is created or its risk score changes (after commit).

QuerySet.update() and bulk_create() send no signals; code that re-scores events
that way calls `alerting.tasks.evaluate_event` itself.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from dashboard.models import Event

_ATTR = "_alerting_loaded_risk_score"


@receiver(post_init, sender=Event, dispatch_uid="alerting.remember_risk_score")
def remember_risk_score(sender, instance, **kwargs):
    instance.__dict__[_ATTR] = instance.__dict__.get("risk_score")


@receiver(post_save, sender=Event, dispatch_uid="alerting.evaluate_on_save")
def evaluate_on_save(sender, instance, created, raw=False, **kwargs):
    if raw:  # fixtures / loaddata
        return
    before = instance.__dict__.get(_ATTR)
    now = instance.__dict__.get("risk_score")
    instance.__dict__[_ATTR] = now
    if created or before != now:
        event_id = instance.pk
        transaction.on_commit(lambda: _enqueue(event_id))


def _enqueue(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task("alerting.tasks.evaluate_event", event_id, task_name=f"evaluate-event-{event_id}", group="alerting")
