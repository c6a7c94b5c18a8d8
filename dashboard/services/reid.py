"""Cross-camera re-identification: the detections on other cameras whose re-id
embedding is closest (cosine similarity) to a given detection's.

Two paths return the same thing:

* "vector": pgvector's HNSW index on `reid_vectors` (migration 0003), an
  approximate nearest-neighbour search whose cost follows the index, not the table
  (target: < 50 ms over 1M embeddings).
* "exact": cosine similarity computed in SQL straight from the JSONB arrays of
  `reid_embeddings` (the source of truth). A full scan; used where the extension
  is not installed, and to check the index's answers.

"auto" takes the vector path when `reid_vectors` exists, the exact path otherwise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from django.db import DatabaseError, connection, transaction

from dashboard.choices import REID_DIMENSIONS
from dashboard.models import Camera, Detection, ReidEmbedding

METHODS = ("auto", "vector", "exact")
MAX_LIMIT = 100
# HNSW search breadth: with results on the query's own camera filtered out, the
# default 40 candidates can leave fewer than 20 rows; 100 keeps recall high at
# sub-millisecond cost, and iterative scans (pgvector ≥ 0.8) keep looking if needed.
HNSW_EF_SEARCH = 100
# Building the graph is far faster when it fits in maintenance_work_mem
# (1M × 512 float4 ≈ 2 GB of vectors plus the graph); set for the index build only
# (rebuild_vectors, and resume_vector_sync after a restore).
HNSW_BUILD_MEMORY = "1GB"
# Below this many vectors the serial build takes a few seconds: not worth reserving
# HNSW_BUILD_MEMORY of shared memory for parallel workers.
HNSW_PARALLEL_MIN_ROWS = 2_000


class ReidError(ValueError):
    """A re-id search that cannot run; the message is shown to the operator as is."""


class NoEmbedding(ReidError):
    pass


class InvalidEmbedding(ReidError):
    pass


class VectorIndexUnavailable(ReidError):
    pass


class SimilarDetection(NamedTuple):
    detection: Detection
    camera: Camera
    time: object  # datetime of the detection
    score: float  # cosine similarity, -1 … 1 (1 = same direction)


def validate_embedding(values, *, label: str = "The re-id embedding") -> list[float]:
    """Return the embedding as floats, or raise InvalidEmbedding saying what is wrong."""
    if not isinstance(values, (list, tuple)):
        raise InvalidEmbedding(f"{label} is not a list of numbers.")
    if len(values) != REID_DIMENSIONS:
        raise InvalidEmbedding(f"{label} has {len(values)} values; {REID_DIMENSIONS} are expected.")
    floats = []
    for i, v in enumerate(values, start=1):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidEmbedding(f"{label} has a non-numeric value at position {i}.")
        f = float(v)
        if not math.isfinite(f):
            raise InvalidEmbedding(f"{label} has a non-finite value at position {i}.")
        floats.append(f)
    if not any(floats):
        raise InvalidEmbedding(f"{label} is all zeros; cosine similarity is undefined for it.")
    return floats


def vector_index_available() -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('reid_vectors') IS NOT NULL")
        return bool(cur.fetchone()[0])


def find_similar(detection_id: int, limit: int = 20, method: str = "auto") -> list[SimilarDetection]:
    """The `limit` detections on other cameras most similar to `detection_id`, best first."""
    if method not in METHODS:
        raise ReidError(f"Unknown search method {method!r}; use one of {', '.join(METHODS)}.")
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise ReidError(f"Limit must be between 1 and {MAX_LIMIT}.")
    source = (
        ReidEmbedding.objects.filter(detection_id=detection_id)
        .select_related("detection")
        .only("embedding", "detection__camera_id", "detection__id")
        .first()
    )
    if source is None:
        raise NoEmbedding(f"Detection {detection_id} has no re-id embedding, so there is nothing to compare.")
    query = validate_embedding(source.embedding, label=f"The re-id embedding of detection {detection_id}")
    camera_id = source.detection.camera_id

    if method == "auto":
        method = "vector" if vector_index_available() else "exact"
    elif method == "vector" and not vector_index_available():
        raise VectorIndexUnavailable(
            "The pgvector index is not installed on this database (the `vector` extension is missing); "
            "use the exact search."
        )
    rows = _vector_search(query, camera_id, limit) if method == "vector" else _exact_search(query, camera_id, limit)
    return _hydrate(rows)


def _vector_literal(values: list[float]) -> str:
    return "[" + ",".join(repr(v) for v in values) + "]"


def _vector_search(query: list[float], camera_id: str, limit: int) -> list[tuple[int, float]]:
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}")
        _enable_iterative_scan(cur)
        cur.execute(
            """
            SELECT detection_id, 1 - (embedding <=> %s::vector) AS score
            FROM reid_vectors
            WHERE camera_id <> %s
            ORDER BY embedding <=> %s::vector
            LIMIT %s
            """,
            [_vector_literal(query), camera_id, _vector_literal(query), limit],
        )
        return [(pk, float(score)) for pk, score in cur.fetchall()]


def _enable_iterative_scan(cur) -> None:
    """pgvector ≥ 0.8 keeps scanning the graph when the camera filter discards candidates."""
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    row = cur.fetchone()
    try:
        major, minor = (int(p) for p in row[0].split(".")[:2])
    except (TypeError, ValueError, IndexError):
        return
    if (major, minor) >= (0, 8):
        cur.execute("SET LOCAL hnsw.iterative_scan = strict_order")


def _exact_search(query: list[float], camera_id: str, limit: int) -> list[tuple[int, float]]:
    norm = math.sqrt(sum(v * v for v in query))
    with connection.cursor() as cur:
        # Elements that are not numbers count as NULL (ignored by sum) instead of
        # failing the whole search on one malformed row; rows of the wrong length
        # are skipped, exactly as the vector index skips them.
        cur.execute(
            """
            SELECT e.detection_id, s.dot / NULLIF(sqrt(s.nn) * %s, 0) AS score
            FROM reid_embeddings e
            JOIN detections d ON d.id = e.detection_id
            CROSS JOIN LATERAL (
                SELECT sum(t.x * q.v[t.i]) AS dot, sum(t.x * t.x) AS nn
                FROM (SELECT %s::float8[] AS v) q,
                     LATERAL (
                        SELECT CASE WHEN jsonb_typeof(el) = 'number' THEN el::float8 END AS x, i
                        FROM jsonb_array_elements(e.embedding) WITH ORDINALITY AS a(el, i)
                     ) t
            ) s
            WHERE d.camera_id <> %s
              AND jsonb_typeof(e.embedding) = 'array'
              AND jsonb_array_length(e.embedding) = %s
            ORDER BY score DESC NULLS LAST, e.detection_id
            LIMIT %s
            """,
            [norm, query, camera_id, REID_DIMENSIONS, limit],
        )
        return [(pk, float(score)) for pk, score in cur.fetchall() if score is not None]


def _hydrate(rows: list[tuple[int, float]]) -> list[SimilarDetection]:
    by_id = Detection.objects.select_related("camera").in_bulk([pk for pk, _ in rows])
    out = []
    for pk, score in rows:
        det = by_id.get(pk)
        if det is not None:  # deleted between the two queries
            out.append(SimilarDetection(det, det.camera, det.detected_at, max(-1.0, min(1.0, score))))
    return out


# Same rule as the sync trigger of migration 0003 (migrations are frozen, hence the copy).
_VALID_EMBEDDING_SQL = """
    jsonb_typeof(e.embedding) = 'array'
    AND jsonb_array_length(e.embedding) = 512
    AND NOT jsonb_path_exists(e.embedding, '$[*] ? (@.type() != "number" || @ > 3.0e38 || @ < -3.0e38)')
"""

# The one set-based fill of `reid_vectors` from the JSONB source of truth (the migration's, minus its
# ON CONFLICT: every caller empties the table first).
_FILL_VECTORS_SQL = f"""
    INSERT INTO reid_vectors (detection_id, camera_id, embedding)
    SELECT e.detection_id, d.camera_id, e.embedding::text::vector(512)
    FROM reid_embeddings e JOIN detections d ON d.id = e.detection_id
    WHERE {_VALID_EMBEDDING_SQL}
"""

VECTOR_SYNC_TRIGGER = "trg_reid_embeddings_vector_sync"
VECTOR_INDEX = "idx_reid_vectors_embedding_hnsw"
_VECTOR_INDEX_SQL = f"CREATE INDEX {VECTOR_INDEX} ON reid_vectors USING hnsw (embedding vector_cosine_ops)"

# ALTER TABLE … ENABLE variants that give a trigger back the pg_trigger.tgenabled it had.
_TRIGGER_ENABLE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}


def _vector_index_definition(cur) -> str | None:
    cur.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = to_regclass(%s)", [VECTOR_INDEX])
    row = cur.fetchone()
    return row[0] if row else None


def _build_vector_index(cur, definition: str, rows: int) -> None:
    """CREATE the HNSW index with room for the graph, in parallel when there is enough to share.

    The vectors are TOASTed, so the heap looks tiny and the planner would always build
    serially; min_parallel_table_scan_size = 0 lets it use max_parallel_maintenance_workers
    (20k embeddings: 48 s → 36 s on 2 busy cores). A parallel build reserves the whole graph
    area (maintenance_work_mem) in dynamic shared memory up front, hence only for big builds,
    and a small /dev/shm (containers) may refuse it: then the build runs serially.
    """
    cur.execute(
        "SELECT current_setting('maintenance_work_mem'), current_setting('min_parallel_table_scan_size'), "
        "current_setting('max_parallel_maintenance_workers')"
    )
    saved = cur.fetchone()
    cur.execute("SELECT set_config('maintenance_work_mem', %s, true)", [HNSW_BUILD_MEMORY])
    if rows < HNSW_PARALLEL_MIN_ROWS:
        cur.execute(definition)
    else:
        cur.execute("SELECT set_config('min_parallel_table_scan_size', '0', true)")
        try:
            with transaction.atomic():
                cur.execute(definition)
        except DatabaseError as exc:
            if "shared memory" not in str(exc):
                raise
            cur.execute("SELECT set_config('max_parallel_maintenance_workers', '0', true)")
            cur.execute(definition)
    # Only for this statement: the caller's transaction goes on with the settings it had (on an
    # error there is nothing to reset, the transaction is lost anyway).
    names = ("maintenance_work_mem", "min_parallel_table_scan_size", "max_parallel_maintenance_workers")
    for name, value in zip(names, saved, strict=True):
        cur.execute("SELECT set_config(%s, %s, true)", [name, value])


def rebuild_vectors(progress=None) -> int:
    """Re-derive `reid_vectors` from the JSONB source of truth; returns the rows indexed.

    Only needed when rows reached `reid_embeddings` without firing its triggers.
    Building the HNSW graph once after the copy is much faster than row by row.
    """
    if not vector_index_available():
        raise VectorIndexUnavailable("The pgvector index is not installed on this database; nothing to rebuild.")

    def step(percent, text):
        if progress:
            progress(percent, text)

    with transaction.atomic(), connection.cursor() as cur:
        step(5, "Clearing the vector index")
        cur.execute(f"DROP INDEX IF EXISTS {VECTOR_INDEX}")
        cur.execute("TRUNCATE reid_vectors")
        step(20, "Copying embeddings")
        cur.execute(_FILL_VECTORS_SQL)
        count = cur.rowcount
        step(60, "Building the HNSW index")
        _build_vector_index(cur, _VECTOR_INDEX_SQL, count)
    step(100, "Done")
    return count


class PausedVectorSync(NamedTuple):
    trigger_state: str | None  # pg_trigger.tgenabled of the sync trigger before the pause; None: no trigger
    index_definition: str | None  # pg_get_indexdef of the HNSW index before the pause; None: there was none


def pause_vector_sync() -> PausedVectorSync | None:
    """Before replacing every row of `reid_embeddings` in bulk (a restore), inside the caller's transaction.

    Row by row, the sync trigger inserts each embedding into the HNSW graph on its own
    (2.5–9 ms each on 2 cores, measured); one INSERT … SELECT and one index build after the load do the
    same several times faster. So: empty `reid_vectors` (it is re-derived from whatever
    the load leaves), drop its HNSW index, disable the sync trigger. The caller must call
    resume_vector_sync() in the same transaction after the load; a rollback undoes all of
    it (PostgreSQL's DDL is transactional). Needs only the tables' owner, not a superuser.
    Returns None where there is no vector table (nothing to keep in sync).
    """
    if not vector_index_available():
        return None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'reid_embeddings'::regclass AND tgname = %s",
            [VECTOR_SYNC_TRIGGER],
        )
        row = cur.fetchone()
        paused = PausedVectorSync(row[0] if row else None, _vector_index_definition(cur))
        if paused.trigger_state in _TRIGGER_ENABLE:
            cur.execute(f"ALTER TABLE reid_embeddings DISABLE TRIGGER {VECTOR_SYNC_TRIGGER}")
        if paused.index_definition:
            cur.execute(f"DROP INDEX {VECTOR_INDEX}")
        cur.execute("TRUNCATE reid_vectors")
    return paused


def resume_vector_sync(paused: PausedVectorSync) -> int:
    """After the bulk load: fill `reid_vectors` in one statement, build the index once (same
    definition, same name), give the trigger back its state. Returns the rows indexed."""
    with connection.cursor() as cur:
        cur.execute(_FILL_VECTORS_SQL)
        count = cur.rowcount
        if paused.index_definition:
            _build_vector_index(cur, paused.index_definition, count)
        if paused.trigger_state in _TRIGGER_ENABLE:
            cur.execute(f"ALTER TABLE reid_embeddings {_TRIGGER_ENABLE[paused.trigger_state]} {VECTOR_SYNC_TRIGGER}")
    return count
