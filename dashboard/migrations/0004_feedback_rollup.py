# Feedback counted per 15-minute bucket, camera and type, kept by triggers (beyond the seed).
#
# The feedback statistics page (dashboard.services.stats.feedback_stats) needs each
# feedback row's camera, which lives on its event: counting over the raw rows joins
# every feedback row of the window to events (200-400 ms at 1M events). This table
# holds those counts already joined, so the page reads a few rows per bucket instead.
# Not a Django model (like monitoring_gpu_rollup): nothing edits or browses it; the
# triggers below keep it and dashboard.services.stats reads it with SQL.
#
# Invariant: dashboard_feedback_rollup equals
#     SELECT <bucket of f.created_at>, e.camera_id, f.feedback_type, count(*)
#     FROM event_feedback f JOIN events e ON e.id = f.event_id GROUP BY 1, 2, 3
# with empty buckets left out. Every change to either side of that join is caught:
# - event_feedback INSERT / UPDATE / DELETE: statement-level triggers with transition
#   tables (one set-based pass per statement, so a COPY of a restore is one join);
# - event_feedback TRUNCATE (restores, Django's flush): the rollup is emptied;
# - events UPDATE OF camera_id: the event's feedback moves to the new camera (row
#   level with a WHEN, so the frequent updates of other columns cost nothing);
# - events DELETE: feedback still present for a deleted event leaves the counts (the
#   foreign key is deferred, so a transaction may delete the event before its
#   feedback; Django deletes the feedback first, which the feedback trigger counts).
# Not caught: feedback inserted before its event within one transaction (event ids
# are serial, so only a hand-written load could do it), and loads with triggers off
# (session_replication_role = replica). dashboard_feedback_rollup_rebuild() (also
# dashboard.services.stats.rebuild_feedback_rollup) recomputes the table for those.
#
# Buckets are 15 minutes (date_bin from 2000-01-01 UTC), not hours: the weekly chart
# truncates buckets to weeks in settings.TIME_ZONE, and zones such as Asia/Kolkata
# (+05:30) or Asia/Kathmandu (+05:45) start their weeks half-way through a UTC hour.
# Every zone in use has an offset that is a multiple of 15 minutes, so each bucket lies
# inside one local week whatever TIME_ZONE says.
#
# Concurrency: counts change only by "n = n + EXCLUDED.n" upserts, in key order, so
# concurrent writers add up and do not deadlock on each other. The feedback triggers
# take FOR SHARE on the events they count, which conflicts with a concurrent camera
# change of those events: the later of the two waits and then sees the other's
# committed state (READ COMMITTED), so a count never lands on a camera the event left.

from django.db import migrations

BUCKET = "date_bin(INTERVAL '15 minutes', {col}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"

CREATE_SQL = """
CREATE TABLE dashboard_feedback_rollup (
    bucket timestamptz NOT NULL,
    camera_id varchar(100) NOT NULL,
    feedback_type varchar NOT NULL,
    n integer NOT NULL,
    -- Also the index of the statistics query: a range of buckets from the window start.
    CONSTRAINT uq_feedback_rollup_bucket_camera_type PRIMARY KEY (bucket, camera_id, feedback_type)
);
"""

# Adds the signed deltas of `changed` (event_id, created_at, feedback_type, delta) to
# their buckets, under the camera each event has now.
APPLY_DELTAS = f"""
    camera AS MATERIALIZED (
        SELECT e.id, e.camera_id FROM events e
        WHERE e.id IN (SELECT event_id FROM changed)
        ORDER BY e.id FOR SHARE OF e
    )
    INSERT INTO dashboard_feedback_rollup AS r (bucket, camera_id, feedback_type, n)
    SELECT {BUCKET.format(col="c.created_at")}, camera.camera_id, c.feedback_type, sum(c.delta)
    FROM changed c JOIN camera ON camera.id = c.event_id
    GROUP BY 1, 2, 3 HAVING sum(c.delta) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, camera_id, feedback_type) DO UPDATE SET n = r.n + EXCLUDED.n;
"""

TRIGGERS_SQL = f"""
CREATE OR REPLACE FUNCTION dashboard_feedback_rollup_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    -- DELETE, not TRUNCATE: a "TRUNCATE ..., event_feedback, ..." (Django's flush, a
    -- restore) still has its tables open when this runs, and a TRUNCATE here could
    -- conflict with them.
    DELETE FROM dashboard_feedback_rollup;
    RETURN NULL;
  END IF;
  -- An UPDATE that changes neither the bucket, the type nor the event (notes, expected
  -- severity) nets to zero per key and writes nothing.
  IF TG_OP = 'INSERT' THEN
    WITH changed AS (SELECT event_id, created_at, feedback_type, 1 AS delta FROM new_rows),
    {APPLY_DELTAS}
  ELSIF TG_OP = 'DELETE' THEN
    WITH changed AS (SELECT event_id, created_at, feedback_type, -1 AS delta FROM old_rows),
    {APPLY_DELTAS}
  ELSE
    WITH changed AS (
        SELECT event_id, created_at, feedback_type, 1 AS delta FROM new_rows
        UNION ALL
        SELECT event_id, created_at, feedback_type, -1 AS delta FROM old_rows
    ),
    {APPLY_DELTAS}
  END IF;
  IF TG_OP <> 'INSERT' THEN
    DELETE FROM dashboard_feedback_rollup
    WHERE n = 0 AND bucket IN (SELECT {BUCKET.format(col="created_at")} FROM old_rows);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION dashboard_feedback_rollup_camera_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- One feedback row at most per event (uq_event_feedback_event_id).
  INSERT INTO dashboard_feedback_rollup AS r (bucket, camera_id, feedback_type, n)
  SELECT {BUCKET.format(col="f.created_at")}, m.camera_id, f.feedback_type, m.delta
  FROM event_feedback f CROSS JOIN (VALUES (OLD.camera_id, -1), (NEW.camera_id, 1)) AS m(camera_id, delta)
  WHERE f.event_id = OLD.id
  ORDER BY 1, 2, 3
  ON CONFLICT (bucket, camera_id, feedback_type) DO UPDATE SET n = r.n + EXCLUDED.n;
  IF FOUND THEN
    DELETE FROM dashboard_feedback_rollup r USING event_feedback f
    WHERE f.event_id = OLD.id AND r.n = 0 AND r.bucket = {BUCKET.format(col="f.created_at")}
      AND r.camera_id = OLD.camera_id AND r.feedback_type = f.feedback_type;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION dashboard_feedback_rollup_event_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dashboard_feedback_rollup AS r (bucket, camera_id, feedback_type, n)
  SELECT {BUCKET.format(col="f.created_at")}, o.camera_id, f.feedback_type, -count(*)
  FROM old_rows o JOIN event_feedback f ON f.event_id = o.id
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (bucket, camera_id, feedback_type) DO UPDATE SET n = r.n + EXCLUDED.n;
  IF FOUND THEN
    DELETE FROM dashboard_feedback_rollup
    WHERE n = 0 AND bucket IN (
        SELECT {BUCKET.format(col="f.created_at")} FROM old_rows o JOIN event_feedback f ON f.event_id = o.id
    );
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION dashboard_feedback_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  -- Writers of either table wait meanwhile (a camera move that commits between this
  -- snapshot and the DELETE would otherwise be lost); self-conflicting, so two
  -- rebuilds take turns.
  LOCK TABLE event_feedback, events IN SHARE ROW EXCLUSIVE MODE;
  DELETE FROM dashboard_feedback_rollup;
  INSERT INTO dashboard_feedback_rollup (bucket, camera_id, feedback_type, n)
  SELECT {BUCKET.format(col="f.created_at")}, e.camera_id, f.feedback_type, count(*)
  FROM event_feedback f JOIN events e ON e.id = f.event_id
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
END $$;

-- PostgreSQL allows transition tables only on single-event triggers: one per event.
CREATE TRIGGER event_feedback_rollup_insert AFTER INSERT ON event_feedback
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_feedback_rollup_sync();
CREATE TRIGGER event_feedback_rollup_update AFTER UPDATE ON event_feedback
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dashboard_feedback_rollup_sync();
CREATE TRIGGER event_feedback_rollup_delete AFTER DELETE ON event_feedback
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_feedback_rollup_sync();
CREATE TRIGGER event_feedback_rollup_truncate AFTER TRUNCATE ON event_feedback
  FOR EACH STATEMENT EXECUTE FUNCTION dashboard_feedback_rollup_sync();
-- Transition tables cannot go with a column list: a row trigger, filtered by its WHEN
-- before any function call, so bulk updates of other columns (reviewed) pay nothing.
CREATE TRIGGER events_feedback_rollup_camera AFTER UPDATE OF camera_id ON events
  FOR EACH ROW WHEN (OLD.camera_id IS DISTINCT FROM NEW.camera_id)
  EXECUTE FUNCTION dashboard_feedback_rollup_camera_move();
CREATE TRIGGER events_feedback_rollup_delete AFTER DELETE ON events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_feedback_rollup_event_delete();

-- Backfill. The CREATE TRIGGERs above hold locks on both tables until this migration
-- commits, so no write slips between the counting and the triggers.
SELECT dashboard_feedback_rollup_rebuild();
"""

DROP_TRIGGERS_SQL = """
DROP TRIGGER IF EXISTS event_feedback_rollup_insert ON event_feedback;
DROP TRIGGER IF EXISTS event_feedback_rollup_update ON event_feedback;
DROP TRIGGER IF EXISTS event_feedback_rollup_delete ON event_feedback;
DROP TRIGGER IF EXISTS event_feedback_rollup_truncate ON event_feedback;
DROP TRIGGER IF EXISTS events_feedback_rollup_camera ON events;
DROP TRIGGER IF EXISTS events_feedback_rollup_delete ON events;
DROP FUNCTION IF EXISTS dashboard_feedback_rollup_sync();
DROP FUNCTION IF EXISTS dashboard_feedback_rollup_camera_move();
DROP FUNCTION IF EXISTS dashboard_feedback_rollup_event_delete();
DROP FUNCTION IF EXISTS dashboard_feedback_rollup_rebuild();
"""

DROP_SQL = "DROP TABLE IF EXISTS dashboard_feedback_rollup;"


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_reid_vectors"),
    ]

    operations = [
        migrations.RunSQL(CREATE_SQL, DROP_SQL),
        migrations.RunSQL(TRIGGERS_SQL, DROP_TRIGGERS_SQL),
    ]
