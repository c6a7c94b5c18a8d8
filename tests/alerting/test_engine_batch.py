"""Batched evaluation: many events, few transactions, the same alerts as one event at a time."""

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from alerting import signals, tasks
from alerting.models import Alert
from alerting.services import engine
from dashboard.models import Event
from tests import factories
from tests.alerting.helpers import make_event


def rule(**kw):
    defaults = {"risk_threshold": None, "object_types": None, "min_confidence": None, "cooldown_seconds": 0}
    return factories.AlertRuleFactory(**{**defaults, **kw})


@pytest.mark.django_db
def test_a_batch_creates_the_alerts_one_event_at_a_time_would():
    cam, other = factories.CameraFactory(), factories.CameraFactory()
    events = [make_event(cam), make_event(other), make_event(cam), make_event(cam, risk=10)]
    cooldown = rule(name="cooldown", cooldown_seconds=300, risk_threshold=50)
    every = rule(name="every event", cooldown_seconds=0)

    # Given newest first, the newest event of `cam` wins the cooldown key, not the lowest id.
    order = [events[2].pk, events[1].pk, events[0].pk, events[3].pk]
    results = engine.evaluate_events(order)

    assert [r.event_id for r in results] == order
    assert [[a.rule_id for a in r.created] for r in results] == [
        [cooldown.pk, every.pk],
        [cooldown.pk, every.pk],  # another camera: another dedup key
        [every.pk],
        [every.pk],  # risk 10: the cooldown rule does not match
    ]
    assert results[2].suppressed == [(cooldown.pk, f"{cam.pk}:{cooldown.pk}", "cooldown of 300 s")]
    assert Alert.objects.filter(rule=cooldown).count() == 2
    assert Alert.objects.filter(rule=every).values("event").distinct().count() == 4
    # Evaluating the batch again creates nothing.
    again = engine.evaluate_events(order)
    assert all(r.created == [] for r in again)
    assert Alert.objects.count() == 6


@pytest.mark.django_db
def test_a_batch_writes_its_alerts_with_a_fixed_number_of_queries():
    cam = factories.CameraFactory()
    ids = [make_event(cam).pk for _ in range(30)]
    rule(cooldown_seconds=0)
    rule(cooldown_seconds=0, dedup_key_template="{camera_id}:{object_type}")
    engine.evaluate_events(ids[:1])  # warm the rule cache
    Alert.objects.all().delete()

    with CaptureQueriesContext(connection) as ctx:
        results = engine.evaluate_events(ids)

    assert sum(len(r.created) for r in results) == 60
    # Load, lock, cooldown lookup, insert (plus the savepoint around them in this test's transaction):
    # not one transaction per event.
    work = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(work) <= 6, work


@pytest.mark.django_db
def test_large_batches_are_written_in_chunks_that_keep_the_cooldown(monkeypatch):
    monkeypatch.setattr(engine, "WRITE_CHUNK", 3)
    cam = factories.CameraFactory()
    ids = [make_event(cam).pk for _ in range(10)]
    every = rule(cooldown_seconds=0)
    cooldown = rule(cooldown_seconds=300)

    results = engine.evaluate_events(ids)

    assert Alert.objects.filter(rule=every).count() == 10
    # The first event's alert, committed with the first chunk, holds the key for all later chunks.
    assert list(Alert.objects.filter(rule=cooldown).values_list("event_id", flat=True)) == [ids[0]]
    assert sum(len(r.suppressed) for r in results) == 9


@pytest.mark.django_db(transaction=True)
def test_one_failing_event_does_not_lose_the_other_events_alerts(caplog):
    cam = factories.CameraFactory()
    events = [make_event(cam, risk=90) for _ in range(3)]  # no rule yet: their own evaluation finds none
    r = rule(cooldown_seconds=0)
    views, fingerprint = engine.load_event_views([e.pk for e in events])
    gone = events[1].pk
    events[1].delete()  # deleted while being evaluated: its alert cannot be inserted

    with pytest.raises(IntegrityError):
        engine.evaluate_views(views, engine._ruleset_for(fingerprint))

    assert sorted(Alert.objects.filter(rule=r).values_list("event_id", flat=True)) == [events[0].pk, events[2].pk]
    assert "retrying event by event" in caplog.text
    assert f"the alerts of event {gone} were not written" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_create_one_alert_per_rule_and_key():
    cam = factories.CameraFactory()
    ids = [make_event(cam, risk=90).pk for _ in range(12)]
    every = rule(cooldown_seconds=0)
    cooldown = rule(cooldown_seconds=600)
    # Each thread evaluates the events in another order and with other neighbours.
    batches = [ids, ids[::-1], ids[3:] + ids[:3], ids[::2] + ids[1::2], ids[6:], ids[:6]]
    barrier = threading.Barrier(len(batches))
    errors = []

    def worker(batch):
        try:
            barrier.wait(timeout=10)
            engine.evaluate_events(batch)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert Alert.objects.filter(rule=every).count() == 12
    assert Alert.objects.filter(rule=every).values("event").distinct().count() == 12
    assert Alert.objects.filter(rule=cooldown).count() == 1
    connection.close()


@pytest.mark.django_db
def test_the_task_evaluates_in_chunks_and_reports(monkeypatch):
    monkeypatch.setattr(tasks, "EVALUATION_CHUNK", 2)
    cam = factories.CameraFactory()
    ids = [make_event(cam).pk for _ in range(5)]
    rule(cooldown_seconds=0)

    out = tasks.evaluate_events([*ids, ids[0], 987654321])

    assert out["events"] == 6 and out["missing"] == 1
    assert len(out["alerts"]) == 5
    assert Alert.objects.count() == 5


# --- The trigger: events saved in one transaction are evaluated together -------------------------------


def _enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(signals, "enqueue_evaluation", lambda ids: calls.append(list(ids)))
    return calls


@pytest.mark.django_db(transaction=True)
def test_events_saved_in_one_transaction_are_evaluated_by_one_task(monkeypatch):
    calls = _enqueued(monkeypatch)
    cam = factories.CameraFactory()
    with transaction.atomic():
        events = [factories.EventFactory(camera=cam, risk_score=90) for _ in range(4)]
        assert calls == []  # nothing before the commit
    assert calls == [[e.pk for e in events]]


@pytest.mark.django_db(transaction=True)
def test_an_event_saved_on_its_own_is_evaluated_at_once(monkeypatch):
    calls = _enqueued(monkeypatch)
    event = factories.EventFactory(risk_score=90)
    assert calls == [[event.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_nothing_pending(monkeypatch):
    calls = _enqueued(monkeypatch)
    cam = factories.CameraFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        factories.EventFactory(camera=cam, risk_score=90)
        raise RuntimeError("rolled back")
    assert calls == []
    with transaction.atomic():
        kept = factories.EventFactory(camera=cam, risk_score=90)
    assert calls == [[kept.pk]]  # a new batch of its own, evaluated on commit


@pytest.mark.django_db(transaction=True)
def test_a_savepoint_rollback_keeps_the_events_saved_before_it(monkeypatch):
    calls = _enqueued(monkeypatch)
    cam = factories.CameraFactory()
    with transaction.atomic():
        before = factories.EventFactory(camera=cam, risk_score=90)
        with pytest.raises(RuntimeError), transaction.atomic():
            factories.EventFactory(camera=cam, risk_score=90)
            raise RuntimeError("savepoint rolled back")
        after = factories.EventFactory(camera=cam, risk_score=90)
    evaluated = [pk for call in calls for pk in call]
    assert before.pk in evaluated and after.pk in evaluated
    assert Event.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_transaction_saving_events_creates_their_alerts_after_commit():
    cam = factories.CameraFactory()
    r = rule(risk_threshold=50, cooldown_seconds=0)
    with transaction.atomic():
        events = [factories.EventFactory(camera=cam, risk_score=score) for score in (90, 10, 70)]
        assert not Alert.objects.exists()
    assert sorted(Alert.objects.filter(rule=r).values_list("event_id", flat=True)) == [events[0].pk, events[2].pk]


@pytest.mark.django_db
def test_inserted_alerts_are_complete_rows_and_saved_instances():
    ev = make_event(risk=80)
    quiet = rule(name="a quiet", risk_threshold=50)
    loud = rule(name="b loud", channels=[{"type": "webhook", "url": "https://hooks.example.com/x", "secret": "s"}])

    created = {a.rule_id: a for a in engine.evaluate_events([ev.pk])[0].created}

    assert set(created) == {quiet.pk, loud.pk}
    stored = Alert.objects.get(rule=quiet)
    assert stored.channels is None and Alert.objects.filter(rule=quiet, channels__isnull=True).exists()
    assert stored.status == "pending" and stored.version_id == 1 and stored.event_id == ev.pk
    assert stored.created_at == stored.updated_at == created[quiet.pk].created_at
    assert stored.metadata["reasons"]["risk_threshold"] == "risk 80 ≥ 50"
    assert Alert.objects.get(rule=loud).channels == [{"type": "webhook", "url": "https://hooks.example.com/x"}]
    # The returned instances behave as loaded ones.
    alert = created[loud.pk]
    assert not alert._state.adding
    alert.refresh_from_db()
    assert alert.dedup_key == f"{ev.camera_id}:{loud.pk}"


@pytest.mark.django_db
def test_batches_work_without_prepared_statements(settings):
    settings.ALERTING_PREPARED_STATEMENTS = False
    cam = factories.CameraFactory()
    ids = [make_event(cam).pk for _ in range(3)]
    rule(cooldown_seconds=0)
    rule(cooldown_seconds=300)
    results = engine.evaluate_events(ids)
    assert [len(r.created) for r in results] == [2, 1, 1]
    assert Alert.objects.count() == 4
