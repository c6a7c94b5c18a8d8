"""PostgreSQL stopped and restarted under a running console; everything must recover by itself.

A throwaway PostgreSQL server (its own temp folder: stopping the shared one
would break every other test run on the machine) serves a freshly migrated
database to real processes:

- web:          gunicorn serving dashboard.wsgi (one worker, four threads)
- worker:       `manage.py qcluster` (django-q2 on the ORM broker)
- sampler:      `manage.py sample_gpus --interval 1` with one fake GPU (WATCHPOST_FAKE_NVML=1)
- sampler-task: one run of the scheduled sampler task (monitoring.tasks.sample_gpus), another host
- logloop:      100 records/s through a DatabaseLogHandler with a small queue (100), so an outage overflows it

The scenario runs once (module fixture): steady state, `pg_ctl stop -m fast`,
OUTAGE_SECONDS without a database, `pg_ctl start`, then each component must
work again without being restarted. The tests below read what was observed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import subprocess
import time

import psutil
import pytest
from django.urls import reverse

from tests.reliability.conftest import PYTHON, ROOT, Procs, child_env
from tests.reliability.pgserver import ThrowawayPostgres
from tests.reliability.web import Browser, free_port

pytestmark = pytest.mark.slow

DB = "wp_outage"
USER, PASSWORD = "rel_operator", "rel-operator-password-1"
TASK_HOST = "rel-task-host"
OUTAGE_SECONDS = 5
RECOVERY_DEADLINE = 45  # seconds after the restart, for the slowest component (django-q2's pusher backs off 10 s)
LOG_RATE = 100


def _seconds_until(predicate, timeout: float, interval: float = 0.2) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if predicate():
                return round(time.monotonic() - t0, 1)
        except Exception:
            pass
        time.sleep(interval)
    return None


def _query(server, sql: str, params=()) -> list[tuple]:
    with server.connect(DB, connect_timeout=3) as conn:
        return conn.execute(sql, params).fetchall()


def _export(browser: Browser) -> str | None:
    """Ask for a CSV export of events through the web form; returns its id (None when refused)."""
    reply = browser.post_form(reverse("jobs:export_create"), {"export_type": "events", "export_format": "csv"})
    match = re.search(r"/exports/([0-9a-f-]{36})/", reply.url)
    return match.group(1) if reply.status == 200 and match else None


def _export_done(server, export_id: str) -> bool:
    rows = _query(server, "SELECT status FROM export_jobs WHERE id = %s", [export_id])
    return bool(rows) and rows[0][0] == "completed"


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    base = tmp_path_factory.mktemp("outage")
    server = ThrowawayPostgres()
    procs = Procs(base)
    obs: dict = {"t0": time.monotonic()}
    try:
        server.init()
        server.start()
        server.create_database(DB)
        env = child_env(
            DATABASE_URL=server.url(DB),
            WATCHPOST_VAR_DIR=base / "var",
            EXPORT_DIR=base / "exports",
            BACKUP_DIR=base / "backups",
            UPLOAD_DIR=base / "uploads",
            WATCHPOST_FAKE_NVML="1",
            GPU_SAMPLE_INTERVAL="1",
            LOG_TO_DATABASE="1",
        )
        setup = subprocess.run(
            [PYTHON, "-m", "tests.reliability.procs", "setup", "--username", USER, "--password", PASSWORD],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stdout + setup.stderr
        with server.connect(DB) as conn:
            conn.execute(
                "INSERT INTO cameras (id, name, folder_path, status, created_at) VALUES ('gate', 'Gate', '', 'online', now())"
            )
            conn.execute(
                "INSERT INTO events (camera_id, started_at, risk_score, summary, reasoning, object_types, reviewed) "
                "SELECT 'gate', now() - g * interval '1 minute', 50, 'event', '', 'person', false "
                "FROM generate_series(1, 100) g"
            )

        obs["migrated_at"] = time.monotonic()
        port = free_port()
        web = procs.start("web", [PYTHON, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                  "--workers", "1", "--threads", "4", "--timeout", "60"], env)  # fmt: skip
        worker = procs.start("worker", [PYTHON, "manage.py", "qcluster"], env)
        sampler = procs.start("sampler", [PYTHON, "manage.py", "sample_gpus", "--interval", "1"], env)
        task = procs.start("sampler-task", [PYTHON, "-m", "tests.reliability.procs", "sampler-task", "--host", TASK_HOST], env)  # fmt: skip
        stats_path = base / "logloop.json"
        logloop = procs.start("logloop", [PYTHON, "-m", "tests.reliability.procs", "logloop", "--rate", str(LOG_RATE),
                                          "--capacity", "100", "--batch", "50", "--stats", str(stats_path)], env)  # fmt: skip
        browser = Browser(f"http://127.0.0.1:{port}", timeout=10)
        browser.wait_up("/healthz", 120)
        worker.wait_for_output("running.", 120)
        sampler_host = socket.gethostname()[:255]  # what `sample_gpus` records as its host

        def sampling():
            hosts = {h for (h,) in _query(server, "SELECT DISTINCT host FROM gpu_stats")}
            return {TASK_HOST, sampler_host} <= hosts

        assert _seconds_until(sampling, 120) is not None, "samplers never stored a sample"
        assert (
            _seconds_until(lambda: _query(server, "SELECT 1 FROM logs WHERE component = 'rel.logloop' LIMIT 1"), 60)
            is not None
        )
        browser.login(USER, PASSWORD)
        export_id = _export(browser)
        assert export_id, "the export form did not accept the request"
        assert _seconds_until(lambda: _export_done(server, export_id), 60) is not None, "the worker ran no export"
        obs["steady_at"] = time.monotonic()
        time.sleep(1)  # steady state

        pids = {p.name: p.pid for p in procs.started}
        cpu_before = {p.name: sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs.started if p.alive()}
        obs["t_down"] = time.time()
        server.stop("fast")
        # A monitoring probe (anonymous) and an operator's browser (logged in) keep asking.
        probe = Browser(browser.base, timeout=10)
        during, pages = [], []
        deadline = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < deadline:
            during.append(probe.get("/healthz"))
            # The logged-in browser carries a session cookie: /healthz must not try to load it.
            during.append(browser.get("/healthz"))
            pages.append(browser.get(reverse("monitoring:gpu")))
            time.sleep(0.5)
        obs["healthz_during"] = [(r.status, round(r.seconds, 2)) for r in during]
        obs["pages_during"] = [(r.status, round(r.seconds, 2)) for r in pages]
        obs["cpu_during_outage"] = {
            p.name: round(sum(psutil.Process(p.pid).cpu_times()[:2]) - cpu_before[p.name], 2)
            for p in procs.started
            if p.alive() and p.name in cpu_before
        }
        server.start()
        obs["t_up"] = time.time()
        t_up = dt.datetime.fromtimestamp(obs["t_up"], dt.UTC)

        obs["web_recovery_s"] = _seconds_until(lambda: browser.get("/healthz").status == 200, RECOVERY_DEADLINE)
        obs["sampler_recovery_s"] = _seconds_until(
            lambda: _query(server, "SELECT 1 FROM gpu_stats WHERE host = %s AND recorded_at > %s LIMIT 1",
                           [sampler_host, t_up]), RECOVERY_DEADLINE)  # fmt: skip
        obs["task_recovery_s"] = _seconds_until(
            lambda: _query(server, "SELECT 1 FROM gpu_stats WHERE host = %s AND recorded_at > %s LIMIT 1",
                           [TASK_HOST, t_up]), 10)  # fmt: skip
        obs["log_recovery_s"] = _seconds_until(
            lambda: _query(server, "SELECT 1 FROM logs WHERE component = 'rel.logloop' AND timestamp > %s LIMIT 1",
                           [t_up]), RECOVERY_DEADLINE)  # fmt: skip
        t0 = time.monotonic()
        export_after = None
        while export_after is None and time.monotonic() - t0 < 10:
            export_after = _export(browser)
        obs["export_accepted_after"] = export_after is not None
        obs["worker_recovery_s"] = (
            _seconds_until(lambda: _export_done(server, export_after), RECOVERY_DEADLINE) if export_after else None
        )
        obs["alive_after"] = {p.name: p.alive() for p in procs.started}
        obs["same_pids"] = {p.name: p.pid == pids[p.name] for p in procs.started}
        obs["task_output"] = task.output()[-2000:]
        obs["sampler_output"] = sampler.output()[-2000:]

        # The log producer stops and flushes; then every record is either stored or counted as dropped.
        logloop.stop(timeout=60)
        obs["logloop"] = json.loads(stats_path.read_text())
        pid = str(obs["logloop"]["pid"])
        obs["logs_stored"] = _query(
            server, "SELECT count(*), count(DISTINCT (extra->>'seq')) FROM logs WHERE component = 'rel.logloop'"
        )[0]
        obs["drops_reported"] = _query(
            server,
            "SELECT coalesce(sum((extra->>'dropped')::int), 0), count(*) FROM logs "
            "WHERE component = 'monitoring.logging' AND level = 'WARNING' AND extra->>'pid' = %s",
            [pid],
        )[0]
        obs["samples"] = [r[0] for r in _query(
            server, "SELECT recorded_at FROM gpu_stats WHERE host = %s ORDER BY recorded_at", [sampler_host])]  # fmt: skip
        obs["t_end"] = time.time()
        obs["phases"] = {k: round(obs[k] - obs["t0"], 1) for k in ("migrated_at", "steady_at")}
        obs["web_log"] = web.output()[-3000:]
        obs["worker_log"] = worker.output()[-3000:]
        yield obs
    finally:
        procs.kill_all()
        server.destroy()


def _describe(obs, *keys) -> str:
    return "; ".join(f"{k}={obs.get(k)!r}" for k in keys)


def test_web_answers_promptly_during_the_outage_and_recovers_without_restart(outage):
    during, pages = outage["healthz_during"], outage["pages_during"]
    assert during and pages, "no request was made during the outage"
    # Never hangs: each request during the outage gets an answer, quickly; /healthz says the database is
    # away, to anonymous probes and to logged-in browsers alike.
    assert all(status == 503 for status, _ in during), during
    assert all(status >= 500 for status, _ in pages), pages
    assert max(seconds for _, seconds in during + pages) < 5, (during, pages)
    assert outage["web_recovery_s"] is not None and outage["web_recovery_s"] <= 10, _describe(outage, "web_recovery_s")
    assert outage["same_pids"]["web"] and outage["alive_after"]["web"]


def test_worker_runs_jobs_again_after_the_outage_without_restart(outage):
    assert outage["export_accepted_after"], "the web did not accept an export after the outage"
    assert outage["worker_recovery_s"] is not None, f"no job ran after the outage:\n{outage['worker_log']}"
    assert outage["worker_recovery_s"] <= RECOVERY_DEADLINE
    assert outage["same_pids"]["worker"] and outage["alive_after"]["worker"]


def test_gpu_sampler_process_recovers_without_restart(outage):
    assert outage["alive_after"]["sampler"], f"the sampler exited:\n{outage['sampler_output']}"
    assert outage["sampler_recovery_s"] is not None and outage["sampler_recovery_s"] <= 10, (
        f"{_describe(outage, 'sampler_recovery_s')}\n{outage['sampler_output']}"
    )


def test_gpu_sampler_loses_only_the_samples_of_the_outage(outage):
    """Ticks every 1 s: the only gap longer than a few seconds is the outage itself (plus reconnecting)."""
    samples = outage["samples"]
    assert len(samples) > 5
    down = dt.datetime.fromtimestamp(outage["t_down"], dt.UTC)
    up = dt.datetime.fromtimestamp(outage["t_up"], dt.UTC)
    gaps = [(a, b) for a, b in zip(samples, samples[1:], strict=False) if (b - a).total_seconds() > 3]
    outside = [
        (a.isoformat(), b.isoformat())
        for a, b in gaps
        if not (a >= down - dt.timedelta(seconds=3) and b <= up + dt.timedelta(seconds=5))
    ]
    assert not outside, f"samples missing outside the outage ({down:%T}-{up:%T}): {outside}"
    after = [s for s in samples if s > up]
    span = (samples[-1] - up).total_seconds()
    assert len(after) >= span - 5, f"{len(after)} samples in the {span:.0f} s after the restart"


def test_gpu_sampler_does_not_spin_while_the_database_is_down(outage):
    cpu = outage["cpu_during_outage"].get("sampler")
    assert cpu is not None, "the sampler was not running during the outage"
    assert cpu < 0.25 * OUTAGE_SECONDS, f"the sampler used {cpu} s of CPU during a {OUTAGE_SECONDS} s outage"


def test_scheduled_sampler_run_keeps_sampling_after_the_outage(outage):
    """The scheduled task's run spans the outage: it must resume, not end and leave a gap until the next schedule."""
    assert outage["task_recovery_s"] is not None, (
        f"the scheduled sampler run stopped at the outage:\n{outage['task_output']}"
    )


def test_log_handler_never_blocks_the_caller(outage):
    stats = outage["logloop"]
    assert stats["final"] and stats["emitted"] >= LOG_RATE * OUTAGE_SECONDS
    # An emit is a queue put: the database being away must never make the caller wait.
    assert stats["max_emit_ms"] < 250, stats
    assert stats["p99_emit_ms"] < 5, stats
    assert outage["log_recovery_s"] is not None and outage["log_recovery_s"] <= 15


def test_log_handler_accounts_for_every_record_and_reports_the_drops(outage):
    stats = outage["logloop"]
    stored, distinct = outage["logs_stored"]
    reported, warnings = outage["drops_reported"]
    assert stats["flushed"] is True, stats
    assert stored == distinct  # nothing written twice
    # The queue (100) overflowed during the outage; what could not wait was counted, not lost silently.
    assert stats["dropped"] > 0, stats
    assert stored + stats["dropped"] == stats["emitted"], (stored, stats)
    assert reported == stats["dropped"] and warnings >= 1, (reported, warnings, stats)
