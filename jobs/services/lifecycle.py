"""The job state machine: legal transitions, running an attempt, cancel, retry, timeout sweep.

Every state change goes through `transition()`, which refuses illegal moves and
writes one `job_transitions` row. Callers hold the job row locked
(`select_for_update`) inside a transaction, so a worker, an operator and the
timeout sweep never change the same job at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import traceback
from pathlib import Path

import psycopg
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.choices import AttemptStatus, JobLogLevel, JobStatus, TriggeredBy
from jobs.services import tracked

logger = logging.getLogger(__name__)

# (from, to) → who may cause it.
ALLOWED_TRANSITIONS: dict[tuple[str, str], set[str]] = {
    (JobStatus.QUEUED, JobStatus.RUNNING): {TriggeredBy.WORKER},
    (JobStatus.QUEUED, JobStatus.CANCELLED): {TriggeredBy.USER, TriggeredBy.SYSTEM},
    (JobStatus.RUNNING, JobStatus.COMPLETED): {TriggeredBy.WORKER},
    (JobStatus.RUNNING, JobStatus.FAILED): {TriggeredBy.WORKER, TriggeredBy.TIMEOUT, TriggeredBy.SYSTEM},
    (JobStatus.RUNNING, JobStatus.CANCELLED): {TriggeredBy.USER, TriggeredBy.WORKER, TriggeredBy.TIMEOUT},
    # Automatic retry (retry) or an operator's Retry button (user).
    (JobStatus.FAILED, JobStatus.QUEUED): {TriggeredBy.RETRY, TriggeredBy.USER},
    # An operator may re-run a job they cancelled.
    (JobStatus.CANCELLED, JobStatus.QUEUED): {TriggeredBy.USER},
}


class IllegalTransition(Exception):
    """A state change the life cycle does not allow; the message is for people."""


def can_transition(from_status: str, to_status: str, triggered_by: str | None = None) -> bool:
    who = ALLOWED_TRANSITIONS.get((from_status, to_status))
    return who is not None and (triggered_by is None or triggered_by in who)


def transition(job, to_status: str, triggered_by: str, *, metadata: dict | None = None, **fields):
    """Move a (locked) job to `to_status`, set `fields`, and record the transition."""
    from jobs.models import JobTransition

    from_status = job.status
    if not can_transition(from_status, to_status, triggered_by):
        raise IllegalTransition(
            f"A {from_status} job cannot become {to_status}"
            + (f" (by {triggered_by})" if can_transition(from_status, to_status) else "")
            + "."
        )
    job.status = to_status
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["status", *fields])
    JobTransition.objects.create(
        job=job,
        from_status=from_status,
        to_status=to_status,
        triggered_by=triggered_by,
        metadata_json=json.dumps(metadata, default=str) if metadata else None,
    )
    return job


def notify_failure(job, message: str, *, retrying: bool = False) -> None:
    """Tell the job type's on_failure hook (if any) that the attempt ended outside its handler."""
    try:
        hook = tracked.get_job_type(job.job_type).on_failure
    except tracked.UnknownJobType:
        return
    if hook is None:
        return
    try:
        with transaction.atomic():
            hook(job.kwargs or {}, message, retrying)
    except Exception:
        logger.exception("on_failure hook of %s failed for job %s", job.job_type, job.pk)


def _locked(job_id):
    from jobs.models import Job

    return Job.objects.select_for_update().filter(pk=job_id).first()


def _schedule_retry_or_stay_failed(job, now, reason: str) -> bool:
    """After running → failed: queue the next attempt with backoff if any remain."""
    if job.attempt_number >= job.max_attempts or job.cancel_requested:
        return False
    jt = None
    try:
        jt = tracked.get_job_type(job.job_type)
    except tracked.UnknownJobType:
        pass
    delay = tracked.backoff_seconds(
        job.attempt_number,
        base=jt.retry_base if jt else tracked.RETRY_BASE_SECONDS,
        cap=jt.retry_max if jt else tracked.RETRY_MAX_SECONDS,
    )
    next_at = now + dt.timedelta(seconds=delay)
    transition(
        job,
        JobStatus.QUEUED,
        TriggeredBy.RETRY,
        metadata={"reason": reason, "delay_seconds": round(delay, 1), "next_attempt": job.attempt_number + 1},
        attempt_number=job.attempt_number + 1,
        next_retry_at=next_at,
        completed_at=None,
        progress_percent=0,
        current_step=f"Waiting to retry (attempt {job.attempt_number + 1} of {job.max_attempts})",
        heartbeat_at=None,
    )
    return True


def run_job(job_id) -> str:
    """Run one attempt of a queued job (the django-q2 task body). Safe to call twice.

    Returns what happened, for django-q2's result and for tests.
    """
    from jobs.models import JobAttempt

    me = tracked.worker_id()
    now = timezone.now()
    with transaction.atomic():
        job = _locked(job_id)
        if job is None:
            return "missing"
        if job.status != JobStatus.QUEUED:
            # Duplicate delivery, or the operator cancelled it first.
            return f"skipped ({job.status})"
        if job.next_retry_at and job.next_retry_at > now:
            return "not due"
        if job.cancel_requested:
            transition(job, JobStatus.CANCELLED, TriggeredBy.USER, metadata={"reason": "cancelled before start"},
                       completed_at=now)  # fmt: skip
            notify_failure(job, "Cancelled by an operator before it started.")
            return "cancelled"
        try:
            handler = tracked.get_job_type(job.job_type).handler
        except tracked.UnknownJobType as exc:
            transition(job, JobStatus.RUNNING, TriggeredBy.WORKER, metadata={"worker_id": me}, started_at=now,
                       heartbeat_at=now, next_retry_at=None)  # fmt: skip
            JobAttempt.objects.create(job=job, attempt_number=job.attempt_number, worker_id=me, started_at=now,
                                      status=AttemptStatus.FAILED, ended_at=now, error_message=str(exc))  # fmt: skip
            transition(job, JobStatus.FAILED, TriggeredBy.WORKER, metadata={"error": str(exc)}, completed_at=now,
                       error_message=str(exc), error_traceback=None)  # fmt: skip
            return "failed"
        transition(
            job,
            JobStatus.RUNNING,
            TriggeredBy.WORKER,
            metadata={"worker_id": me, "attempt": job.attempt_number},
            started_at=now,
            heartbeat_at=now,
            next_retry_at=None,
            completed_at=None,
            progress_percent=0,
            current_step="Started",
        )
        attempt = JobAttempt.objects.create(
            job=job, attempt_number=job.attempt_number, worker_id=me, started_at=now, status=AttemptStatus.STARTED
        )
    attempt_number = job.attempt_number
    ctx = tracked.JobContext(job, attempt_number)
    kwargs = job.kwargs or {}

    outcome, result, error, tb, retry = "completed", None, None, None, True
    try:
        result = _call(handler, ctx, kwargs)
        json.dumps(result)
    except tracked.JobCancelled as exc:
        outcome, error = "cancelled", str(exc) or "Cancelled."
    except tracked.JobFailed as exc:
        outcome, error, retry = "failed", str(exc), exc.retry
    except Exception as exc:
        outcome = "failed"
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        tb = traceback.format_exc()
        logger.warning("job %s (%s) attempt %s failed: %s", job_id, job.job_type, attempt_number, error)
    return _finish(job_id, attempt, attempt_number, outcome, result, error, tb, retry=retry)


def _call(handler, ctx, kwargs):
    """Run the handler; inside a caller's transaction (django-q2 sync mode, tests) guard it with a savepoint.

    On a worker the handler runs in autocommit and needs no guard. Inside a
    transaction, a database error would leave it aborted, so the savepoint is
    rolled back then; otherwise it is kept, so that what a failing handler
    recorded about its failure (e.g. an export marked failed) stays, as it would
    on a worker.
    """
    if not connection.in_atomic_block:
        return handler(ctx, **kwargs)
    sid = transaction.savepoint()
    try:
        result = handler(ctx, **kwargs)
    except BaseException:
        if connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            transaction.savepoint_rollback(sid)
        else:
            transaction.savepoint_commit(sid)
        raise
    transaction.savepoint_commit(sid)
    return result


def _finish(job_id, attempt, attempt_number, outcome, result, error, tb, *, retry: bool = True) -> str:
    from jobs.models import JobLog

    now = timezone.now()
    with transaction.atomic():
        job = _locked(job_id)
        attempt.ended_at = max(now, attempt.started_at)
        attempt.error_message = error
        attempt.error_traceback = tb
        if job is None or job.status != JobStatus.RUNNING or job.attempt_number != attempt_number:
            # The timeout sweep already gave up on this attempt; its verdict stands.
            if attempt.status == AttemptStatus.STARTED:
                attempt.status = AttemptStatus.FAILED
                attempt.error_message = error or "Finished after the attempt was declared dead."
                attempt.save()
            return "superseded"
        if outcome == "completed":
            attempt.status = AttemptStatus.SUCCEEDED
            attempt.result = result
            attempt.save()
            transition(job, JobStatus.COMPLETED, TriggeredBy.WORKER, completed_at=now, result=result,
                       progress_percent=100, error_message=None, error_traceback=None, heartbeat_at=now)  # fmt: skip
            return "completed"
        if outcome == "cancelled":
            attempt.status = AttemptStatus.CANCELLED
            attempt.save()
            who = TriggeredBy.USER if job.cancel_requested else TriggeredBy.WORKER
            transition(job, JobStatus.CANCELLED, who, metadata={"reason": error}, completed_at=now,
                       error_message=error, heartbeat_at=now)  # fmt: skip
            return "cancelled"
        attempt.status = AttemptStatus.FAILED
        attempt.save()
        JobLog.objects.create(job=job, attempt_number=attempt_number, level=JobLogLevel.ERROR, message=error)
        transition(job, JobStatus.FAILED, TriggeredBy.WORKER, metadata={"error": error[:500]}, completed_at=now,
                   error_message=error, error_traceback=tb, heartbeat_at=now)  # fmt: skip
        retried = retry and _schedule_retry_or_stay_failed(job, now, "handler raised")
        return "retry scheduled" if retried else "failed"


def request_cancel(job_id, *, actor: str | None = None):
    """Operator's Cancel: a queued job stops at once, a running one at its next check."""
    now = timezone.now()
    with transaction.atomic():
        job = _locked(job_id)
        if job is None:
            raise IllegalTransition("This job no longer exists.")
        if job.status == JobStatus.QUEUED:
            message = f"Cancelled by {actor or 'an operator'}."
            transition(job, JobStatus.CANCELLED, TriggeredBy.USER, metadata={"actor": actor}, completed_at=now,
                       cancel_requested=True, next_retry_at=None, error_message=message)  # fmt: skip
            notify_failure(job, message)
        elif job.status == JobStatus.RUNNING:
            if not job.cancel_requested:
                job.cancel_requested = True
                job.current_step = "Cancelling…"
                job.save(update_fields=["cancel_requested", "current_step"])
        else:
            raise IllegalTransition(f"Only queued or running jobs can be cancelled; this one is {job.status}.")
    return job


def retry_now(job_id, *, actor: str | None = None):
    """Operator's Retry of a failed (or cancelled) job: next attempt, handed over at once."""
    from jobs.models import Job

    with transaction.atomic():
        job = _locked(job_id)
        if job is None:
            raise IllegalTransition("This job no longer exists.")
        if not can_transition(job.status, JobStatus.QUEUED, TriggeredBy.USER):
            raise IllegalTransition(f"Only failed or cancelled jobs can be retried; this one is {job.status}.")
        next_attempt = job.attempt_number + 1
        transition(
            job,
            JobStatus.QUEUED,
            TriggeredBy.USER,
            metadata={"actor": actor, "next_attempt": next_attempt},
            attempt_number=next_attempt,
            # The operator explicitly asked for one more run beyond the automatic ones.
            max_attempts=max(job.max_attempts, next_attempt),
            next_retry_at=None,
            cancel_requested=False,
            progress_percent=0,
            current_step="Queued (manual retry)",
            completed_at=None,
            heartbeat_at=None,
        )
        tracked.hand_to_worker(job.pk)
    return Job.objects.get(pk=job.pk)


def _worker_is_gone(worker: str | None) -> bool:
    """True when the attempt's worker ran on this host and its process no longer exists."""
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A killed worker may linger as a zombie until its parent (or init) reaps it: it
    # answers kill(pid, 0) but runs nothing.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def sweep_timeouts(now=None) -> dict:
    """Fail running jobs whose worker stopped responding; retry those with attempts left.

    A job is dead when nothing was heard from it (heartbeat, or start) for longer
    than its type's timeout, or when its worker process on this host is gone.
    """
    from jobs.models import Job, JobAttempt

    now = now or timezone.now()
    counts = {"timed_out": 0, "retried": 0}
    candidates = (
        Job.objects.running()
        .annotate(last_seen=Coalesce(F("heartbeat_at"), F("started_at"), F("created_at")))
        .values_list("pk", "job_type", "last_seen")
    )
    for job_id, job_type, last_seen in candidates:
        timeout = tracked.timeout_for(job_type)
        silent = (now - last_seen).total_seconds()
        with transaction.atomic():
            job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id, status=JobStatus.RUNNING).first()
            if job is None:
                continue
            attempt = JobAttempt.objects.filter(job=job, attempt_number=job.attempt_number).first()
            gone = _worker_is_gone(attempt.worker_id if attempt else None)
            if silent <= timeout and not gone:
                continue
            reason = (
                f"Worker {attempt.worker_id} is no longer running."
                if gone
                else f"No sign of life for {int(silent)} s (timeout for {job_type} is {timeout} s); the worker is presumed dead."
            )
            if attempt and attempt.status == AttemptStatus.STARTED:
                attempt.status = AttemptStatus.FAILED
                attempt.ended_at = max(now, attempt.started_at)
                attempt.error_message = reason
                attempt.save()
            meta = {"reason": reason, "worker_id": attempt.worker_id if attempt else None}
            if job.cancel_requested:
                transition(job, JobStatus.CANCELLED, TriggeredBy.TIMEOUT, metadata=meta, completed_at=now,
                           error_message=reason)  # fmt: skip
                counts["timed_out"] += 1
                notify_failure(job, reason)
                continue
            transition(job, JobStatus.FAILED, TriggeredBy.TIMEOUT, metadata=meta, completed_at=now,
                       error_message=reason, error_traceback=None)  # fmt: skip
            counts["timed_out"] += 1
            retrying = _schedule_retry_or_stay_failed(job, now, "timeout")
            if retrying:
                counts["retried"] += 1
            notify_failure(job, reason, retrying=retrying)
    return counts
