"""The per-minute GPU rollup kept by PostgreSQL triggers, and the charts that read it."""

import datetime as dt
import random

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.models import GpuStat
from monitoring.services import rollup as rollup_service
from monitoring.services.charts import history
from tests import factories

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def rollup(bucket: dt.datetime, host="localhost", gpu_index=0) -> dict | None:
    found = [r for r in rollup_service.rows(host) if r["gpu_index"] == gpu_index and r["bucket"] == bucket]
    return found[0] if found else None


def buckets() -> list[dt.datetime]:
    return [r["bucket"] for r in rollup_service.rows()]


def test_inserts_are_summed_per_minute_by_the_database():
    factories.GpuStatFactory(
        recorded_at=T0 + dt.timedelta(seconds=5), gpu_utilization=10, temperature=50, fan_speed=None
    )
    GpuStat.objects.bulk_create(
        [
            factories.GpuStatFactory.build(
                recorded_at=T0 + dt.timedelta(seconds=35), gpu_utilization=30, temperature=70, fan_speed=40
            ),
            factories.GpuStatFactory.build(
                recorded_at=T0 + dt.timedelta(seconds=65), gpu_utilization=90, temperature=60
            ),
            factories.GpuStatFactory.build(recorded_at=T0 + dt.timedelta(seconds=5), gpu_index=1, gpu_utilization=99),
        ]
    )
    with connection.cursor() as cur:  # a path that bypasses the ORM entirely
        cur.execute(
            "INSERT INTO gpu_stats (recorded_at, host, gpu_index, gpu_utilization, temperature) VALUES (%s, 'localhost', 0, 20, 80)",
            [T0 + dt.timedelta(seconds=50)],
        )
    first = rollup(T0)
    assert first["samples"] == 3
    assert (first["gpu_utilization_sum"], first["gpu_utilization_n"]) == (60.0, 3)
    assert (first["fan_speed_sum"], first["fan_speed_n"]) == (40.0, 1)  # NULLs are not counted
    assert first["temperature_max"] == 80.0
    assert rollup(T0 + dt.timedelta(minutes=1))["samples"] == 1
    assert rollup(T0, gpu_index=1)["gpu_utilization_sum"] == 99.0


def test_deletes_update_and_empty_buckets_disappear():
    rows = [
        factories.GpuStatFactory(recorded_at=T0 + dt.timedelta(seconds=s), gpu_utilization=s) for s in (0, 10, 20, 70)
    ]
    GpuStat.objects.filter(pk=rows[0].pk).delete()
    first = rollup(T0)
    assert first["samples"] == 2 and first["gpu_utilization_sum"] == 30.0 and first["gpu_utilization_n"] == 2
    GpuStat.objects.filter(recorded_at__gte=T0 + dt.timedelta(minutes=1)).delete()  # retention-style
    assert buckets() == [T0]


def test_updates_move_values_between_buckets():
    row = factories.GpuStatFactory(recorded_at=T0, gpu_utilization=10)
    GpuStat.objects.filter(pk=row.pk).update(recorded_at=T0 + dt.timedelta(minutes=5), gpu_utilization=50)
    assert buckets() == [T0 + dt.timedelta(minutes=5)]
    moved = rollup(T0 + dt.timedelta(minutes=5))
    assert moved["samples"] == 1 and moved["gpu_utilization_sum"] == 50.0


def test_truncate_empties_the_rollup_and_rebuild_recomputes_it():
    for s in range(0, 300, 7):
        factories.GpuStatFactory(recorded_at=T0 + dt.timedelta(seconds=s), gpu_utilization=s % 100)
    kept = rollup_service.rows()
    assert len(kept) == 5
    with connection.cursor() as cur:
        cur.execute("DELETE FROM monitoring_gpu_rollup")
    rollup_service.rebuild()
    assert rollup_service.rows() == kept
    with connection.cursor() as cur:
        cur.execute("TRUNCATE gpu_stats")
    assert rollup_service.rows() == []


@pytest.mark.parametrize("key", ["6h", "24h", "7d", "30d"])
def test_rollup_charts_equal_the_raw_bucketed_query(key):
    rng = random.Random(key)
    now = timezone.now()
    span = {"6h": 6, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}[key]
    samples = []
    for _ in range(400):
        when = now - dt.timedelta(hours=rng.uniform(0, span * 1.1))
        samples.append(
            factories.GpuStatFactory.build(
                recorded_at=when,
                gpu_utilization=rng.choice([None, rng.uniform(0, 100)]),
                temperature=rng.uniform(30, 90),
                memory_used=rng.randint(0, 24000),
                power_usage=None,
            )
        )
    GpuStat.objects.bulk_create(samples)

    hist = history("localhost", 0, key, now)
    raw = list(GpuStat.objects.for_gpu("localhost", 0).between(hist.start, hist.end).bucketed(hist.width))

    assert [r["bucket"] for r in hist.rows] == [r["bucket"] for r in raw]
    for got, want in zip(hist.rows, raw, strict=True):
        assert got["samples"] == want["samples"]
        for name in ("gpu_utilization", "temperature", "memory_used", "power_usage", "temperature_max", "memory_total"):
            assert got[name] == (pytest.approx(want[name]) if want[name] is not None else None), name
