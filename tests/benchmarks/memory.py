"""Exports (speed against COPY, memory at two sizes) and the GPU sampler's memory over 10,000 readings.

Each measurement runs in a fresh child process (tests/benchmarks/child.py) so
its peak RSS is the work's own, not the benchmark runner's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.benchmarks.harness import NotMeasured, Result, failed, measured

FLAT_MB = 16  # "flat memory": the big export may use at most this much (or 10 %) more than the small one


def run_child(task: str, args: dict, timeout: float = 3600) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.child", task, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"child {task} failed (exit {proc.returncode}): {' | '.join(tail)}")


def _export_filters(ds, rows: int) -> dict:
    """The newest `rows` events: events are evenly spaced over 30 days up to the anchor."""
    total = ds.counts["events"]
    if rows >= total:
        return {}
    start = ds.anchor - dt.timedelta(days=30) + dt.timedelta(seconds=30 * 86400 * (total - rows) / total)
    return {"started_at__gte": start.isoformat()}


def exports(ds, runs: int) -> list[Result]:
    total = ds.counts["events"]
    big, small = total, max(1, total // 100)
    names = {
        "ratio": f"CSV export of {big:,} events: our rows/s ÷ COPY's rows/s",
        "ours": f"CSV export of {big:,} events (tracked job, formula-safe)",
        "copy": f"COPY (same query) TO STDOUT WITH CSV, {big:,} events",
        "small": f"Peak RSS, CSV export of {small:,} events",
        "big": f"Peak RSS, CSV export of {big:,} events",
    }
    try:
        try:
            from jobs.services import exports as _  # noqa: F401
        except ImportError:
            raise NotMeasured("jobs.services.exports missing") from None
        tmp = Path(tempfile.mkdtemp(prefix="watchpost-bench-"))
        try:
            n = max(1, min(runs, 3))
            ours, copies, peaks_big, peaks_small, rss_start = [], [], [], [], []
            for i in range(n):
                out = run_child("export", {"filters": _export_filters(ds, big), "out": str(tmp / f"ours-{i}.csv")})
                ours.append(out)
                peaks_big.append(out["peak_rss_mb"])
                rss_start.append(out["rss_start_mb"])
                copies.append(
                    run_child("copy", {"filters": _export_filters(ds, big), "out": str(tmp / f"copy-{i}.csv")})
                )
                for f in tmp.iterdir():
                    f.unlink()
                small_out = run_child("export", {"filters": _export_filters(ds, small), "out": str(tmp / "small.csv")})
                peaks_small.append(small_out["peak_rss_mb"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        ours_rps = [o["rows"] / o["seconds"] for o in ours]
        copy_rps = [c["rows"] / c["seconds"] for c in copies]
        ratio = statistics.median(ours_rps) / statistics.median(copy_rps)
        r_ours = measured("Throughput", names["ours"], ours_rps, unit="rows/s",
                          note=f"{ours[0]['rows']:,} rows, {ours[0]['bytes'] / 1e6:,.0f} MB; one child process per run")  # fmt: skip
        r_copy = measured("Throughput", names["copy"], copy_rps, unit="rows/s", note="the physical limit")
        r_ratio = Result(
            section="Side by side", name=names["ratio"], median=ratio, unit="x", target="≥ 0.5×", met=ratio >= 0.5,
            runs=n, note=f"ours {statistics.median(ours_rps):,.0f} rows/s, COPY {statistics.median(copy_rps):,.0f} rows/s",
        )  # fmt: skip
        if not r_ratio.met:
            ours_s = statistics.median(o["seconds"] for o in ours)
            copy_s = statistics.median(c["seconds"] for c in copies)
            fixed = ours_s - copy_s
            r_ratio.extra["explanation"] = (
                f"the export runs the same COPY and writes its bytes unchanged; the difference, {fixed * 1000:,.0f} ms, "
                f"is the tracked job around it (job, attempt and export rows, state transitions, a count(*) for the "
                f"progress bar, a side connection for live progress, fsync of the file). At {ours[0]['rows']:,} rows "
                f"that fixed part is {fixed / ours_s:.0%} of the export's time; it does not grow with the rows, so the "
                f"ratio approaches 1 as exports get bigger (see a larger SCALE)."
            )
        small_peak, big_peak = statistics.median(peaks_small), statistics.median(peaks_big)
        flat = big_peak - small_peak <= max(FLAT_MB, 0.1 * small_peak)
        base = statistics.median(rss_start)
        r_small = measured("Memory", names["small"], peaks_small, unit="MB",
                           note=f"process RSS after Django loaded: {base:,.1f} MB")  # fmt: skip
        r_big = measured("Memory", names["big"], peaks_big, unit="MB", target=f"flat (≤ small + {FLAT_MB} MB)",
                         note=f"{big_peak - small_peak:+,.1f} MB over the {small:,}-row export")  # fmt: skip
        r_big.met = flat
        return [r_ratio, r_ours, r_copy, r_small, r_big]
    except Exception as exc:
        return [failed("Side by side", names["ratio"], exc, "≥ 0.5×"), failed("Memory", names["big"], exc)]


def sampler(ds, runs: int, readings: int = 10_000) -> list[Result]:
    name = f"Peak RSS of a worker process after {readings:,} GPU readings (fake NVML, 2 GPUs)"
    host = "bench-rss"
    try:
        try:
            from monitoring.services import sampler as _  # noqa: F401
        except ImportError:
            raise NotMeasured("monitoring.services.sampler missing") from None
        from monitoring.models import GpuStat

        try:
            out = run_child("sampler", {"readings": readings, "gpus": 2, "host": host})
        finally:
            GpuStat.objects.filter(host=host).delete()
        growth = out["rss_end_mb"] - out["rss_warm_mb"]
        per_tick = out["seconds"] / max(1, out["rows"] // 2) * 1000
        r = Result(
            section="Memory", name=name, median=out["peak_rss_mb"], unit="MB", target="no growth (≤ 5 MB)",
            met=growth <= 5, runs=1,
            note=f"{growth:+.1f} MB from the 100th reading to the last (RSS every 10 %: {out['curve']}); "
                 f"{per_tick:.1f} ms per sample of both GPUs, stored",
        )  # fmt: skip
        return [r]
    except Exception as exc:
        return [failed("Memory", name, exc)]


def run(ds, runs: int) -> list[Result]:
    return exports(ds, runs) + sampler(ds, runs)
