"""The per-minute GPU rollup (table monitoring_gpu_rollup, migrations 0003/0004).

PostgreSQL triggers on gpu_stats keep it current for every write path (the
sampler, COPY, restores, retention deletes, TRUNCATE), so nothing here writes it
except `rebuild()`, for data loaded with triggers disabled
(session_replication_role = replica).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

ROLLUP_WIDTH = dt.timedelta(minutes=1)
# The columns the triggers sum (with non-NULL counts) and take the maximum of.
# Changing these lists needs a migration that alters the table and replaces
# monitoring_gpu_rollup_sync() / _rebuild().
ROLLUP_AVERAGES = (
    "gpu_utilization",
    "memory_bandwidth_utilization",
    "memory_used",
    "temperature",
    "power_usage",
    "sm_clock",
    "memory_clock",
    "fan_speed",
    "inference_fps",
    "pcie_tx_throughput",
    "pcie_rx_throughput",
    "encoder_utilization",
    "decoder_utilization",
)
ROLLUP_MAXIMA = ("memory_total", "temperature", "power_limit")

_AVERAGES_SQL = ",\n".join(f"sum({n}_sum) / nullif(sum({n}_n), 0) AS {n}" for n in ROLLUP_AVERAGES)
# One index range of the primary key (host, gpu_index, bucket) per output bucket,
# aggregated on the spot. A GROUP BY date_bin(...) over the same rows had to sort
# 43k wide rows for 30 days and spilled to disk at the default work_mem (250 ms
# against ~30 ms for this).
CHART_SQL = f"""
    SELECT b.bucket, agg.* FROM generate_series(%(start)s, %(last)s, %(width)s) AS b(bucket)
    CROSS JOIN LATERAL (
        SELECT sum(samples)::int AS samples,
               {_AVERAGES_SQL},
               max(memory_total_max) AS memory_total,
               max(temperature_max) AS temperature_max,
               max(power_limit_max) AS power_limit
        FROM monitoring_gpu_rollup r
        WHERE r.host = %(host)s AND r.gpu_index = %(gpu_index)s
          AND r.bucket >= b.bucket AND r.bucket < b.bucket + %(width)s
    ) agg
    WHERE agg.samples IS NOT NULL
    ORDER BY b.bucket
"""


def serves(width: dt.timedelta) -> bool:
    """Whether buckets of `width` can be built from whole rollup minutes."""
    return width >= ROLLUP_WIDTH and width % ROLLUP_WIDTH == dt.timedelta(0)


def chart(host: str, gpu_index: int, start: dt.datetime, end: dt.datetime, width: dt.timedelta) -> list[dict]:
    """The rows GpuStat.objects.for_gpu(...).between(start, end).bucketed(width) gives, from the rollup.

    `start` must be aligned to `width` (as charts.history aligns it).
    """
    params = {"start": start, "last": end - width, "width": width, "host": host, "gpu_index": gpu_index}
    with connection.cursor() as cur:
        cur.execute(CHART_SQL, params)
        names = [col.name for col in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def rows(host: str | None = None) -> list[dict]:
    """The raw rollup rows (tests and diagnosis)."""
    sql = "SELECT * FROM monitoring_gpu_rollup"
    params: list = []
    if host is not None:
        sql += " WHERE host = %s"
        params.append(host)
    with connection.cursor() as cur:
        cur.execute(sql + " ORDER BY host, gpu_index, bucket", params)
        names = [col.name for col in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def rebuild() -> None:
    """Recompute the whole rollup from gpu_stats (after loading data with triggers disabled)."""
    with connection.cursor() as cur:
        cur.execute("SELECT monitoring_gpu_rollup_rebuild()")
