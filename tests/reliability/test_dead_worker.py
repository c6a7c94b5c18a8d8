"""How the timeout sweep decides that an attempt's worker process is dead."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.choices import AttemptStatus, JobStatus
from jobs.services import lifecycle
from tests import factories


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sweep_treats_a_worker_left_as_a_zombie_as_dead(db):
    """A worker killed with its cluster stays a zombie until init reaps it (seconds in containers, never
    under a PID 1 that does not reap): it answers kill(pid, 0) but runs nothing. The sweep must not wait
    for the type's timeout (an hour for restores) because of it."""
    now = timezone.now()
    job = factories.JobFactory(job_type="export", status=JobStatus.RUNNING, created_at=now, started_at=now,
                               heartbeat_at=now, max_attempts=1)  # fmt: skip
    zombie = subprocess.Popen(["true"])  # exits at once; not waited for, so it stays a zombie
    try:
        deadline = time.monotonic() + 10
        while _state(zombie.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(zombie.pid) == "Z"
        attempt = factories.JobAttemptFactory(job=job, started_at=now, worker_id=f"{socket.gethostname()}:{zombie.pid}")
        counts = lifecycle.sweep_timeouts()
    finally:
        zombie.wait()
    assert counts["timed_out"] == 1, "the zombie worker was taken for a live one"
    job.refresh_from_db()
    attempt.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert attempt.status == AttemptStatus.FAILED


def test_sweep_leaves_an_attempt_of_a_live_worker_alone(db):
    now = timezone.now()
    job = factories.JobFactory(job_type="export", status=JobStatus.RUNNING, created_at=now, started_at=now,
                               heartbeat_at=now, max_attempts=1)  # fmt: skip
    with subprocess.Popen(["sleep", "30"]) as alive:
        try:
            factories.JobAttemptFactory(job=job, started_at=now, worker_id=f"{socket.gethostname()}:{alive.pid}")
            assert lifecycle.sweep_timeouts() == {"timed_out": 0, "retried": 0}
        finally:
            alive.kill()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
