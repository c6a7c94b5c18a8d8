import datetime as dt
import random

import pytest
from django.utils import timezone

from jobs.choices import AttemptStatus, JobStatus, TriggeredBy
from jobs.models import Job, JobTransition
from jobs.services import lifecycle, tracked
from tests import factories
from tests.jobs.conftest import CALLS

pytestmark = pytest.mark.django_db


def _enqueue(django_capture_on_commit_callbacks, job_type, **kw):
    with django_capture_on_commit_callbacks(execute=True):
        job = tracked.enqueue(job_type, **kw)
    job.refresh_from_db()
    return job


def _path(job):
    return [(t.from_status, t.to_status, t.triggered_by) for t in job.transitions.order_by("transitioned_at", "id")]


def test_enqueue_runs_handler_and_records_everything(django_capture_on_commit_callbacks):
    job = _enqueue(django_capture_on_commit_callbacks, "test_ok", kwargs={"a": 1}, priority=1, created_by="olivia")
    assert job.status == JobStatus.COMPLETED
    assert job.result == {"echo": {"a": 1}}
    assert job.progress_percent == 100
    assert job.created_by == "olivia" and job.priority == 1
    assert CALLS == [{"a": 1}]
    attempt = job.attempts.get()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert ":" in attempt.worker_id
    assert _path(job) == [("queued", "running", "worker"), ("running", "completed", "worker")]
    assert job.logs.filter(message="working", context={"n": 1}).exists()


def test_enqueue_without_commit_does_not_run(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = tracked.enqueue("test_ok")
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert CALLS == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"job_type": "nope"}, "No handler"),
        ({"job_type": "test_ok", "priority": 5}, "priority"),
        ({"job_type": "test_ok", "max_attempts": 0}, "max_attempts"),
        ({"job_type": "test_ok", "kwargs": {"when": object()}}, "JSON"),
    ],
)
def test_enqueue_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tracked.enqueue(**kwargs)
    assert not Job.objects.exists()


def test_failure_schedules_retry_with_backoff(django_capture_on_commit_callbacks):
    before = timezone.now()
    job = _enqueue(django_capture_on_commit_callbacks, "test_fail", max_attempts=3)
    assert job.status == JobStatus.QUEUED
    assert job.attempt_number == 2
    # retry_base=10: first backoff is between 5 and 10 seconds.
    assert before + dt.timedelta(seconds=5) <= job.next_retry_at <= timezone.now() + dt.timedelta(seconds=10)
    assert _path(job) == [
        ("queued", "running", "worker"),
        ("running", "failed", "worker"),
        ("failed", "queued", "retry"),
    ]
    attempt = job.attempts.get()
    assert attempt.status == AttemptStatus.FAILED
    assert "disk on fire" in attempt.error_message
    assert "RuntimeError" in attempt.error_traceback


def test_due_dispatch_runs_retries_until_max_attempts(django_capture_on_commit_callbacks):
    job = _enqueue(django_capture_on_commit_callbacks, "test_fail", max_attempts=3)
    # Not due yet: nothing happens.
    with django_capture_on_commit_callbacks(execute=True):
        assert tracked.dispatch_due_jobs() == 0
    for expected_attempts in (2, 3):
        with django_capture_on_commit_callbacks(execute=True):
            assert tracked.dispatch_due_jobs(now=timezone.now() + dt.timedelta(hours=2)) == 1
        job.refresh_from_db()
        assert job.attempts.count() == expected_attempts
    assert job.status == JobStatus.FAILED
    assert job.attempt_number == 3
    assert job.next_retry_at is None
    assert "disk on fire" in job.error_message
    with django_capture_on_commit_callbacks(execute=True):
        assert tracked.dispatch_due_jobs(now=timezone.now() + dt.timedelta(days=1)) == 0


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(1)
    for n in range(1, 10):
        nominal = min(3600, 30 * 2 ** (n - 1))
        d = tracked.backoff_seconds(n, rng=rng)
        assert nominal / 2 <= d <= nominal
    assert len({round(tracked.backoff_seconds(3, rng=rng), 6) for _ in range(20)}) > 1


def test_cancelled_handler_ends_cancelled(django_capture_on_commit_callbacks):
    job = _enqueue(django_capture_on_commit_callbacks, "test_cancel")
    assert job.status == JobStatus.CANCELLED
    assert job.attempts.get().status == AttemptStatus.CANCELLED
    assert _path(job)[-1] == ("running", "cancelled", "worker")


def test_cancel_queued_job_is_immediate_and_worker_skips_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = tracked.enqueue("test_ok")
    lifecycle.request_cancel(job.pk, actor="olivia")
    for cb in callbacks:
        cb()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert CALLS == []
    assert _path(job) == [("queued", "cancelled", "user")]


def test_cancel_running_job_is_cooperative():
    now = timezone.now()
    job = factories.JobFactory(job_type="test_ok", status=JobStatus.RUNNING, created_at=now, started_at=now)
    lifecycle.request_cancel(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.cancel_requested
    ctx = tracked.JobContext(job, job.attempt_number)
    with pytest.raises(tracked.JobCancelled):
        ctx.check_cancelled(force=True)


def test_illegal_transitions_are_refused():
    job = factories.JobFactory(
        status=JobStatus.COMPLETED, created_at=timezone.now() - dt.timedelta(minutes=1), completed_at=timezone.now()
    )
    with pytest.raises(lifecycle.IllegalTransition, match="completed job cannot become running"):
        lifecycle.transition(job, JobStatus.RUNNING, TriggeredBy.WORKER)
    with pytest.raises(lifecycle.IllegalTransition):
        lifecycle.request_cancel(job.pk)
    with pytest.raises(lifecycle.IllegalTransition, match="Only failed or cancelled"):
        lifecycle.retry_now(job.pk)
    queued = factories.JobFactory(status=JobStatus.QUEUED)
    with pytest.raises(lifecycle.IllegalTransition, match="by timeout"):
        lifecycle.transition(queued, JobStatus.CANCELLED, TriggeredBy.TIMEOUT)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert not JobTransition.objects.exists()


def test_manual_retry_of_exhausted_job(django_capture_on_commit_callbacks):
    job = _enqueue(django_capture_on_commit_callbacks, "test_fail", max_attempts=1)
    assert job.status == JobStatus.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.retry_now(job.pk, actor="olivia")
    job.refresh_from_db()
    assert job.attempts.count() == 2
    assert job.status == JobStatus.FAILED  # failed again, no attempts left
    assert job.max_attempts == 2
    assert ("failed", "queued", "user") in _path(job)


def test_run_job_twice_is_safe(django_capture_on_commit_callbacks):
    job = _enqueue(django_capture_on_commit_callbacks, "test_ok")
    assert lifecycle.run_job(job.pk).startswith("skipped")
    assert job.attempts.count() == 1
    assert lifecycle.run_job("00000000-0000-0000-0000-000000000000") == "missing"


def _dead_running_job(job_type="test_slow", *, age=600, **kw):
    started = timezone.now() - dt.timedelta(seconds=age)
    job = factories.JobFactory(job_type=job_type, status=JobStatus.RUNNING, created_at=started, started_at=started,
                               heartbeat_at=started, **kw)  # fmt: skip
    factories.JobAttemptFactory(job=job, started_at=started, worker_id="otherhost:4242")
    return job


def test_timeout_sweep_fails_dead_attempt_and_retries(django_capture_on_commit_callbacks):
    job = _dead_running_job(max_attempts=3)
    alive = _dead_running_job(age=30)  # within test_slow's 120 s timeout
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 1}
    job.refresh_from_db()
    alive.refresh_from_db()
    assert alive.status == JobStatus.RUNNING
    assert job.status == JobStatus.QUEUED and job.attempt_number == 2 and job.next_retry_at
    attempt = job.attempts.get(attempt_number=1)
    assert attempt.status == AttemptStatus.FAILED and "presumed dead" in attempt.error_message
    assert _path(job) == [("running", "failed", "timeout"), ("failed", "queued", "retry")]
    # The retry then runs on a live worker and completes.
    with django_capture_on_commit_callbacks(execute=True):
        tracked.dispatch_due_jobs(now=timezone.now() + dt.timedelta(hours=1))
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert job.attempts.get(attempt_number=2).status == AttemptStatus.SUCCEEDED


def test_timeout_sweep_without_attempts_left_stays_failed():
    job = _dead_running_job(max_attempts=1)
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "presumed dead" in job.error_message


def test_timeout_sweep_detects_vanished_local_worker():
    import socket

    job = _dead_running_job(age=5)
    job.attempts.update(worker_id=f"{socket.gethostname()}:999999999")
    assert lifecycle.sweep_timeouts()["timed_out"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_superseded_attempt_result_is_discarded(django_capture_on_commit_callbacks):
    """A worker that comes back after the sweep declared it dead must not overwrite the retry."""
    job = _dead_running_job()
    attempt = job.attempts.get()
    lifecycle.sweep_timeouts()
    assert lifecycle._finish(job.pk, attempt, 1, "completed", {"late": True}, None, None) == "superseded"
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.result is None


def test_dead_export_attempt_marks_the_export_failed(django_capture_on_commit_callbacks):
    from jobs.choices import ExportStatus

    export = factories.ExportJobFactory(status=ExportStatus.RUNNING)
    job = _dead_running_job("export", max_attempts=2, kwargs={"export_id": str(export.pk)})
    lifecycle.sweep_timeouts()
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and "Another attempt follows" in export.error_message
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_dead_restore_attempt_marks_the_restore_failed():
    from jobs.choices import RestoreStatus
    from monitoring.models import AuditLog

    restore = factories.RestoreJobFactory(status=RestoreStatus.RESTORING)
    _dead_running_job("restore", age=7200, max_attempts=1, kwargs={"restore_id": str(restore.pk)})
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 0}
    restore.refresh_from_db()
    assert restore.status == RestoreStatus.FAILED and "nothing was changed" in restore.error_message
    assert AuditLog.objects.filter(action="restore_failed", resource_id=str(restore.pk)).exists()


def test_cancelling_a_queued_export_fails_the_export_row():
    from jobs.choices import ExportStatus

    export = factories.ExportJobFactory(status=ExportStatus.PENDING)
    job = factories.JobFactory(job_type="export", kwargs={"export_id": str(export.pk)})
    lifecycle.request_cancel(job.pk, actor="olivia")
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and "Cancelled by olivia" in export.error_message


def test_zombie_worker_is_dead(monkeypatch):
    import socket

    monkeypatch.setattr(lifecycle.Path, "read_text", lambda self: "123 (python) Z 1 2 3")
    assert lifecycle._worker_is_gone(f"{socket.gethostname()}:{__import__('os').getpid()}")
    assert not lifecycle._worker_is_gone("otherhost:1")
