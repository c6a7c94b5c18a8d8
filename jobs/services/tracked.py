"""Tracked background jobs on django-q2: the one entry point other apps use.

    from jobs.services.tracked import register, enqueue, JobCancelled, JobFailed

    @register("baseline_rebuild", timeout=600)
    def rebuild(ctx, *, camera_id=None):
        ctx.progress(10, step="Reading history")
        ctx.log("read 1234 events", level="info")
        ctx.check_cancelled()
        return {"slots": 168}          # stored in jobs.result (JSON-able)

    job = enqueue("baseline_rebuild", kwargs={"camera_id": "front_door"}, priority=2, max_attempts=3)

Life cycle (every change writes a `job_transitions` row, see jobs/services/lifecycle.py):
queued → running → completed | failed | cancelled; failed → queued on retry
(attempt_number + 1, next_retry_at = now + exponential backoff with jitter) until
max_attempts. Retries are not handed to django-q2 directly: `dispatch_due_jobs()`
(a per-minute django-q2 schedule, see jobs/schedules.py) hands over queued jobs
whose next_retry_at has come. That keeps a failing job from looping inline when
django-q2 runs synchronously (tests), and makes the retry survive a worker restart
because the due time lives in the jobs row, not in a broker message.

Priority: 0 is the most urgent, 4 the least (default 2). django-q2's brokers have
no priorities, so it orders the due-retry dispatch and is shown in the UI.

Handlers run outside any transaction on a worker (autocommit), so progress and log
lines are visible live; a handler that needs all-or-nothing opens its own
`transaction.atomic()`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from jobs.choices import JobLogLevel, JobStatus

logger = logging.getLogger(__name__)

# Default per-type timeout for the dead-worker sweep; a handler that reports
# progress (or calls ctx.heartbeat()) more often than this is considered alive.
DEFAULT_TIMEOUT = 3600
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600


class JobCancelled(Exception):
    """Raised by ctx.check_cancelled() when an operator asked to stop; ends the job as cancelled."""


class JobFailed(Exception):
    """Raise to fail the attempt with a message meant for people (shown as is, no traceback).

    With retry=False (the default) no further attempt is made: bad input stays bad.
    """

    def __init__(self, message: str, *, retry: bool = False):
        super().__init__(message)
        self.retry = retry


class UnknownJobType(LookupError):
    pass


@dataclass(frozen=True)
class JobType:
    name: str
    handler: Callable
    timeout: int = DEFAULT_TIMEOUT
    retry_base: int = RETRY_BASE_SECONDS
    retry_max: int = RETRY_MAX_SECONDS
    label: str = ""
    # Called as on_failure(kwargs, message, retrying) when an attempt ends without the
    # handler having had its say: its worker died (timeout sweep), or it was cancelled
    # before it started. Lets an export/backup/restore row leave "running" too.
    on_failure: Callable | None = None


_registry: dict[str, JobType] = {}
_discovered = False
_discover_lock = threading.Lock()


def register(
    job_type: str,
    *,
    timeout: int = DEFAULT_TIMEOUT,
    retry_base: int = RETRY_BASE_SECONDS,
    retry_max: int = RETRY_MAX_SECONDS,
    label: str = "",
    on_failure: Callable | None = None,
):
    """Decorator: make `handler(ctx, **kwargs)` runnable as tracked job `job_type`."""
    if not job_type or len(job_type) > 50:
        raise ValueError("job_type must be 1-50 characters (jobs.job_type is String(50)).")
    if timeout <= 0:
        raise ValueError("timeout must be positive seconds.")

    def decorator(func):
        _registry[job_type] = JobType(
            job_type,
            func,
            timeout=timeout,
            retry_base=retry_base,
            retry_max=retry_max,
            label=label or job_type,
            on_failure=on_failure,
        )
        return func

    return decorator


def _discover() -> None:
    """Import every installed app's `tasks` module once, so their @register lines have run."""
    global _discovered
    if _discovered:
        return
    with _discover_lock:
        if not _discovered:
            from django.utils.module_loading import autodiscover_modules

            autodiscover_modules("tasks")
            _discovered = True


def get_job_type(job_type: str) -> JobType:
    _discover()
    try:
        return _registry[job_type]
    except KeyError:
        raise UnknownJobType(f"No handler is registered for job type {job_type!r}.")


def registered_types() -> dict[str, JobType]:
    _discover()
    return dict(_registry)


def timeout_for(job_type: str) -> int:
    try:
        return get_job_type(job_type).timeout
    except UnknownJobType:
        return DEFAULT_TIMEOUT


def backoff_seconds(attempt_number: int, *, base: int = RETRY_BASE_SECONDS, cap: int = RETRY_MAX_SECONDS, rng=random):
    """Delay before attempt `attempt_number + 1`: base·2^(n-1) capped, with "equal jitter".

    Half the delay is fixed and half random, so retries never come back sooner than
    half the nominal backoff yet many failing jobs do not retry in lockstep.
    """
    nominal = min(cap, base * (2 ** max(0, attempt_number - 1)))
    return nominal / 2 + rng.uniform(0, nominal / 2)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def enqueue(
    job_type: str,
    kwargs: dict | None = None,
    *,
    priority: int = 2,
    max_attempts: int = 3,
    created_by: str | None = None,
    queue_name: str | None = None,
    dispatch: bool = True,
):
    """Create the `jobs` row and, once the surrounding transaction commits, the django-q2 task.

    Raises ValueError for bad arguments (unknown type, priority outside 0-4,
    max_attempts < 1, kwargs that are not JSON), before anything is written.
    `dispatch=False` leaves the job queued for the caller to run in-process
    (`jobs.services.lifecycle.run_job`), as the management commands do.
    """
    from jobs.models import Job

    try:
        get_job_type(job_type)
    except UnknownJobType as exc:
        raise ValueError(str(exc))
    if not isinstance(priority, int) or not 0 <= priority <= 4:
        raise ValueError("priority must be an integer from 0 (most urgent) to 4.")
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError("max_attempts must be at least 1.")
    kwargs = dict(kwargs or {})
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Job arguments must be JSON-serialisable: {exc}")
    job = Job.objects.create(
        job_type=job_type,
        status=JobStatus.QUEUED,
        priority=priority,
        max_attempts=max_attempts,
        kwargs=kwargs,
        created_by=(created_by or None) and str(created_by)[:150],
        queue_name=queue_name,
    )
    if dispatch:
        hand_to_worker(job.pk)
    return job


def hand_to_worker(job_id) -> None:
    """Give the job to django-q2 after commit, so a worker never sees an uncommitted row."""
    job_id = str(job_id)
    transaction.on_commit(lambda: _async(job_id))


def _async(job_id: str) -> None:
    from django_q.tasks import async_task

    try:
        async_task("jobs.tasks.run_job", job_id, task_name=f"job-{job_id}", group="watchpost-jobs")
    except Exception:
        # The row stays queued; the operator sees it and can retry. Never lose the request silently.
        logger.exception("could not hand job %s to django-q2", job_id)


class JobContext:
    """What a running handler gets: progress, current step, log lines, cancellation checks."""

    # Reading the cancel flag costs a query; a handler calling check_cancelled()
    # in a tight loop should not turn into a query per row.
    CANCEL_CHECK_INTERVAL = 0.5

    def __init__(self, job, attempt_number: int):
        self.job = job
        self.job_id = job.pk
        self.job_type = job.job_type
        self.attempt_number = attempt_number
        self._last_cancel_check = 0.0

    def _live(self):
        from jobs.models import Job

        return Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, attempt_number=self.attempt_number)

    def progress(self, percent: float | int | None = None, step: str | None = None) -> None:
        fields = {"heartbeat_at": timezone.now()}
        if percent is not None:
            fields["progress_percent"] = max(0, min(100, int(percent)))
        if step is not None:
            fields["current_step"] = str(step)[:255]
        self._live().update(**fields)

    def heartbeat(self) -> None:
        self.progress()

    def log(self, message: str, level: str = "info", **context) -> None:
        from jobs.models import JobLog

        if level not in JobLogLevel.values:
            level = JobLogLevel.INFO
        JobLog.objects.create(
            job_id=self.job_id,
            attempt_number=self.attempt_number,
            level=level,
            message=str(message),
            context=context or None,
        )

    def check_cancelled(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_cancel_check < self.CANCEL_CHECK_INTERVAL:
            return
        self._last_cancel_check = now
        from jobs.models import Job

        row = Job.objects.filter(pk=self.job_id).values("status", "attempt_number", "cancel_requested").first()
        if row is None:
            raise JobCancelled("The job was deleted.")
        if row["cancel_requested"]:
            raise JobCancelled("Cancelled by an operator.")
        if row["status"] != JobStatus.RUNNING or row["attempt_number"] != self.attempt_number:
            # The timeout sweep gave up on this attempt; stop rather than race the retry.
            raise JobCancelled("This attempt was superseded (timed out).")


def dispatch_due_jobs(now=None, limit: int = 100) -> int:
    """Hand queued jobs whose next_retry_at has come to django-q2; returns how many.

    Claiming (clearing next_retry_at) and handing over happen in one transaction
    with SKIP LOCKED, so two schedulers running at once never dispatch a job twice.
    """
    from jobs.models import Job

    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(status=JobStatus.QUEUED, next_retry_at__lte=now)
            .order_by("priority", "next_retry_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Job.objects.filter(pk__in=ids).update(next_retry_at=None)
            for job_id in ids:
                hand_to_worker(job_id)
    return len(ids)
