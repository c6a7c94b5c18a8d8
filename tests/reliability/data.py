"""Bulk data for the crash tests, written with set-based SQL (fast), and table checksums."""

from __future__ import annotations

from django.db import connection

CAMERA = "rel_cam"


def seed_events(n: int, *, text_len: int = 1024, camera: str = CAMERA, detections: bool = False) -> None:
    """`n` events with `text_len`-character summaries and reasonings (wide rows make exports and backups slow
    enough to kill mid-way without many rows); optionally one linked detection per event."""
    repeats = max(1, text_len // 32)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO cameras (id, name, folder_path, status, created_at) VALUES (%s, %s, '', 'online', now()) "
            "ON CONFLICT (id) DO NOTHING",
            [camera, camera.replace("_", " ").title()],
        )
        cur.execute(
            "INSERT INTO events (camera_id, started_at, ended_at, risk_score, risk_level, summary, reasoning, "
            "object_types, reviewed) "
            "SELECT %s, now() - g * interval '1 second', now() - g * interval '1 second' + interval '10 seconds', "
            "g %% 101, NULL, repeat(md5(g::text), %s), repeat(md5((g + 1)::text), %s), 'person', g %% 2 = 0 "
            "FROM generate_series(1, %s) g",
            [camera, repeats, repeats, n],
        )
        if detections:
            cur.execute(
                "INSERT INTO detections (camera_id, detected_at, object_type, confidence, bbox_x, bbox_y, "
                "bbox_width, bbox_height, image_width, image_height) "
                "SELECT camera_id, started_at, 'person', 0.9, 10, 10, 100, 200, 1920, 1080 FROM events "
                "WHERE camera_id = %s",
                [camera],
            )
            cur.execute(
                "INSERT INTO event_detections (event_id, detection_id) "
                "SELECT e.id, d.id FROM events e JOIN detections d "
                "ON d.camera_id = e.camera_id AND d.detected_at = e.started_at WHERE e.camera_id = %s",
                [camera],
            )


def table_checksums(tables: list[str]) -> dict[str, tuple[int, str | None]]:
    """(row count, md5 over every row's text in primary-key order) per table: equal means identical contents."""
    out = {}
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                [table],
            )
            keys = [r[0] for r in cur.fetchall()]
            order = ", ".join(f't."{k}"' for k in keys) if keys else "t::text"
            cur.execute(f"SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY {order})) FROM \"{table}\" t")
            out[table] = tuple(cur.fetchone())
    return out
