"""Loaders for tables that features add on top of the seed schema, run after the base load.

Each entry is (step name, fn(counts)). The base load skips row triggers
(session_replication_role = replica), so anything a trigger would maintain is
rebuilt here with the feature's own bulk path.
"""

from __future__ import annotations

from django.db import connection


def reid_vectors(counts: dict) -> None:
    """pgvector copy of the embeddings + HNSW index, via the re-id feature's own rebuild (dashboard.services.reid)."""
    try:
        from dashboard.services import reid
    except ImportError:
        return
    if not reid.vector_index_available():
        return
    reid.rebuild_vectors()
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) reid_vectors")


def _rebuild_rollup(table: str, rebuild) -> None:
    """Refill a trigger-kept rollup table with its feature's own rebuild, then analyse it."""
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if not cur.fetchone()[0]:
            return
    rebuild()
    with connection.cursor() as cur:
        cur.execute(f"VACUUM (ANALYZE) {table}")


def gpu_rollup(counts: dict) -> None:
    """The per-minute GPU rollup the GPU page charts from (monitoring.services.rollup), kept by triggers otherwise."""
    from monitoring.services import rollup

    _rebuild_rollup("monitoring_gpu_rollup", rollup.rebuild)


def feedback_rollup(counts: dict) -> None:
    """The feedback rollup the feedback statistics read (dashboard.services.stats), kept by triggers otherwise."""
    from dashboard.services import stats

    _rebuild_rollup("dashboard_feedback_rollup", stats.rebuild_feedback_rollup)


LOADERS: list = [
    ("reid vectors + HNSW index", reid_vectors),
    ("gpu rollup", gpu_rollup),
    ("feedback rollup", feedback_rollup),
]
