"""What the numbers were measured on: CPU, memory, PostgreSQL and its settings, software versions."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import django
from django.db import connection

from tests.benchmarks.harness import commit_ms


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def describe() -> dict:
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cur.fetchone()
        cur.execute("SELECT pg_database_size(current_database())")
        db_size = cur.fetchone()[0]
    embedded = not os.environ.get("DATABASE_URL")
    # One `SELECT 1` round trip: every page and job pays it per query, and it shows how busy the server is.
    with connection.cursor() as cur:
        rtts = []
        for _ in range(200):
            t0 = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchone()
            rtts.append((time.perf_counter() - t0) * 1000)
    rtts.sort()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": pg_version,
        "postgresql_where": "embedded (same machine, Unix socket)" if embedded else "DATABASE_URL",
        "pg_settings": settings,
        "pgvector": row[0] if row else None,
        "database": connection.settings_dict["NAME"],
        "database_size_gib": round(db_size / 1024**3, 2),
        "round_trip_ms": {"median": round(rtts[len(rtts) // 2], 3), "p95": round(rtts[int(len(rtts) * 0.95)], 3)},
        "commit_ms": round(commit_ms(), 3),
    }
