"""The rule engine starts after commit when an event is created or re-scored; concurrent runs stay single."""

import threading

import pytest
from django.db import connection, connections

from alerting.models import Alert
from alerting.services.engine import evaluate_event
from tests import factories
from tests.alerting.helpers import make_event


@pytest.mark.django_db
def test_new_event_is_evaluated_after_commit(django_capture_on_commit_callbacks):
    factories.AlertRuleFactory(risk_threshold=50, object_types=None, min_confidence=None)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event = factories.EventFactory(risk_score=80)
    assert len(_evaluations(callbacks)) == 1
    assert Alert.objects.filter(event=event).count() == 1


@pytest.mark.django_db
def test_rescored_event_is_evaluated_and_unchanged_save_is_not(django_capture_on_commit_callbacks):
    factories.AlertRuleFactory(risk_threshold=50, object_types=None, min_confidence=None)
    with django_capture_on_commit_callbacks(execute=True):
        event = factories.EventFactory(risk_score=10)
    assert not Alert.objects.exists()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event.summary = "edited"
        event.save()
    assert _evaluations(callbacks) == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event.risk_score = 90
        event.save()
    assert len(_evaluations(callbacks)) == 1
    assert Alert.objects.filter(event=event).count() == 1
    # A fresh instance loaded from the database remembers its score too.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        from dashboard.models import Event

        again = Event.objects.get(pk=event.pk)
        again.risk_score = 95
        again.save()
    assert len(_evaluations(callbacks)) == 1
    assert Alert.objects.filter(event=event).count() == 1  # idempotent


def _evaluations(callbacks):
    # The events one transaction saves share one on-commit callback (alerting/signals.py).
    return [cb for cb in callbacks if getattr(cb, "__qualname__", "") == "PendingEvaluations.enqueue"]


def _run_concurrently(n, target):
    barrier = threading.Barrier(n)
    errors = []

    def worker():
        try:
            barrier.wait(timeout=10)
            target()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cooldown", [0, 300])
def test_concurrent_evaluation_of_one_event_creates_one_alert(cooldown):
    event = make_event(risk=90)  # no rule yet, so the after-commit evaluation finds nothing
    rule = factories.AlertRuleFactory(
        risk_threshold=50, object_types=None, min_confidence=None, cooldown_seconds=cooldown
    )
    _run_concurrently(6, lambda: evaluate_event(event.pk))
    assert Alert.objects.filter(event=event, rule=rule).count() == 1
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_events_with_one_dedup_key_respect_the_cooldown():
    cam = factories.CameraFactory()
    events = [make_event(cam, risk=90) for _ in range(6)]
    rule = factories.AlertRuleFactory(risk_threshold=50, object_types=None, min_confidence=None, cooldown_seconds=600)
    ids = iter(e.pk for e in events)
    lock = threading.Lock()

    def one():
        with lock:
            pk = next(ids)
        evaluate_event(pk)

    _run_concurrently(6, one)
    assert Alert.objects.filter(rule=rule).count() == 1
