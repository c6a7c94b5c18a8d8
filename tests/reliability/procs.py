"""Small child programs for the outage test and the soak: `python -m tests.reliability.procs <command>`.

    setup --username U --password P     migrate the database of DATABASE_URL and create an operator
          [--collectstatic] [--schedules]  (and prepare it like `make run` does)
    logloop --rate N --stats FILE       log N records/s through a DatabaseLogHandler until SIGTERM,
                                        writing counts and emit latencies to FILE (JSON) as it goes
    sampler-task --host H               one run of the scheduled GPU sampler task (monitoring.tasks.sample_gpus)
                                        as host H, printing its outcome as JSON

They take their settings from the environment like any Watchpost process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()


def setup(args) -> int:
    _django()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if args.collectstatic:
        call_command("collectstatic", interactive=False, verbosity=0)
    if args.schedules:
        from dashboard.services.bootstrap import ensure_all_schedules

        ensure_all_schedules()
    if not User.objects.filter(username=args.username).exists():
        User.objects.create_superuser(args.username, f"{args.username}@example.com", args.password)
    print("setup done", flush=True)
    return 0


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def logloop(args) -> int:
    _django()
    from monitoring.logging import DatabaseLogHandler

    handler = DatabaseLogHandler(capacity=args.capacity, batch_size=args.batch, flush_interval=0.2)
    log = logging.getLogger(args.logger)
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats_path = Path(args.stats)
    emitted = 0
    slow = 0
    worst = 0.0
    latencies: list[float] = []
    started = time.time()
    period = 1.0 / args.rate
    next_at = time.monotonic()
    last_stats = 0.0

    def snapshot(final: bool = False) -> dict:
        ordered = sorted(latencies) if final else []
        return {
            "pid": os.getpid(),
            "started": started,
            "emitted": emitted,
            "dropped": handler.dropped,
            "max_emit_ms": worst,
            "p99_emit_ms": ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
            "emits_over_10ms": slow,
            "final": final,
            "flushed": None,
        }

    while not stop.is_set():
        t0 = time.perf_counter()
        log.info("rel record %d", emitted, extra={"seq": emitted, "run": args.run})
        elapsed = (time.perf_counter() - t0) * 1000
        emitted += 1
        latencies.append(elapsed)
        worst = max(worst, elapsed)
        if elapsed > 10:
            slow += 1
        now = time.monotonic()
        if now - last_stats >= 0.25:
            last_stats = now
            _write_json(stats_path, snapshot())
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        elif delay < -1:
            next_at = time.monotonic()  # fell behind (machine busy): do not burst to catch up
    flushed = handler.flush(timeout=args.flush_timeout)
    data = snapshot(final=True)
    data["flushed"] = flushed
    handler.close()
    _write_json(stats_path, data)
    return 0


def sampler_task(args) -> int:
    _django()
    from django.conf import settings

    settings.GPU_SAMPLER_HOST = args.host
    from monitoring import tasks

    outcome = tasks.sample_gpus()
    print(json.dumps(outcome, default=str), flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.procs")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--collectstatic", action="store_true", help="as `make run` does (manifest static storage)")
    p.add_argument("--schedules", action="store_true", help="register every app's django-q2 schedules")
    p.set_defaults(func=setup)
    p = sub.add_parser("logloop")
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--capacity", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--logger", default="rel.logloop")
    p.add_argument("--run", default="")
    p.add_argument("--stats", required=True)
    p.add_argument("--flush-timeout", type=float, default=30)
    p.set_defaults(func=logloop)
    p = sub.add_parser("sampler-task")
    p.add_argument("--host", required=True)
    p.set_defaults(func=sampler_task)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
