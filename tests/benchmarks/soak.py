"""Soak: the whole console under steady load for SOAK_SECONDS (default 30 minutes).

    .venv/bin/python -m tests.benchmarks.soak                  # 30 minutes
    SOAK_SECONDS=150 .venv/bin/python -m tests.benchmarks.soak # a quick proof run

What runs, as `make run` would run it (production settings, not test mode):
- a throwaway PostgreSQL server (own temp folder, default durability settings),
  migrated, static files collected, every app's django-q2 schedules registered;
- web: gunicorn, SOAK_WEB_WORKERS (2) workers;
- worker: `manage.py qcluster` (Q_WORKERS=2) running the schedules, among them the
  GPU sampler at GPU_SAMPLE_INTERVAL=1 over one fake GPU (WATCHPOST_FAKE_NVML=1);
- load: SOAK_LOG_RATE (200) frontend log records/s through the ingestion endpoint
  (batches of 10), and a browser-like poller on the live widgets (GPU cards and
  alert counts every 5 s, the log live tail following its own hx-get every 5 s,
  the six overview widgets every 10 s), with HTMX request headers.

Pass criteria (issue 9): web and worker memory grow by less than 10 % between the
end of the warm-up and the end; no errors (ERROR rows in `logs`, failed django-q2
tasks, tracebacks or ERROR lines in any process's output, HTTP errors); every
accepted log record is stored exactly once; every GPU sampling tick of the
window is stored.

Knobs: SOAK_SECONDS, SOAK_LOG_RATE, SOAK_WEB_WORKERS, SOAK_OUTPUT (markdown
section, default docs/benchmarks-soak.md, to merge into docs/benchmarks.md),
SOAK_KEEP=1 keeps the temp folder (process logs) for inspection.
Exit status 1 when a criterion is not met.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.reliability.pgserver import ThrowawayPostgres
from tests.reliability.processes import PYTHON, ROOT, Procs, base_env
from tests.reliability.web import Browser, free_port

DB = "watchpost_soak"
USER, PASSWORD = "soak_operator", "soak-operator-" + secrets.token_hex(8)
BATCH = 10
MEMORY_LIMIT_PERCENT = 10.0
WIDGETS = ("gpus", "alerts", "jobs", "events", "logs", "cameras")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class Traffic:
    """Requests of one load generator: counts, failures and latencies (ms)."""

    name: str
    requests: int = 0
    failures: list = field(default_factory=list)
    latencies: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str, reply, ok: bool) -> None:
        with self.lock:
            self.requests += 1
            self.latencies.append(reply.seconds * 1000)
            if not ok and len(self.failures) < 1000:
                self.failures.append(f"{what}: {reply.status} {reply.error or reply.body[:200]!r}")

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Ingestor(threading.Thread):
    """SOAK_LOG_RATE records/s to the ingestion endpoint, in evenly spaced batches."""

    def __init__(self, browser: Browser, rate: int, run_id: str, stop: threading.Event):
        super().__init__(name="ingestor", daemon=True)
        self.browser, self.rate, self.run_id, self.stop_event = browser, rate, run_id, stop
        self.traffic = Traffic("ingestion")
        self.sent = 0
        self.accepted = 0
        self.max_lag = 0.0

    def run(self) -> None:
        period = BATCH / self.rate
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            entries = [
                {"level": "INFO", "message": f"soak record {self.sent + i}", "component": "soak",
                 "extra": {"soak": self.run_id, "seq": self.sent + i}}
                for i in range(BATCH)
            ]  # fmt: skip
            reply = self.browser.post_json("/api/logs/", entries)
            ok = reply.status == 201
            self.traffic.record("POST /api/logs/", reply, ok)
            self.sent += BATCH
            if ok:
                self.accepted += reply.json().get("accepted", 0)
            next_at += period
            lag = time.monotonic() - next_at
            self.max_lag = max(self.max_lag, lag)
            if lag < 0:
                self.stop_event.wait(-lag)


class Poller(threading.Thread):
    """What an open console tab does: HTMX polls of the live widgets."""

    def __init__(self, browser: Browser, stop: threading.Event):
        super().__init__(name="poller", daemon=True)
        self.browser, self.stop_event = browser, stop
        self.traffic = Traffic("live widgets")
        self.tail = "/logs/?tail=1"

    def _get(self, path: str, target: str) -> None:
        headers = {"HX-Request": "true", "HX-Target": target, "HX-Current-URL": self.browser.base + "/"}
        reply = self.browser.get(path, headers=headers)
        self.traffic.record(f"GET {path.split('?')[0]}", reply, reply.status == 200)
        if target == "log-tail" and reply.status == 200:
            match = re.search(rb'hx-get="([^"]+)"', reply.body)
            if match:
                self.tail = match.group(1).decode().replace("&amp;", "&")

    def run(self) -> None:
        tick = 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            self._get("/gpu/", "gpu-cards")
            self._get("/alerts/counts/", "alert-counts")
            self._get(self.tail, "log-tail")
            if tick % 2 == 0:
                for widget in WIDGETS:
                    self._get(f"/overview/{widget}/", f"widget-{widget}")
            tick += 1
            next_at += 5
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, USS) in bytes of a process and its descendants; USS counts what is private to each."""
    rss = uss = 0
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                rss += info.rss
                uss += info.uss
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return rss, uss


def mib(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def growth(series: list[tuple[float, int]], warmup_end: float, window: float) -> tuple[float, float, float]:
    """Median of the first `window` seconds after the warm-up vs median of the last `window` seconds."""
    after = [(t, v) for t, v in series if t >= warmup_end]
    if len(after) < 2:
        return float("nan"), float("nan"), float("nan")
    start_t, end_t = after[0][0], after[-1][0]
    first = statistics.median(v for t, v in after if t <= start_t + window)
    last = statistics.median(v for t, v in after if t >= end_t - window)
    return first, last, 100.0 * (last - first) / first


ERROR_LINE = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) |Traceback \(most recent call last\)", re.M)


def main() -> int:
    seconds = env_int("SOAK_SECONDS", 1800)
    rate = env_int("SOAK_LOG_RATE", 200)
    web_workers = env_int("SOAK_WEB_WORKERS", 2)
    output = Path(os.environ.get("SOAK_OUTPUT") or ROOT / "docs" / "benchmarks-soak.md")
    keep = os.environ.get("SOAK_KEEP") == "1"
    run_id = uuid.uuid4().hex[:12]
    base = Path(tempfile.mkdtemp(prefix="wpsoak-"))
    print(f"soak {run_id}: {seconds} s, {rate} records/s, logs in {base}", flush=True)

    server = ThrowawayPostgres(prefix="wpsoak-db-")
    procs = Procs(base)
    result: dict = {}
    try:
        server.init()
        server.start(durable=True)
        server.create_database(DB)
        env = base_env(
            DATABASE_URL=server.url(DB),
            SECRET_KEY=secrets.token_urlsafe(50),
            WATCHPOST_VAR_DIR=base / "var",
            EXPORT_DIR=base / "exports",
            BACKUP_DIR=base / "backups",
            UPLOAD_DIR=base / "uploads",
            WATCHPOST_FAKE_NVML="1",
            GPU_SAMPLE_INTERVAL="1",
            Q_WORKERS="2",
        )
        for name in ("WATCHPOST_TESTING", "WATCHPOST_TASKS_SYNC", "LOG_TO_DATABASE", "DEBUG"):
            env.pop(name, None)
        setup = subprocess.run(
            [PYTHON, "-m", "tests.reliability.procs", "setup", "--username", USER, "--password", PASSWORD,
             "--collectstatic", "--schedules"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if setup.returncode:
            raise RuntimeError(f"setup failed:\n{setup.stdout}\n{setup.stderr}")
        port = free_port()
        web = procs.start("web", [PYTHON, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                  "--workers", str(web_workers), "--access-logfile", "-"], env)  # fmt: skip
        worker = procs.start("worker", [PYTHON, "manage.py", "qcluster"], env)
        browser = Browser(f"http://127.0.0.1:{port}", timeout=30)
        browser.wait_up("/healthz", 180)
        worker.wait_for_output("running.", 180)
        ingest_browser = Browser(browser.base, timeout=30)
        ingest_browser.login(USER, PASSWORD)
        browser.login(USER, PASSWORD)

        stop = threading.Event()
        ingestor = Ingestor(ingest_browser, rate, run_id, stop)
        poller = Poller(browser, stop)
        started = time.time()
        t0 = time.monotonic()
        ingestor.start()
        poller.start()
        memory: dict[str, list[tuple[float, int]]] = {"web": [], "worker": [], "web_uss": [], "worker_uss": []}
        next_report = 60.0
        while time.monotonic() - t0 < seconds:
            now = time.monotonic() - t0
            for name, proc in (("web", web), ("worker", worker)):
                rss, uss = tree_memory(proc.pid)
                memory[name].append((now, rss))
                memory[f"{name}_uss"].append((now, uss))
            if now >= next_report:
                next_report += 60
                print(f"  {now:5.0f} s: web {mib(memory['web'][-1][1])}, worker {mib(memory['worker'][-1][1])}, "
                      f"{ingestor.accepted} records accepted", flush=True)  # fmt: skip
            if not (web.alive() and worker.alive()):
                raise RuntimeError("a console process died during the soak")
            time.sleep(min(10.0, max(1.0, seconds / 60)))
        stop.set()
        ingestor.join(60)
        poller.join(60)
        elapsed = time.monotonic() - t0
        ended = time.time()
        time.sleep(3)  # the last batches and samples land

        with server.connect(DB) as conn:
            q = conn.execute

            stored, distinct = q(
                "SELECT count(*), count(DISTINCT (extra->>'seq')) FROM logs WHERE source = 'frontend' AND extra->>'soak' = %s",
                [run_id],
            ).fetchone()
            host_rows = q(
                "SELECT host, count(*), min(recorded_at), max(recorded_at) FROM gpu_stats GROUP BY host"
            ).fetchall()
            samples = [r[0] for r in q("SELECT recorded_at FROM gpu_stats ORDER BY recorded_at").fetchall()]
            error_rows = q(
                "SELECT level, component, left(message, 200) FROM logs WHERE source = 'backend' "
                "AND level IN ('ERROR', 'CRITICAL') ORDER BY timestamp LIMIT 20"
            ).fetchall()
            drops = q(
                "SELECT coalesce(sum((extra->>'dropped')::int), 0) FROM logs WHERE component = 'monitoring.logging' "
                "AND message LIKE '%%were dropped%%'"
            ).fetchone()[0]
            failed_tasks = q("SELECT func, left(result, 200) FROM django_q_task WHERE NOT success LIMIT 20").fetchall()
            backend_logs = q("SELECT count(*) FROM logs WHERE source = 'backend'").fetchone()[0]

        outputs = {p.name: p.output() for p in procs.started}
        error_lines = {name: ERROR_LINE.findall(text) for name, text in outputs.items()}
        for proc in procs.started:
            proc.stop(timeout=20)

        warmup = min(120.0, max(20.0, seconds * 0.1))
        window = min(120.0, max(10.0, seconds * 0.1))
        mem = {name: growth(series, warmup, window) for name, series in memory.items()}
        gaps = [(b - a).total_seconds() for a, b in zip(samples, samples[1:], strict=False)]
        if samples:
            span = (samples[-1] - samples[0]).total_seconds()
            expected = int(span // 1) + 1
        else:
            span, expected = 0.0, 0
        result = {
            "run_id": run_id,
            "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
            "ended": dt.datetime.fromtimestamp(ended, dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(elapsed),
            "rate": rate,
            "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {mib(psutil.virtual_memory().total)} RAM, "
            f"Python {platform.python_version()}",
            "web_workers": web_workers,
            "memory": {k: {"start": v[0], "end": v[1], "growth_percent": v[2]} for k, v in mem.items()},
            "records": {"sent": ingestor.sent, "accepted": ingestor.accepted, "stored": stored, "distinct": distinct},
            "ingestion": traffic_summary(ingestor.traffic, ingestor.max_lag),
            "poller": traffic_summary(poller.traffic),
            "samples": {"stored": len(samples), "expected": expected, "span_s": round(span),
                        "max_gap_s": round(max(gaps), 1) if gaps else None,
                        "gaps_over_2s": sum(1 for g in gaps if g > 2), "hosts": [list(map(str, r)) for r in host_rows]},
            "errors": {"log_rows": [list(r) for r in error_rows], "failed_tasks": [list(r) for r in failed_tasks],
                       "process_lines": {k: len(v) for k, v in error_lines.items()},
                       "http": ingestor.traffic.failures[:10] + poller.traffic.failures[:10],
                       "dropped_backend_records": drops},
            "backend_log_rows": backend_logs,
        }  # fmt: skip
        if any(error_lines.values()):
            for name, text in outputs.items():
                for m in ERROR_LINE.finditer(text):
                    line_start = text.rfind("\n", 0, m.start()) + 1
                    print(f"[{name}] {text[line_start : line_start + 300]}", file=sys.stderr)
    finally:
        procs.kill_all()
        server.destroy()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    verdicts = judge(result)
    section = report(result, verdicts)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(section)
    bench_report = Path(os.environ.get("BENCH_OUTPUT") or ROOT / "docs" / "benchmarks.md")
    if bench_report.exists():
        from tests.benchmarks.report import merge_soak

        merge_soak(bench_report, section)
    (output.with_suffix(".json")).write_text(
        json.dumps({"result": result, "verdicts": verdicts}, indent=2, default=str)
    )
    print(section)
    return 0 if all(ok for ok, _ in verdicts.values()) else 1


def traffic_summary(t: Traffic, max_lag: float | None = None) -> dict:
    out = {"requests": t.requests, "failures": len(t.failures), "p50_ms": t.percentile(0.5), "p95_ms": t.percentile(0.95),
           "max_ms": max(t.latencies) if t.latencies else None}  # fmt: skip
    if max_lag is not None:
        out["max_lag_s"] = round(max_lag, 2)
    return out


def judge(r: dict) -> dict[str, tuple[bool, str]]:
    mem = r["memory"]
    rec = r["records"]
    smp = r["samples"]
    err = r["errors"]
    return {
        "web memory": (mem["web"]["growth_percent"] < MEMORY_LIMIT_PERCENT,
                       f"RSS {mib(mem['web']['start'])} → {mib(mem['web']['end'])} ({mem['web']['growth_percent']:+.1f} %), "
                       f"USS {mib(mem['web_uss']['start'])} → {mib(mem['web_uss']['end'])} ({mem['web_uss']['growth_percent']:+.1f} %)"),
        "worker memory": (mem["worker"]["growth_percent"] < MEMORY_LIMIT_PERCENT,
                          f"RSS {mib(mem['worker']['start'])} → {mib(mem['worker']['end'])} ({mem['worker']['growth_percent']:+.1f} %), "
                          f"USS {mib(mem['worker_uss']['start'])} → {mib(mem['worker_uss']['end'])} ({mem['worker_uss']['growth_percent']:+.1f} %)"),
        "no errors": (not err["log_rows"] and not err["failed_tasks"] and not any(err["process_lines"].values())
                      and not err["http"],
                      f"{len(err['log_rows'])} ERROR rows, {len(err['failed_tasks'])} failed tasks, "
                      f"{sum(err['process_lines'].values())} error lines in process output, {len(err['http'])} HTTP errors"),
        "log records": (rec["accepted"] == rec["sent"] == rec["stored"] == rec["distinct"],
                        f"{rec['sent']:,} sent, {rec['accepted']:,} accepted, {rec['stored']:,} stored "
                        f"({rec['distinct']:,} distinct); backend records dropped: {err['dropped_backend_records']}"),
        "GPU samples": (smp["expected"] > 0 and smp["stored"] >= smp["expected"] and smp["gaps_over_2s"] == 0,
                        f"{smp['stored']:,} stored for {smp['expected']:,} ticks of 1 s over {smp['span_s']} s; "
                        f"longest gap {smp['max_gap_s']} s, {smp['gaps_over_2s']} gaps over 2 s"),
    }  # fmt: skip


def report(r: dict, verdicts: dict) -> str:
    minutes = r["seconds"] / 60
    ing, pol = r["ingestion"], r["poller"]

    def ms(v):
        return "–" if v is None else f"{v:.0f} ms"

    lines = [
        "## Soak (reliability, issue 9)",
        "",
        f"`python -m tests.benchmarks.soak` — {minutes:.1f} minutes ({r['started']} → {r['ended']}) on {r['machine']}: "
        f"gunicorn ({r['web_workers']} workers) + django-q2 (2 workers) on a throwaway PostgreSQL, production "
        f"settings; the scheduled GPU sampler at 1 s over one fake GPU; {r['rate']} frontend log records/s "
        f"(batches of {BATCH}); a browser-like HTMX poller on the live widgets.",
        "",
        "| Criterion | Met | Figures |",
        "|---|---|---|",
    ]
    for name, (ok, text) in verdicts.items():
        lines.append(f"| {name} | {'yes' if ok else '**no**'} | {text} |")
    lines += [
        "",
        "| Traffic | Requests | Failures | p50 | p95 | max |",
        "|---|---|---|---|---|---|",
        f"| ingestion (POST /api/logs/) | {ing['requests']:,} | {ing['failures']} | {ms(ing['p50_ms'])} | "
        f"{ms(ing['p95_ms'])} | {ms(ing['max_ms'])} |",
        f"| live widgets (HTMX polls) | {pol['requests']:,} | {pol['failures']} | {ms(pol['p50_ms'])} | "
        f"{ms(pol['p95_ms'])} | {ms(pol['max_ms'])} |",
        "",
        f"Memory is the sum over each service's process tree, median of the first vs the last window after a "
        f"warm-up (RSS; USS, the memory private to each process, beside it). The ingestion client fell at most "
        f"{ing.get('max_lag_s')} s behind its schedule. Backend log rows written meanwhile: {r['backend_log_rows']:,}.",
        "",
    ]
    if r["errors"]["log_rows"] or r["errors"]["failed_tasks"] or r["errors"]["http"]:
        lines += ["Errors seen:", ""]
        lines += [f"- log: {row}" for row in r["errors"]["log_rows"][:10]]
        lines += [f"- task: {row}" for row in r["errors"]["failed_tasks"][:10]]
        lines += [f"- http: {row}" for row in r["errors"]["http"][:10]]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
