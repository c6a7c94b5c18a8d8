import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from alerting.models import NotificationDelivery
from dashboard.models import Event
from jobs.choices import BackupStatus, JobStatus, RestoreStatus
from jobs.models import BackupJob, RestoreJob
from jobs.services import backup as svc
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


def snapshot() -> dict:
    """Row count and a digest of every row's text, per backed-up table."""
    out = {}
    with connection.cursor() as cur:
        for t in svc.BACKUP_TABLES:
            cur.execute(f"SELECT count(*), md5(coalesce(string_agg(x::text, chr(10) ORDER BY x::text), '')) FROM {t} x")
            out[t] = cur.fetchone()
    return out


def wipe():
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("TRUNCATE " + ", ".join(svc.BACKUP_TABLES))


def populate():
    cam = factories.CameraFactory(id="front_door", name='Front "door", main')
    factories.CameraZoneFactory(camera=cam, id="porch")
    rule = factories.AlertRuleFactory(name="Night\nperson", object_types=["person"], schedule={"days": [0, 1]})
    event = factories.EventFactory(camera=cam, summary="line1\nline2 \\ back", notes=None, reasoning="")
    link = factories.EventDetectionFactory(event=event)
    det = link.detection
    factories.PoseResultFactory(detection=det)
    factories.ThreatDetectionFactory(detection=det)
    factories.DemographicsResultFactory(detection=det)
    factories.ReidEmbeddingFactory(detection=det)
    factories.ActionResultFactory(detection=det)
    factories.EventFeedbackFactory(event=event)
    factories.EventAuditFactory(event=event)
    alert = factories.AlertFactory(event=event, rule=rule, channels=["email"], metadata={"x": [1, 2.5, None]})
    NotificationDelivery.objects.create(alert=alert, channel_type="email", target="a@example.com")
    factories.ActivityBaselineFactory(camera=cam, avg_count=0.1 + 0.2)
    factories.ClassBaselineFactory(camera=cam, frequency=1e-9)
    factories.EventFactory(camera=cam, risk_score=None, risk_level=None, ended_at=None)
    return cam


def make_backup(django_capture_on_commit_callbacks) -> BackupJob:
    with django_capture_on_commit_callbacks(execute=True):
        b = svc.create_backup(created_by="olivia_operator")
    b.refresh_from_db()
    assert b.status == BackupStatus.COMPLETED, b.error_message
    return b


def restore(django_capture_on_commit_callbacks, path: Path, **kw) -> RestoreJob:
    with django_capture_on_commit_callbacks(execute=True):
        r = svc.create_restore(str(path), created_by="olivia_operator", cli=True, **kw)
    r.refresh_from_db()
    return r


def test_backup_tables_are_in_foreign_key_order_and_closed():
    order = {t: i for i, t in enumerate(svc.BACKUP_TABLES)}
    for child, parent, name in svc.foreign_keys():
        if child in order and parent in order:
            assert order[parent] < order[child], f"{parent} must come before {child} ({name})"
    assert svc.outside_dependents(svc.BACKUP_TABLES) == []
    for required in ("cameras", "camera_zones", "alert_rules", "alerts", "events", "detections", "event_detections",
                     "event_feedback", "activity_baselines", "class_baselines"):  # fmt: skip
        assert required in order


def test_backup_archive_has_manifest_with_counts_and_checksums(django_capture_on_commit_callbacks):
    populate()
    b = make_backup(django_capture_on_commit_callbacks)
    path = svc.backup_file_path(b)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "watchpost-backup" and manifest["format_version"] == 1
        assert manifest["app_version"] and manifest["created_at"]
        assert [t["name"] for t in manifest["tables"]] == svc.BACKUP_TABLES
        for entry in manifest["tables"]:
            data = zf.read(entry["file"])
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        events = next(t for t in manifest["tables"] if t["name"] == "events")
        assert events["rows"] == 2
    assert b.manifest_json == manifest
    assert b.file_size_bytes == path.stat().st_size and b.completed_tables == len(svc.BACKUP_TABLES)
    assert b.job.status == JobStatus.COMPLETED
    assert AuditLog.objects.filter(action="backup_created", resource_id=str(b.pk)).exists()


def test_backup_wipe_restore_round_trip_gives_identical_rows(django_capture_on_commit_callbacks):
    populate()
    before = snapshot()
    b = make_backup(django_capture_on_commit_callbacks)
    wipe()
    assert snapshot() != before
    r = restore(django_capture_on_commit_callbacks, svc.backup_file_path(b))
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert snapshot() == before
    assert r.items_restored["events"] == 2 and r.items_restored["cameras"] == 1
    assert r.completed_tables == len(svc.BACKUP_TABLES) and r.progress_percent == 100
    assert r.job.status == JobStatus.COMPLETED
    # Sequences were reset past the restored ids.
    new = factories.EventFactory(camera_id="front_door")
    assert new.pk > max(Event.objects.exclude(pk=new.pk).values_list("pk", flat=True))
    assert AuditLog.objects.filter(action="restore_finished", resource_id=str(r.pk)).exists()
    assert AuditLog.objects.filter(action="restore_started", resource_id=str(r.pk)).exists()


def test_validate_only_changes_nothing(django_capture_on_commit_callbacks):
    populate()
    b = make_backup(django_capture_on_commit_callbacks)
    factories.EventFactory(camera_id="front_door")
    before = snapshot()
    r = restore(django_capture_on_commit_callbacks, svc.backup_file_path(b), validate_only=True)
    assert r.status == RestoreStatus.COMPLETED and "nothing was changed" in r.current_step
    assert snapshot() == before


# --- Refusals: each leaves every table exactly as it was ------------------------------------------


def rewrite(src: Path, dest: Path, *, edit_manifest=None, edit_table=None, extra=None, fix_checksums=True):
    """Copy a backup, optionally changing a table file (and its checksum) or the manifest."""
    with zipfile.ZipFile(src) as zin:
        manifest = json.loads(zin.read("manifest.json"))
        files = {e["file"]: zin.read(e["file"]) for e in manifest["tables"]}
    if edit_table:
        name, fn = edit_table
        entry = next(e for e in manifest["tables"] if e["name"] == name)
        files[entry["file"]] = fn(files[entry["file"]])
        if fix_checksums:
            entry["sha256"] = hashlib.sha256(files[entry["file"]]).hexdigest()
    if edit_manifest:
        edit_manifest(manifest)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        zout.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            zout.writestr(name, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dest


@pytest.fixture
def good_backup(django_capture_on_commit_callbacks):
    populate()
    return svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))


def _events_csv_replace(old: bytes, new: bytes):
    def fn(data: bytes) -> bytes:
        header, rest = data.split(b"\n", 1)
        assert old in rest
        return header + b"\n" + rest.replace(old, new, 1)

    return fn


def _assert_refused(django_capture_on_commit_callbacks, path, message, **kw):
    before = snapshot()
    r = restore(django_capture_on_commit_callbacks, path, **kw)
    assert r.status == RestoreStatus.FAILED
    assert message in r.error_message, r.error_message
    assert r.job.status == JobStatus.FAILED and message in r.job.error_message
    assert r.job.error_traceback is None  # a refusal, not a crash
    assert snapshot() == before
    assert AuditLog.objects.filter(action="restore_failed", resource_id=str(r.pk), status="failure").exists()
    return r


def test_restore_refuses_member_escaping_the_folder(django_capture_on_commit_callbacks, good_backup, tmp_path):
    bad = rewrite(good_backup, tmp_path / "evil.zip", extra={"../../etc/cron.d/evil": b"* * * * * root sh"})
    _assert_refused(django_capture_on_commit_callbacks, bad, "points outside the backup folder")
    bad = rewrite(good_backup, tmp_path / "abs.zip", extra={"/etc/passwd": b"x"})
    _assert_refused(django_capture_on_commit_callbacks, bad, "points outside the backup folder")


def test_restore_refuses_symlink_member(django_capture_on_commit_callbacks, good_backup, tmp_path):
    bad = tmp_path / "link.zip"
    rewrite(good_backup, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        info = zipfile.ZipInfo("tables/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    _assert_refused(django_capture_on_commit_callbacks, bad, "symbolic link")


def test_restore_refuses_compression_bomb(django_capture_on_commit_callbacks, good_backup, tmp_path):
    bad = tmp_path / "bomb.zip"
    rewrite(good_backup, bad)
    with zipfile.ZipFile(bad, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("tables/bomb.csv", "w") as fh:
        chunk = b"\0" * (1 << 20)
        for _ in range(8):
            fh.write(chunk)
    _assert_refused(django_capture_on_commit_callbacks, bad, "compression bomb")


def test_restore_refuses_archive_expanding_past_the_limit(django_capture_on_commit_callbacks, good_backup, settings):
    settings.RESTORE_MAX_UNCOMPRESSED_BYTES = 2048
    _assert_refused(django_capture_on_commit_callbacks, good_backup, "compression bomb")


def test_restore_refuses_oversized_file(django_capture_on_commit_callbacks, good_backup, settings):
    settings.RESTORE_MAX_UPLOAD_BYTES = 1024
    _assert_refused(django_capture_on_commit_callbacks, good_backup, "the limit is 1.0 KiB")


def test_restore_refuses_bad_checksum(django_capture_on_commit_callbacks, good_backup, tmp_path):
    bad = rewrite(good_backup, tmp_path / "tampered.zip",
                  edit_table=("cameras", _events_csv_replace(b"front_door", b"back_door!")), fix_checksums=False)  # fmt: skip
    _assert_refused(django_capture_on_commit_callbacks, bad, "Checksum mismatch for table cameras")


def test_restore_refuses_unknown_version(django_capture_on_commit_callbacks, good_backup, tmp_path):
    bad = rewrite(good_backup, tmp_path / "v9.zip", edit_manifest=lambda m: m.update(format_version=9))
    _assert_refused(django_capture_on_commit_callbacks, bad, "format version 9")


def test_restore_refuses_row_violating_a_check(django_capture_on_commit_callbacks, tmp_path):
    cam = factories.CameraFactory(id="yard")
    factories.EventFactory(camera=cam, risk_score=42, risk_level="medium")
    src = svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))
    bad = rewrite(src, tmp_path / "check.zip", edit_table=("events", _events_csv_replace(b",42,", b",420,")))
    r = _assert_refused(django_capture_on_commit_callbacks, bad, "ck_events_risk_score")
    assert "row 1 of events" in r.error_message and "Nothing was changed" in r.error_message


def test_restore_refuses_row_breaking_a_foreign_key(django_capture_on_commit_callbacks, tmp_path):
    cam = factories.CameraFactory(id="yard")
    factories.EventFactory(camera=cam)
    src = svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))
    bad = rewrite(src, tmp_path / "fk.zip", edit_table=("events", _events_csv_replace(b",yard\n", b",ghost\n")))
    r = _assert_refused(django_capture_on_commit_callbacks, bad, "foreign key")
    # Checked once for the whole table after its COPY: the message names the table, the constraint and the key.
    assert r.error_message.startswith("Table events: ")
    assert "events_camera_id" in r.error_message and "Nothing was changed" in r.error_message
    assert 'Key (camera_id)=(ghost) is not present in table "cameras"' in r.error_message


def test_restore_refuses_wrong_row_count(django_capture_on_commit_callbacks, good_backup, tmp_path):
    def bump(m):
        next(e for e in m["tables"] if e["name"] == "events")["rows"] += 1

    bad = rewrite(good_backup, tmp_path / "count.zip", edit_manifest=bump)
    _assert_refused(django_capture_on_commit_callbacks, bad, "manifest promises 3 rows")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not a zip", "not a zip archive"),
        (None, "manifest.json is missing"),
    ],
)
def test_restore_refuses_non_backups(django_capture_on_commit_callbacks, tmp_path, content, message):
    path = tmp_path / "x.zip"
    if content is None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("hello.txt", "hi")
    else:
        path.write_bytes(content)
    factories.CameraFactory(id="yard")
    _assert_refused(django_capture_on_commit_callbacks, path, message)


def test_restore_refuses_missing_table_and_strangers(django_capture_on_commit_callbacks, good_backup, tmp_path):
    def drop(m):
        m["tables"] = [e for e in m["tables"] if e["name"] != "alerts"]

    _assert_refused(django_capture_on_commit_callbacks, rewrite(good_backup, tmp_path / "a.zip", edit_manifest=drop),
                    "lacks table(s): alerts")  # fmt: skip
    _assert_refused(django_capture_on_commit_callbacks, rewrite(good_backup, tmp_path / "b.zip", extra={"notes.txt": b"x"}),
                    "unexpected files: notes.txt")  # fmt: skip


def test_restore_of_refused_upload_is_a_failed_job(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = svc.create_restore(None, created_by="olivia_operator", refusal="The file is 2.0 GiB; the limit is 1.0 GiB.")
    r.refresh_from_db()
    assert r.status == RestoreStatus.FAILED and "2.0 GiB" in r.error_message
    assert r.job.status == JobStatus.FAILED


def test_uploaded_archive_is_removed_after_restore(django_capture_on_commit_callbacks, good_backup, settings):
    upload_dir = Path(settings.UPLOAD_DIR)
    upload_dir.mkdir(parents=True)
    up = upload_dir / "u.zip"
    up.write_bytes(good_backup.read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        r = svc.create_restore("u.zip", created_by="olivia_operator")
    r.refresh_from_db()
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert not up.exists()


def test_web_restore_cannot_read_outside_upload_dir(django_capture_on_commit_callbacks, good_backup):
    with django_capture_on_commit_callbacks(execute=True):
        r = svc.create_restore(str(good_backup), created_by="olivia_operator")
    r.refresh_from_db()
    assert r.status == RestoreStatus.FAILED and "not inside the upload folder" in r.error_message
    assert good_backup.exists()


def test_delete_backup_removes_file_and_audits(django_capture_on_commit_callbacks):
    b = make_backup(django_capture_on_commit_callbacks)
    path, pk = svc.backup_file_path(b), b.pk
    svc.delete_backup(b)
    assert not path.exists() and not BackupJob.objects.filter(pk=pk).exists()
    assert AuditLog.objects.filter(action="backup_deleted", resource_id=str(pk)).exists()


def test_active_restore_detection():
    assert not svc.active_restore_exists()
    factories.RestoreJobFactory(status=RestoreStatus.RESTORING)
    assert svc.active_restore_exists()


def test_manifest_created_at_is_recorded(django_capture_on_commit_callbacks, good_backup):
    r = restore(django_capture_on_commit_callbacks, good_backup, validate_only=True)
    assert r.backup_created_at is not None and r.backup_created_at <= timezone.now()
    assert r.backup_id


# --- What the load drops to go fast comes back exactly as it was ----------------------------------------

CATALOG_TABLES = [*svc.BACKUP_TABLES, "reid_vectors"]


def catalog() -> dict:
    """Every constraint, index and trigger of the restored tables (and the re-id vector table):
    names, definitions, comments, enabled state; internal (FK) triggers by what they do."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated, "
            "obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) "
            "ORDER BY 1, 2",
            [CATALOG_TABLES],
        )
        constraints = cur.fetchall()
        cur.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid, "
            "obj_description(indexrelid, 'pg_class') FROM pg_index WHERE indrelid::regclass::text = ANY(%s) ORDER BY 1",
            [CATALOG_TABLES],
        )
        indexes = cur.fetchall()
        cur.execute(
            "SELECT tgrelid::regclass::text, "
            "CASE WHEN tgisinternal THEN (SELECT conname FROM pg_constraint WHERE oid = tgconstraint) ELSE tgname END, "
            "tgfoid::regproc::text, tgtype, tgenabled, tgdeferrable, tginitdeferred FROM pg_trigger "
            "WHERE tgrelid::regclass::text = ANY(%s) ORDER BY 1, 2, 3, 4",
            [CATALOG_TABLES],
        )
        triggers = cur.fetchall()
    return {"constraints": constraints, "indexes": indexes, "triggers": triggers}


def _vector_rows() -> dict[int, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT detection_id, camera_id FROM reid_vectors")
        return dict(cur.fetchall())


def test_restore_puts_back_every_constraint_index_and_trigger(django_capture_on_commit_callbacks, tmp_path):
    populate()
    with connection.cursor() as cur:  # comments are part of what must come back
        cur.execute("COMMENT ON INDEX idx_alert_rules_enabled IS 'rules the engine''s loop reads'")
        cur.execute(
            "COMMENT ON CONSTRAINT events_camera_id_8e2ac8c0_fk_cameras_id ON events IS 'every event has a camera'"
        )
    before = catalog()
    assert any("hnsw" in definition for _, definition, _, _ in before["indexes"]) or not _has_vectors()
    src = svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))

    r = restore(django_capture_on_commit_callbacks, src)
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert catalog() == before
    r = restore(django_capture_on_commit_callbacks, src, validate_only=True)
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert catalog() == before
    bad = rewrite(src, tmp_path / "fk.zip", edit_table=("events", _events_csv_replace(b",front_door\n", b",ghost\n")))
    _assert_refused(django_capture_on_commit_callbacks, bad, "is not present in table")
    assert catalog() == before

    # …and they still work: a dangling camera id is refused, row by row again.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError, match="events_camera_id"), transaction.atomic():
        factories.EventFactory.build(camera_id="ghost").save()
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _has_vectors() -> bool:
    from dashboard.services import reid

    return reid.vector_index_available()


@pytest.fixture
def require_vector(db):
    if not _has_vectors():
        pytest.skip("the pgvector extension is not available on this PostgreSQL server")


def test_restore_rebuilds_the_reid_vectors_and_their_sync(django_capture_on_commit_callbacks, require_vector):
    from dashboard.services import reid

    cam = populate()
    factories.ReidEmbeddingFactory(
        detection=factories.DetectionFactory(camera=cam), embedding=[1.0] * 10
    )  # not indexed
    expected = _vector_rows()
    assert len(expected) == 1
    src = svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))
    wipe()
    assert _vector_rows() == {}
    r = restore(django_capture_on_commit_callbacks, src)
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert _vector_rows() == expected
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM reid_vectors WHERE embedding IS NULL")
        assert cur.fetchone()[0] == 0
    # The sync trigger is back on: a new embedding reaches the index by itself.
    det = factories.DetectionFactory(camera=cam)
    factories.ReidEmbeddingFactory(detection=det)
    assert det.pk in _vector_rows()
    assert reid.find_similar(det.pk, method="vector") == []  # all on one camera, but the index answers


def test_restore_keeps_a_disabled_sync_trigger_disabled(django_capture_on_commit_callbacks, require_vector):
    cam = populate()
    src = svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending deferred FK checks
        cur.execute("ALTER TABLE reid_embeddings DISABLE TRIGGER trg_reid_embeddings_vector_sync")
    before = catalog()
    r = restore(django_capture_on_commit_callbacks, src)
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert catalog() == before
    assert len(_vector_rows()) == 1  # the restored embeddings are indexed all the same
    factories.ReidEmbeddingFactory(detection=factories.DetectionFactory(camera=cam))
    assert len(_vector_rows()) == 1


def test_parallel_vector_index_build_inside_the_restore(
    django_capture_on_commit_callbacks, require_vector, monkeypatch
):
    from dashboard.services import reid

    # Big restores build the HNSW graph with parallel workers, inside a savepoint of the restore's transaction.
    monkeypatch.setattr(reid, "HNSW_PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(reid, "HNSW_BUILD_MEMORY", "64MB")
    populate()
    before = catalog()
    expected = _vector_rows()
    src = svc.backup_file_path(make_backup(django_capture_on_commit_callbacks))
    with connection.cursor() as cur:
        cur.execute("SHOW maintenance_work_mem")
        memory = cur.fetchone()[0]
    r = restore(django_capture_on_commit_callbacks, src)
    assert r.status == RestoreStatus.COMPLETED, r.error_message
    assert catalog() == before and _vector_rows() == expected
    with connection.cursor() as cur:
        cur.execute("SHOW maintenance_work_mem")
        assert cur.fetchone()[0] == memory  # the build's settings did not outlive it
