"""pgvector side table for cross-camera re-identification ("find similar").

`reid_embeddings.embedding` (JSONB, the seed's column) stays the source of truth.
Where the `vector` extension is available (the embedded server ships it), this
adds `reid_vectors`: one `vector(512)` per valid embedding with an HNSW index
(cosine distance), kept in sync by triggers on `reid_embeddings`, so rows written
by any path (ORM, COPY, psql, restore) are indexed. Where the extension is
missing, nothing is created and `dashboard.services.reid` falls back to an exact
scan over the JSONB arrays.

There is deliberately no foreign key from `reid_vectors` to `detections`: a
plain `TRUNCATE detections, reid_embeddings, ...` (Django's test flush, a restore
that replaces tables) would be refused because of a table the caller has never
heard of. Consistency comes from the triggers instead: row insert/update/delete
on `reid_embeddings`, TRUNCATE of `reid_embeddings` (which TRUNCATE of
`detections` requires anyway) and a detection moving to another camera. The
`reid_reindex` tracked job (dashboard/tasks.py) rebuilds the table from JSONB if
anything ever bypassed the triggers (e.g. session_replication_role = replica).
"""

from django.db import migrations

# Embeddings whose array is not exactly 512 numbers inside float4 range are left
# out of the index (the JSONB row is still accepted; the service reports it).
VALID_EMBEDDING = """
    jsonb_typeof({col}) = 'array'
    AND jsonb_array_length({col}) = 512
    AND NOT jsonb_path_exists({col}, '$[*] ? (@.type() != "number" || @ > 3.0e38 || @ < -3.0e38)')
"""

FORWARD_SQL = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    """
    CREATE TABLE IF NOT EXISTS reid_vectors (
        detection_id integer PRIMARY KEY,
        camera_id varchar(100) NOT NULL,
        embedding vector(512) NOT NULL
    )
    """,
    f"""
    INSERT INTO reid_vectors (detection_id, camera_id, embedding)
    SELECT e.detection_id, d.camera_id, e.embedding::text::vector(512)
    FROM reid_embeddings e JOIN detections d ON d.id = e.detection_id
    WHERE {VALID_EMBEDDING.format(col="e.embedding")}
    ON CONFLICT (detection_id) DO NOTHING
    """,
    # "find similar" orders by cosine distance: ORDER BY embedding <=> $1 LIMIT k.
    """
    CREATE INDEX IF NOT EXISTS idx_reid_vectors_embedding_hnsw
    ON reid_vectors USING hnsw (embedding vector_cosine_ops)
    """,
    f"""
    CREATE OR REPLACE FUNCTION reid_vectors_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM reid_vectors WHERE detection_id = OLD.detection_id;
            RETURN OLD;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.detection_id IS DISTINCT FROM OLD.detection_id THEN
            DELETE FROM reid_vectors WHERE detection_id = OLD.detection_id;
        END IF;
        IF {VALID_EMBEDDING.format(col="NEW.embedding")} THEN
            INSERT INTO reid_vectors (detection_id, camera_id, embedding)
            SELECT NEW.detection_id, d.camera_id, NEW.embedding::text::vector(512)
            FROM detections d WHERE d.id = NEW.detection_id
            ON CONFLICT (detection_id) DO UPDATE
                SET camera_id = EXCLUDED.camera_id, embedding = EXCLUDED.embedding;
        ELSE
            DELETE FROM reid_vectors WHERE detection_id = NEW.detection_id;
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE OR REPLACE TRIGGER trg_reid_embeddings_vector_sync
    AFTER INSERT OR UPDATE OR DELETE ON reid_embeddings
    FOR EACH ROW EXECUTE FUNCTION reid_vectors_sync()
    """,
    """
    CREATE OR REPLACE FUNCTION reid_vectors_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE reid_vectors;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE OR REPLACE TRIGGER trg_reid_embeddings_vector_truncate
    AFTER TRUNCATE ON reid_embeddings
    FOR EACH STATEMENT EXECUTE FUNCTION reid_vectors_truncate()
    """,
    """
    CREATE OR REPLACE FUNCTION reid_vectors_camera_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE reid_vectors SET camera_id = NEW.camera_id WHERE detection_id = NEW.id;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE OR REPLACE TRIGGER trg_detections_reid_camera_sync
    AFTER UPDATE OF camera_id ON detections
    FOR EACH ROW WHEN (OLD.camera_id IS DISTINCT FROM NEW.camera_id)
    EXECUTE FUNCTION reid_vectors_camera_sync()
    """,
]

REVERSE_SQL = [
    "DROP TRIGGER IF EXISTS trg_detections_reid_camera_sync ON detections",
    "DROP TRIGGER IF EXISTS trg_reid_embeddings_vector_truncate ON reid_embeddings",
    "DROP TRIGGER IF EXISTS trg_reid_embeddings_vector_sync ON reid_embeddings",
    "DROP FUNCTION IF EXISTS reid_vectors_camera_sync()",
    "DROP FUNCTION IF EXISTS reid_vectors_truncate()",
    "DROP FUNCTION IF EXISTS reid_vectors_sync()",
    "DROP TABLE IF EXISTS reid_vectors",
    # The extension itself stays: other objects may use it and dropping it needs more rights.
]


def _vector_available(schema_editor) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cur.fetchone() is None:
            return False
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        if cur.fetchone() is not None:
            return True
        # Available but not installed: creating it may need rights this role lacks
        # (external servers); then behave as if it were missing.
        cur.execute("SAVEPOINT reid_vector_ext")
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception:
            cur.execute("ROLLBACK TO SAVEPOINT reid_vector_ext")
            return False
        cur.execute("RELEASE SAVEPOINT reid_vector_ext")
        return True


def forward(apps, schema_editor):
    if not _vector_available(schema_editor):
        return
    with schema_editor.connection.cursor() as cur:
        for sql in FORWARD_SQL:
            cur.execute(sql)


def reverse(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        for sql in REVERSE_SQL:
            cur.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0002_roles")]
    operations = [migrations.RunPython(forward, reverse)]
