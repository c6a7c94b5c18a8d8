"""Start the rule engine when an event is created or its risk score changes (after commit).

The events one transaction saves are evaluated together: one task
(`alerting.tasks.evaluate_events`, per EVALUATION_CHUNK events) once it commits,
not one task per event, so an import or a re-scoring pass gets the engine's batched
write path. An event saved on its own (autocommit) still gets its task at once.

QuerySet.update() and bulk_create() send no signals; code that creates or re-scores
events that way enqueues `alerting.tasks.evaluate_events` with the ids itself.
"""

from __future__ import annotations

import threading

from django.db import transaction
from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from dashboard.models import Event

_ATTR = "_alerting_loaded_risk_score"


@receiver(post_init, sender=Event, dispatch_uid="alerting.remember_risk_score")
def remember_risk_score(sender, instance, **kwargs):
    instance.__dict__[_ATTR] = instance.__dict__.get("risk_score")


@receiver(post_save, sender=Event, dispatch_uid="alerting.evaluate_on_save")
def evaluate_on_save(sender, instance, created, raw=False, using=None, **kwargs):
    if raw:  # fixtures / loaddata
        return
    before = instance.__dict__.get(_ATTR)
    now = instance.__dict__.get("risk_score")
    instance.__dict__[_ATTR] = now
    if created or before != now:
        evaluate_after_commit(instance.pk, using=using)


class PendingEvaluations:
    """The events saved in one transaction; `enqueue` is its one on-commit callback."""

    def __init__(self, using: str | None):
        self.using = using
        self.ids: list[int] = []
        self.hooks = None  # the connection's on-commit list when `enqueue` was registered
        self.enqueued = False

    def enqueue(self) -> None:
        self.enqueued = True
        enqueue_evaluation(self.ids)


_local = threading.local()


def evaluate_after_commit(event_id: int, using: str | None = None) -> None:
    """Evaluate the event once the current transaction commits, with the others it saved."""
    conn = transaction.get_connection(using)
    pending: PendingEvaluations | None = getattr(_local, "pending", None)
    # Django replaces connection.run_on_commit with a new list at every commit, rollback
    # and savepoint rollback, so while it is still the list our callback went into, that
    # callback is still to run, after this event's commit too. Otherwise a new batch.
    if (
        conn.in_atomic_block
        and pending is not None
        and not pending.enqueued
        and pending.using == using
        and pending.hooks is conn.run_on_commit
    ):
        pending.ids.append(event_id)
        return
    pending = PendingEvaluations(using)
    pending.ids.append(event_id)
    _local.pending = pending if conn.in_atomic_block else None
    transaction.on_commit(pending.enqueue, using=using)  # outside a transaction: runs now
    pending.hooks = conn.run_on_commit


def enqueue_evaluation(event_ids: list[int]) -> None:
    from django_q.tasks import async_task

    from alerting.tasks import EVALUATION_CHUNK

    for start in range(0, len(event_ids), EVALUATION_CHUNK):
        chunk = event_ids[start : start + EVALUATION_CHUNK]
        name = f"evaluate-event-{chunk[0]}" if len(chunk) == 1 else f"evaluate-events-{chunk[0]}-{len(chunk)}"
        async_task("alerting.tasks.evaluate_events", chunk, task_name=name, group="alerting")
