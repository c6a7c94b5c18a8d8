"""Work run in a fresh process, so its peak RSS belongs to that work alone.

    python -m tests.benchmarks.child export  '{"filters": {...}, "out": "/tmp/x.csv", "format": "csv"}'
    python -m tests.benchmarks.child copy    '{"filters": {...}, "out": "/tmp/x.csv"}'
    python -m tests.benchmarks.child sampler '{"readings": 10000, "gpus": 2, "host": "bench-rss"}'

Prints one JSON line: seconds, rows, rss_start_mb (after Django has loaded),
peak_rss_mb (VmHWM: the high-water mark of the process's RSS) and task details.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    """Peak RSS of this process image. getrusage's ru_maxrss would also count the parent's
    memory at fork time (Linux carries it across exec), so VmHWM is read instead."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def export(args: dict) -> dict:
    from jobs.models import ExportJob
    from jobs.services import exports, lifecycle

    export = exports.create_export(
        "events",
        args.get("format", "csv"),
        args["filters"],
        created_by="bench",
        destination=args["out"],
        dispatch=False,
    )
    t0 = time.perf_counter()
    lifecycle.run_job(export.job_id)
    seconds = time.perf_counter() - t0
    export = ExportJob.objects.get(pk=export.pk)
    if export.status != "completed":
        raise RuntimeError(f"export ended as {export.status}: {export.error_message}")
    return {"seconds": seconds, "rows": export.processed_items, "bytes": export.output_size_bytes}


def copy(args: dict) -> dict:
    """The physical limit: the export's own SELECT through COPY … TO STDOUT WITH CSV, straight to a file."""
    from django.db import connection

    from jobs.services import exports

    sql, params = exports.copy_sql("events", args["filters"], "csv")
    connection.ensure_connection()
    rows = -1
    t0 = time.perf_counter()
    with open(args["out"], "wb") as fh, connection.connection.cursor() as cur, cur.copy(sql, params) as cp:
        for data in cp:
            fh.write(data)
            rows += 1
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rows, "bytes": os.path.getsize(args["out"])}


def sampler(args: dict) -> dict:
    from monitoring.services.nvml_fake import FakeNVML
    from monitoring.services.sampler import GpuSampler

    gpus = int(args.get("gpus", 2))
    s = GpuSampler(nvml=FakeNVML.with_gpus(gpus, varying=True), host=args.get("host", "bench-rss"))
    for _ in range(50):  # imports, NVML handles, prepared state
        s.sample_and_store()
    warm = rss_mb()
    ticks = max(1, int(args["readings"]) // gpus)
    curve = []
    t0 = time.perf_counter()
    for i in range(ticks):
        s.sample_and_store()
        if (i + 1) % max(1, ticks // 10) == 0:
            curve.append(round(rss_mb(), 1))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": ticks * gpus, "rss_warm_mb": warm, "rss_end_mb": rss_mb(), "curve": curve}


TASKS = {"export": export, "copy": copy, "sampler": sampler}


def main() -> int:
    task, raw = sys.argv[1], sys.argv[2]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.settings"
    import django

    django.setup()
    start = rss_mb()
    out = TASKS[task](json.loads(raw))
    out.update({"rss_start_mb": start, "peak_rss_mb": peak_mb()})
    print("BENCH-RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
