"""Timing, statistics, plan inspection and the result rows the report is made of."""

from __future__ import annotations

import gc
import json
import math
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.db import connection

# Tables with millions of rows at the default scale: a sequential scan of one of
# these behind a page is a bug, whatever the page's timing at a small scale says.
BIG_TABLES = frozenset(
    {
        "gpu_stats", "logs", "events", "detections", "event_detections", "alerts", "jobs", "job_attempts",
        "job_transitions", "job_logs", "audit_logs", "reid_embeddings", "reid_vectors",
    }
)  # fmt: skip


class NotMeasured(Exception):
    """A measurement that cannot run yet (feature missing); the reason goes into the table."""


@dataclass
class Result:
    section: str
    name: str
    median: float | None = None
    p95: float | None = None
    unit: str = "ms"
    target: str = ""
    met: bool | None = None
    note: str = ""
    runs: int = 0
    plan: str = ""
    seq_scans: list[str] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    group: str = ""  # the run.py group that measured it (pages, compare, ...)

    def to_json(self) -> dict:
        return asdict(self)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (with 7 runs: the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def summarize(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), p95(samples)


def time_runs(
    fn: Callable[[], object], runs: int, warmup: int = 1, budget_s: float | None = None, min_runs: int = 3
) -> list[float]:
    """Wall time of `fn` in milliseconds, `runs` times after `warmup` untimed calls.

    With `budget_s`, stops early (after at least 3 runs) once the runs so far
    have used the budget (after at least `min_runs`): a slow baseline (exact
    COUNT over 10M rows) does not need seven repetitions to make its point.
    """
    for _ in range(warmup):
        fn()
    samples = []
    spent = 0.0
    for i in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        samples.append(elapsed * 1000)
        spent += elapsed
        if budget_s is not None and i + 1 >= min_runs and spent >= budget_s:
            break
    return samples


def measured(
    section: str,
    name: str,
    samples: list[float],
    *,
    unit: str = "ms",
    target: str = "",
    limit: float | None = None,
    higher_is_better: bool = False,
    note: str = "",
    **extra,
) -> Result:
    med, high = summarize(samples)
    met = None
    if limit is not None:
        # Judged on the median: on a shared 2-core machine one slow run in seven says more
        # about the neighbours than about the code. The p95 is reported beside it.
        met = med >= limit if higher_is_better else med < limit
    return Result(
        section=section, name=name, median=med, p95=high, unit=unit, target=target, met=met,
        note=note, runs=len(samples), samples=[round(s, 3) for s in samples], extra=extra,
    )  # fmt: skip


def not_measured(section: str, name: str, reason: str, target: str = "") -> Result:
    return Result(section=section, name=name, target=target, note=f"not measured: {reason}")


def failed(section: str, name: str, exc: BaseException, target: str = "") -> Result:
    if isinstance(exc, NotMeasured):
        return not_measured(section, name, str(exc), target)
    tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return Result(
        section=section,
        name=name,
        target=target,
        met=None,
        note=f"not measured: failed with {tb[:300]}",
        extra={"traceback": traceback.format_exc()},
    )


def round_trip_ms(n: int = 200) -> float:
    """Median `SELECT 1` round trip: the floor under every query a page or job makes."""
    samples = []
    with connection.cursor() as cur:
        for _ in range(n):
            t0 = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchone()
            samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def commit_ms(n: int = 50) -> float:
    """Median cost of committing a one-row write: the WAL flush every write transaction waits for."""
    samples = []
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_probe (id int PRIMARY KEY, n bigint NOT NULL)")
        for i in range(n):
            t0 = time.perf_counter()
            cur.execute(
                "INSERT INTO bench_probe VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n", [i]
            )  # autocommit: the statement is its own transaction
            samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


# --- plans --------------------------------------------------------------------------------


def explain(sql: str) -> dict | None:
    with connection.cursor() as cur:
        try:
            cur.execute("EXPLAIN (FORMAT JSON) " + sql)
        except Exception:
            return None
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return plan[0]["Plan"]


def walk(node: dict):
    yield node
    for child in node.get("Plans", []) or []:
        yield from walk(child)


# Nodes that pass rows through one at a time: a LIMIT above them stops the scan below early.
_STREAMING = frozenset({"Limit", "Subquery Scan", "Result", "Gather"})


def _scans(node: dict, bounded: bool):
    kind = node.get("Node Type")
    if kind in ("Seq Scan", "Parallel Seq Scan"):
        yield node, bounded
    # A LIMIT of a few thousand rows over a streaming chain (e.g. the admin's bounded
    # `count(*) FROM (… LIMIT 10001)`) reads at most that many rows: bounded work.
    small_limit = kind == "Limit" and (node.get("Plan Rows") or 0) <= 20_000
    for child in node.get("Plans", []) or []:
        yield from _scans(child, (bounded and kind in _STREAMING) or small_limit)


def seq_scans(plan: dict) -> list[str]:
    """Big tables read sequentially without a small LIMIT directly above the scan."""
    return sorted(
        {
            n.get("Relation Name", "?")
            for n, bounded in _scans(plan, False)
            if not bounded and n.get("Relation Name") in BIG_TABLES
        }
    )


def plan_summary(plan: dict) -> str:
    """'Limit > Index Scan using idx_events_started_at_id on events' — the access paths of a plan."""
    parts = []
    for n in walk(plan):
        kind = n.get("Node Type", "?")
        if "Relation Name" in n or "Index Name" in n:
            text = kind
            if n.get("Index Name"):
                text += f" using {n['Index Name']}"
            if n.get("Relation Name"):
                text += f" on {n['Relation Name']}"
            parts.append(text)
    return "; ".join(dict.fromkeys(parts)) or plan.get("Node Type", "?")


def is_select(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH")


# Queries every page makes (session, user, groups): never the page's main query.
FRAMEWORK_TABLES = ("django_session", "auth_user", "auth_group", "django_content_type", "auth_permission", "axes_")


def is_framework(sql: str) -> bool:
    head = sql.split(" WHERE ", 1)[0]
    if "FROM pg_class" in head or sql.lstrip().upper().startswith("EXPLAIN"):
        return True  # the admin paginator's row estimate
    return any(f'"{t}' in head for t in FRAMEWORK_TABLES)


def table_rows(table: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cur.fetchone()
    return max(0, row[0]) if row and row[0] is not None else 0


def inspect_queries(captured: list[dict]) -> tuple[str, list[str], dict]:
    """Plan of the slowest app SELECT (the page's main query) and any big-table seq scans of all of them."""
    selects = [q for q in captured if is_select(q["sql"])]
    flagged: set[str] = set()
    main_plan = ""
    details = {"queries": len(captured)}
    if not selects:
        return main_plan, [], details
    app = [q for q in selects if not is_framework(q["sql"])] or selects
    main = max(app, key=lambda q: float(q.get("time") or 0))
    # Every app query (shortened) with its time, slowest first: where a page's time goes.
    details["all_sql"] = [
        f"{float(q.get('time') or 0) * 1000:.1f} ms: {q['sql'][:300]}"
        for q in sorted(app, key=lambda q: -float(q.get("time") or 0))
    ]
    for q in selects:
        plan = explain(q["sql"])
        if plan is None:
            continue
        for table in seq_scans(plan):
            flagged.add(table)
            details.setdefault("seq_scan_sql", []).append(q["sql"][:2000])
        if q is main:
            main_plan = plan_summary(plan)
            details["main_sql"] = q["sql"][:4000]
            details["main_ms"] = float(q.get("time") or 0) * 1000
    return main_plan, sorted(flagged), details
