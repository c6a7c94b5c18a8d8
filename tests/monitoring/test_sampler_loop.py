"""The scheduled sampler: advisory lock per host, ticks per interval, outages survived.

These tests need two real database sessions (the lock lives in one of them), so
they run outside the test transaction.
"""

import threading
import time

import pynvml
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django_q.models import Schedule

from monitoring import tasks
from monitoring.models import GpuStat, SamplerStatus
from monitoring.schedules import SAMPLER_FUNC, SAMPLER_SCHEDULE, ensure_schedules
from monitoring.services.nvml_fake import FakeNVML
from monitoring.services.sampler import GpuSampler, HostLock, ShutdownClaim, run_sampler

pytestmark = pytest.mark.django_db(transaction=True)


class FakeClock:
    """Time that only moves when the sampler sleeps (plus what a tick costs)."""

    def __init__(self, tick_cost: float = 0.2):
        self.now = 1000.0
        self.tick_cost = tick_cost
        self.sleeps: list[float] = []
        self.on_sleep = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def test_second_sampler_on_the_same_host_is_refused(sampler):
    holder = HostLock("gpu-host-1")
    assert holder.acquire()
    try:
        outcome = run_sampler(duration=60, interval=5, sampler=sampler, sleep=lambda s: None)
        assert outcome == {"host": "gpu-host-1", "ticks": 0, "stored": 0, "skipped": True, "handed_over": False}
        assert GpuStat.objects.count() == 0
        # A scheduled run waits for a hand-over first; a holder that never hands over still refuses it.
        started = time.monotonic()
        assert run_sampler(duration=60, interval=5, wait=0.3, sampler=sampler)["skipped"] is True
        assert time.monotonic() - started >= 0.3
        other = HostLock("another-host")
        assert other.acquire()  # other hosts are not blocked
        other.release()
    finally:
        holder.release()
    second = HostLock("gpu-host-1")
    assert second.acquire()  # released: the next run may sample
    second.release()


def test_run_samples_every_interval_until_its_duration(sampler):
    clock = FakeClock()
    outcome = run_sampler(duration=60, interval=5, sampler=sampler, sleep=clock.sleep, clock=clock.clock)
    assert outcome["ticks"] == 12 and outcome["stored"] == 12 and not outcome["handed_over"]
    assert GpuStat.objects.count() == 24
    assert all(s == 5.0 for s in clock.sleeps) and len(clock.sleeps) == 11
    lock = HostLock("gpu-host-1")
    assert lock.acquire()  # released at the end
    lock.release()


def test_next_run_takes_over_at_the_next_tick(fake_nvml):
    """Two runs as django-q2 starts them, a minute apart: one sampler at a time, no gap."""
    interval = 0.4
    outcome = {}

    def first_run():
        try:
            outcome["first"] = run_sampler(duration=30, interval=interval, sampler=GpuSampler(nvml=fake_nvml, host="h"))
        finally:
            connection.close()

    thread = threading.Thread(target=first_run)
    thread.start()
    time.sleep(1.0)  # the first run has ticked about three times
    second = run_sampler(duration=1.0, interval=interval, wait=5, sampler=GpuSampler(nvml=fake_nvml, host="h"))
    thread.join(timeout=10)

    first = outcome["first"]
    assert first["handed_over"] is True and first["ticks"] >= 2
    assert second["skipped"] is False and second["ticks"] == 3 and not second["handed_over"]
    times = sorted(GpuStat.objects.filter(gpu_index=0).values_list("recorded_at", flat=True))
    assert len(times) == first["ticks"] + second["ticks"]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    # Evenly spaced across the hand-over: never two samplers at once, never a missed tick.
    assert all(interval * 0.5 < g < interval * 1.6 for g in gaps), gaps


def test_shutdown_claim_stops_the_running_sampler_and_keeps_new_runs_out(fake_nvml):
    """`make run`'s Ctrl-C: the running sampler stops at its next tick instead of running on
    for minutes, and a run the scheduler starts meanwhile does not sample."""
    outcome = {}

    def long_run():
        try:
            outcome["run"] = run_sampler(duration=300, interval=0.3, sampler=GpuSampler(nvml=fake_nvml, host="h"))
        finally:
            connection.close()

    thread = threading.Thread(target=long_run)
    thread.start()
    time.sleep(0.8)
    started = time.monotonic()
    claim = ShutdownClaim(host="h", wait=5).start()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 3
    assert outcome["run"]["handed_over"] is True and outcome["run"]["ticks"] >= 2
    try:
        late = run_sampler(duration=60, interval=0.3, wait=0.3, sampler=GpuSampler(nvml=fake_nvml, host="h"))
        assert late["skipped"] is True
    finally:
        claim.release()
    after = HostLock("h")
    assert after.acquire()  # released: the next start samples again
    after.release()


def test_interval_setting_drives_the_ticks(sampler, settings):
    settings.GPU_SAMPLE_INTERVAL = 20
    clock = FakeClock()
    assert run_sampler(duration=60, sampler=sampler, sleep=clock.sleep, clock=clock.clock)["ticks"] == 3


def test_database_outage_is_logged_and_the_next_tick_retries(sampler, caplog):
    clock = FakeClock()
    killer = connections.create_connection("default")

    def kill_django_connection(n):
        if n == 1:  # between the first and second tick: the server drops our session
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
            with killer.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", [pid])

    clock.on_sleep = kill_django_connection
    try:
        outcome = run_sampler(duration=15, interval=5, sampler=sampler, sleep=clock.sleep, clock=clock.clock)
    finally:
        killer.close()
    assert outcome["ticks"] == 3 and outcome["stored"] == 2
    assert GpuStat.objects.count() == 4
    assert any("could not be stored (will retry)" in r.getMessage() for r in caplog.records)


def test_lost_lock_session_is_retaken_and_sampling_goes_on(sampler, caplog):
    """The server restarts between two ticks: both the sampler's and the lock's sessions are gone."""
    clock = FakeClock()
    killer = connections.create_connection("default")

    def restart_server(n):
        if n == 1:
            with killer.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

    clock.on_sleep = restart_server
    try:
        outcome = run_sampler(duration=15, interval=5, sampler=sampler, sleep=clock.sleep, clock=clock.clock)
    finally:
        killer.close()
    assert outcome["ticks"] == 3 and outcome["stored"] == 2 and not outcome["handed_over"]
    assert not any("lost its host lock" in r.getMessage() for r in caplog.records)
    lock = HostLock("gpu-host-1")
    assert lock.acquire()  # and released at the end
    lock.release()


def test_nvml_outage_does_not_end_the_run(caplog):
    fake = FakeNVML.with_gpus(1)
    fake.failures["nvmlDeviceGetCount"] = pynvml.NVMLError_Unknown
    sampler = GpuSampler(nvml=fake, host="flaky")
    clock = FakeClock()

    def recover(n):
        if n == 2:
            fake.failures.clear()

    clock.on_sleep = recover
    outcome = run_sampler(duration=20, interval=5, sampler=sampler, sleep=clock.sleep, clock=clock.clock)
    assert outcome["ticks"] == 4
    assert GpuStat.objects.count() == 2  # ticks 3 and 4
    assert SamplerStatus.objects.get(host="flaky").available


def test_unexpected_error_in_a_tick_is_logged_not_raised(caplog):
    fake = FakeNVML.with_gpus(1)
    fake.failures["nvmlDeviceGetCount"] = ZeroDivisionError("boom")
    sampler = GpuSampler(nvml=fake, host="odd")
    clock = FakeClock()
    outcome = run_sampler(duration=10, interval=5, sampler=sampler, sleep=clock.sleep, clock=clock.clock)
    assert outcome["ticks"] == 2
    assert "boom" in SamplerStatus.objects.get(host="odd").reason


def test_ensure_schedules_is_idempotent():
    ensure_schedules()
    ensure_schedules()
    schedule = Schedule.objects.get(name=SAMPLER_SCHEDULE)
    assert schedule.func == SAMPLER_FUNC and schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1
    assert Schedule.objects.filter(name=SAMPLER_SCHEDULE).count() == 1
    assert callable(tasks.sample_gpus)


def test_scheduled_task_samples_this_host(monkeypatch, settings):
    monkeypatch.setenv("WATCHPOST_FAKE_NVML", "1")
    settings.GPU_SAMPLER_HOST = "task-host"
    settings.GPU_SAMPLE_INTERVAL = 60
    # A run never outlives django-q2's task timeout: here 40 s, so 30 s, i.e. one tick.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 40}
    outcome = tasks.sample_gpus()
    assert outcome == {"host": "task-host", "ticks": 1, "stored": 1, "skipped": False, "handed_over": False}
    assert GpuStat.objects.filter(host="task-host").count() == 1


def test_sample_gpus_once_with_fake_gpus(monkeypatch, capsys):
    monkeypatch.setenv("WATCHPOST_FAKE_NVML", "2")
    call_command("sample_gpus", "--once")
    out = capsys.readouterr().out
    assert "GPU 0 NVIDIA GeForce RTX 4090" in out and "Stored 2 sample(s)." in out
    assert GpuStat.objects.count() == 2


def test_sample_gpus_once_without_a_driver_prints_the_reason(monkeypatch, capsys):
    monkeypatch.setenv("WATCHPOST_FAKE_NVML", "0")
    call_command("sample_gpus", "--once")  # returns normally: exit status 0
    out = capsys.readouterr().out
    assert out.startswith("No NVIDIA GPU detected on ")
    assert "NVML Shared Library Not Found" in out
    assert GpuStat.objects.count() == 0
    assert SamplerStatus.objects.get().available is False
