"""Backup and restore of the operational tables.

One declared list, BACKUP_TABLES, in foreign-key order (parents first), drives
both directions. A backup is a zip:

    manifest.json            format, format_version, created_at, app_version,
                             per table: file, rows, bytes, sha256, columns
    tables/<table>.csv       PostgreSQL COPY … WITH (FORMAT csv, HEADER true)

Backup reads every table inside one REPEATABLE READ transaction, so the archive
is a consistent snapshot even while cameras keep writing events.

Restore runs in two phases:

1. validating — nothing in the database is touched: archive size, member names
   (no absolute paths, `..`, backslashes, symlinks, encryption, duplicates or
   strangers), compression bombs (total expanded size and per-member ratio),
   manifest format and version, every table present with known columns, each
   file's SHA-256 recomputed from its bytes.
2. restoring — one transaction: empty the tables (TRUNCATE, children first by
   construction), COPY each file in FK order, compare row counts and re-check
   hashes of the bytes actually loaded, then reset sequences. Any error rolls the
   whole transaction back, so a failed restore leaves every table exactly as it
   was. `validate_only` runs the same transaction and always rolls it back.

   Like pg_restore, the load postpones per-row work that a set-based pass after it
   does far cheaper (measured in tests/benchmarks/backups.py): foreign keys
   between restored tables and secondary (non-unique) indexes are dropped before
   the COPYs and put back, with the catalog's own definitions and names, as soon
   as the tables they need are loaded — a foreign key is then validated by one
   anti-join instead of a lookup per row, and a violation names the key
   ("Key (camera_id)=(ghost) is not present in table cameras"). The re-id vector
   table is filled and its HNSW index built once at the end instead of by a
   trigger per row (dashboard.services.reid.pause_vector_sync). CHECK, NOT NULL,
   primary-key and unique constraints stay in place and still stop a bad row on
   its own line. All of it is DDL inside the same transaction: a failure, a
   validate-only run or a killed worker roll it back with the data. Only the
   tables' owner's rights are needed (no superuser, no session_replication_role).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import psycopg
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from dashboard.files import ensure_under
from jobs.choices import BackupStatus, RestoreStatus
from jobs.services.live import LiveReporter
from jobs.services.tracked import JobCancelled, JobFailed

logger = logging.getLogger(__name__)

BACKUP_JOB_TYPE = "backup"
RESTORE_JOB_TYPE = "restore"
FORMAT_NAME = "watchpost-backup"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = {1}
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 1 << 20
# Members below this size may compress as well as they like (a few KB of zeros is no bomb).
RATIO_CHECK_MIN_BYTES = 1 << 20
RESTORE_LOCK_KEY = 0x57A7C4  # pg_advisory_xact_lock key: one restore at a time, across hosts

# Foreign-key order: every table comes after the tables it references. Restore
# empties them all in one TRUNCATE and loads them in this order. A table that
# references one of these must be listed too (tests/jobs/test_backup.py checks
# the catalog), or restore refuses to run rather than silently emptying it.
BACKUP_TABLES: list[str] = [
    "cameras",
    "camera_zones",
    "alert_rules",
    "events",
    "detections",
    "event_detections",
    "pose_results",
    "threat_detections",
    "demographics_results",
    "reid_embeddings",
    "action_results",
    "event_feedback",
    "event_audits",
    "alerts",
    "alert_deliveries",
    "activity_baselines",
    "class_baselines",
]


class RestoreRefused(JobFailed):
    """The archive cannot be restored; the message says why, for people."""


def app_version() -> str:
    try:
        from importlib.metadata import version

        return version("watchpost")
    except Exception:
        return "unknown"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def existing_tables() -> list[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s)",
                    [BACKUP_TABLES])  # fmt: skip
        present = {r[0] for r in cur.fetchall()}
    return [t for t in BACKUP_TABLES if t in present]


def table_columns(table: str) -> list[str]:
    """Stored, non-generated columns in table order (generated ones are recomputed on load)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [table],
        )
        return [r[0] for r in cur.fetchall()]


def foreign_keys() -> list[tuple[str, str, str]]:
    """(child table, parent table, constraint) for every FK in the current schema."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, c.conname FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE c.contype = 'f' AND n.nspname = current_schema()"
        )
        return [(a.strip('"'), b.strip('"'), name) for a, b, name in cur.fetchall()]


def outside_dependents(tables: list[str]) -> list[tuple[str, str, str]]:
    listed = set(tables)
    return [(child, parent, name) for child, parent, name in foreign_keys() if parent in listed and child not in listed]


# --- Backup ----------------------------------------------------------------------------------


class _HashingWriter(io.RawIOBase):
    def __init__(self, target):
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self):
        return True

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def write_backup(dest: Path, reporter: LiveReporter | None = None, ctx=None, backup_id=None) -> dict:
    """Write the archive to `dest` (temporary name, then rename). Returns the manifest."""
    tables = existing_tables()
    missing = [t for t in BACKUP_TABLES if t not in tables]
    if missing:
        raise RuntimeError(f"Tables missing from the database (migrations not applied?): {', '.join(missing)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "app_version": app_version(),
        "backup_id": str(backup_id) if backup_id else None,
        "tables": [],
    }
    fresh = not connection.in_atomic_block
    try:
        with open(tmp, "wb") as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            with transaction.atomic():
                if fresh:
                    # One snapshot for every table: rows added meanwhile cannot dangle across files.
                    with connection.cursor() as cur:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                for i, table in enumerate(tables):
                    columns = table_columns(table)
                    member = f"tables/{table}.csv"
                    rows = -1  # the first message is the header line
                    cols = ", ".join(_q(c) for c in columns)
                    with zf.open(member, "w", force_zip64=True) as zmember:
                        hw = _HashingWriter(zmember)
                        out = io.BufferedWriter(hw, buffer_size=1 << 20)
                        with (
                            connection.connection.cursor() as cur,
                            cur.copy(
                                f"COPY (SELECT {cols} FROM {_q(table)}) TO STDOUT WITH (FORMAT csv, HEADER true)"
                            ) as copy,
                        ):
                            for data in copy:
                                out.write(data)
                                rows += 1
                                # A heartbeat now and then, so a long table is not taken for a dead worker.
                                if reporter is not None and not rows % 50_000 and reporter.due():
                                    reporter.update(None, f"Backing up {table} ({rows:,} rows)")
                        out.flush()
                    manifest["tables"].append(
                        {
                            "name": table,
                            "file": member,
                            "rows": max(rows, 0),
                            "bytes": hw.size,
                            "sha256": hw.sha.hexdigest(),
                            "columns": columns,
                        }  # fmt: skip
                    )
                    if reporter is not None:
                        reporter.update(int((i + 1) * 95 / len(tables)), f"Backed up {table}", force=True,
                                        completed_tables=i + 1)  # fmt: skip
                        if reporter.cancel_requested():
                            raise JobCancelled("Cancelled by an operator.")
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2))
        os.replace(tmp, dest)
        if ctx is not None:
            # Logged after the snapshot: its transaction is read-only and writes nothing, not even logs.
            ctx.log(", ".join(f"{t['name']}: {t['rows']:,}" for t in manifest["tables"]), rows_per_table=True)
    finally:
        if tmp.exists():
            tmp.unlink()
    return manifest


def backup_file_name() -> str:
    return f"watchpost-backup-{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_urlsafe(12)}.zip"


def run_backup(ctx, backup_id, destination: str | None = None) -> dict:
    """Tracked-job body for BackupJob `backup_id`; `destination` only from the command line."""
    from jobs.models import BackupJob
    from monitoring.services.audit import record

    backup = BackupJob.objects.get(pk=backup_id)
    if backup.status == BackupStatus.COMPLETED:
        return {"file": backup.file_path, "already": True}
    BackupJob.objects.filter(pk=backup.pk).update(
        status=BackupStatus.RUNNING, started_at=timezone.now(), completed_tables=0, progress_percent=0,
        total_tables=len(BACKUP_TABLES), current_step="Starting", error_message=None, job_id=ctx.job_id,
    )  # fmt: skip
    ctx.progress(1, step="Reading tables")
    if destination:
        dest = Path(destination)
        stored = str(dest.resolve())
    else:
        name = backup_file_name()
        dest = Path(settings.BACKUP_DIR) / name
        stored = name
    try:
        with LiveReporter(ctx, "backup_jobs", backup.pk) as reporter:
            manifest = write_backup(dest, reporter, ctx, backup_id=backup.pk)
    except Exception as exc:
        message = "Cancelled by an operator." if isinstance(exc, JobCancelled) else f"The backup failed: {exc}"
        BackupJob.objects.filter(pk=backup.pk).update(
            status=BackupStatus.FAILED, completed_at=timezone.now(), error_message=message, current_step="Failed"
        )
        record("backup_created", "backup", backup.pk, actor=backup.created_by or "system",
               details={"error": message}, status="failure")  # fmt: skip
        raise
    size = dest.stat().st_size
    BackupJob.objects.filter(pk=backup.pk).update(
        status=BackupStatus.COMPLETED, completed_at=timezone.now(), file_path=stored, file_size_bytes=size,
        manifest_json=manifest, progress_percent=100, completed_tables=len(manifest["tables"]), current_step="Done",
    )  # fmt: skip
    record("backup_created", "backup", backup.pk, actor=backup.created_by or "system",
           details={"file": stored, "bytes": size, "tables": {t["name"]: t["rows"] for t in manifest["tables"]}})  # fmt: skip
    return {"file": stored, "bytes": size, "rows": {t["name"]: t["rows"] for t in manifest["tables"]}}


def create_backup(*, created_by: str | None = None, destination: str | None = None, dispatch: bool = True):
    from jobs.models import BackupJob
    from jobs.services.tracked import enqueue

    with transaction.atomic():
        backup = BackupJob.objects.create(created_by=created_by, total_tables=len(BACKUP_TABLES), current_step="Queued")
        kwargs = {"backup_id": str(backup.pk)}
        if destination:
            kwargs["destination"] = destination
        job = enqueue(BACKUP_JOB_TYPE, kwargs=kwargs, priority=1, max_attempts=1 if destination else 2,
                      created_by=created_by, dispatch=dispatch)  # fmt: skip
        backup.job = job
        backup.save(update_fields=["job"])
    return backup


def backup_abandoned(kwargs: dict, message: str, retrying: bool) -> None:
    """on_failure hook: the attempt died (or was cancelled) before the handler could say so."""
    from jobs.models import BackupJob

    note = " Another attempt follows." if retrying else ""
    BackupJob.objects.filter(
        pk=kwargs.get("backup_id"), status__in=[BackupStatus.PENDING, BackupStatus.RUNNING]
    ).update(
        status=BackupStatus.FAILED, completed_at=timezone.now(), current_step="Failed", error_message=message + note
    )


def backup_file_path(backup) -> Path:
    if not backup.file_path:
        raise FileNotFoundError("This backup has no file.")
    path = ensure_under(settings.BACKUP_DIR, backup.file_path)
    if not path.is_file():
        raise FileNotFoundError("The backup file is gone.")
    return path


def delete_backup(backup, *, request=None) -> None:
    from monitoring.services.audit import record

    removed = False
    if backup.file_path:
        try:
            path = ensure_under(settings.BACKUP_DIR, backup.file_path)
            path.unlink()
            removed = True
        except (SuspiciousFileOperation, FileNotFoundError):
            pass
    pk = backup.pk
    backup.delete()
    record("backup_deleted", "backup", pk, request=request, details={"file": backup.file_path, "file_removed": removed})


# --- Restore: validation -------------------------------------------------------------------------

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Plan:
    manifest: dict
    tables: list[dict] = field(default_factory=list)  # in BACKUP_TABLES order

    @property
    def total_rows(self) -> int:
        return sum(t["rows"] for t in self.tables)


def _check_member_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if "\x00" in name or "\\" in name:
        raise RestoreRefused(f"The archive contains a file with an unsafe name ({name!r}).")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        raise RestoreRefused(f"The archive contains {name!r}, which points outside the backup folder.")
    mode = (info.external_attr >> 16) & 0o170000
    if mode == 0o120000:
        raise RestoreRefused(f"The archive contains a symbolic link ({name!r}); backups never do.")
    if info.flag_bits & 0x1:
        raise RestoreRefused(f"The archive member {name!r} is encrypted; Watchpost backups are not.")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise RestoreRefused("The file is not a zip archive, or it is damaged.")
    except FileNotFoundError:
        raise RestoreRefused("The backup file is missing.")


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, chunk: int = 1 << 20):
    """Yield the member's bytes, never more than it declared (zipfile also stops there)."""
    left = info.file_size
    try:
        with zf.open(info) as fh:
            while True:
                data = fh.read(chunk)
                if not data:
                    break
                left -= len(data)
                if left < 0:
                    raise RestoreRefused(f"{info.filename} expands beyond its declared size (a compression bomb?).")
                yield data
    except (zipfile.BadZipFile, EOFError, OSError, zlib_error()) as exc:
        raise RestoreRefused(f"{info.filename} is damaged: {exc}")


def zlib_error():
    import zlib

    return zlib.error


def validate_archive(path: Path, *, reporter: LiveReporter | None = None) -> Plan:
    """Phase 1: everything that can be checked without touching the database's data."""
    limit = settings.RESTORE_MAX_UPLOAD_BYTES
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RestoreRefused("The backup file is missing.")
    if size > limit:
        raise RestoreRefused(f"The file is {_human(size)}; the limit is {_human(limit)} (RESTORE_MAX_UPLOAD_BYTES).")
    with _open_zip(path) as zf:
        infos = zf.infolist()
        seen = set()
        total = 0
        for info in infos:
            _check_member_name(info)
            if info.filename in seen:
                raise RestoreRefused(f"The archive contains {info.filename!r} twice.")
            seen.add(info.filename)
            total += info.file_size
            if (
                info.file_size > RATIO_CHECK_MIN_BYTES
                and info.file_size / max(info.compress_size, 1) > settings.RESTORE_MAX_COMPRESSION_RATIO
            ):
                raise RestoreRefused(
                    f"{info.filename} expands {info.file_size // max(info.compress_size, 1)}× "
                    f"(limit {settings.RESTORE_MAX_COMPRESSION_RATIO}×): this looks like a compression bomb."
                )
        if total > settings.RESTORE_MAX_UNCOMPRESSED_BYTES:
            raise RestoreRefused(
                f"The archive expands to {_human(total)}, more than the {_human(settings.RESTORE_MAX_UNCOMPRESSED_BYTES)} "
                "allowed (RESTORE_MAX_UNCOMPRESSED_BYTES): this looks like a compression bomb."
            )
        if MANIFEST not in seen:
            raise RestoreRefused("This is not a Watchpost backup: manifest.json is missing.")
        minfo = zf.getinfo(MANIFEST)
        if minfo.file_size > MANIFEST_MAX_BYTES:
            raise RestoreRefused("manifest.json is implausibly large.")
        try:
            manifest = json.loads(b"".join(_read_limited(zf, minfo)))
        except (ValueError, UnicodeDecodeError):
            raise RestoreRefused("manifest.json is not valid JSON.")
        plan = _check_manifest(manifest, seen)
        for i, entry in enumerate(plan.tables):
            info = zf.getinfo(entry["file"])
            sha = hashlib.sha256()
            first = b""
            for data in _read_limited(zf, info):
                sha.update(data)
                if len(first) < 65536 and b"\n" not in first:
                    first += data[:65536]
            if sha.hexdigest() != entry["sha256"]:
                raise RestoreRefused(
                    f"Checksum mismatch for table {entry['name']}: the file was changed or damaged after the backup was made."
                )
            header = first.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
            if header.split(",") != entry["columns"]:
                raise RestoreRefused(f"The header of {entry['file']} does not match the manifest's column list.")
            if reporter is not None:
                reporter.update(int((i + 1) * 30 / len(plan.tables)), f"Checked {entry['name']}")
    return plan


def _check_manifest(manifest, members: set[str]) -> Plan:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise RestoreRefused("This is not a Watchpost backup (manifest.json has no 'watchpost-backup' format).")
    version = manifest.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise RestoreRefused(
            f"This backup uses format version {version!r}; this Watchpost reads version "
            f"{', '.join(map(str, sorted(SUPPORTED_VERSIONS)))}. Restore it with the Watchpost that made it."
        )
    entries = manifest.get("tables")
    if not isinstance(entries, list):
        raise RestoreRefused("manifest.json lists no tables.")
    by_name: dict[str, dict] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RestoreRefused("manifest.json has a malformed table entry.")
        name = entry["name"]
        if name not in BACKUP_TABLES:
            raise RestoreRefused(f"The backup contains a table this Watchpost does not restore: {name!r}.")
        if name in by_name:
            raise RestoreRefused(f"manifest.json lists table {name} twice.")
        if entry.get("file") != f"tables/{name}.csv" or entry["file"] not in members:
            raise RestoreRefused(f"The file for table {name} is missing from the archive.")
        if not isinstance(entry.get("rows"), int) or isinstance(entry.get("rows"), bool) or entry["rows"] < 0:
            raise RestoreRefused(f"manifest.json has no valid row count for {name}.")
        if not isinstance(entry.get("sha256"), str) or not _SHA256.match(entry["sha256"]):
            raise RestoreRefused(f"manifest.json has no valid SHA-256 for {name}.")
        cols = entry.get("columns")
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
            raise RestoreRefused(f"manifest.json has no column list for {name}.")
        current = set(table_columns(name)) if name in existing_tables() else set()
        unknown = [c for c in cols if c not in current]
        if unknown:
            raise RestoreRefused(f"Table {name} in the backup has columns this database lacks: {', '.join(unknown)}.")
        by_name[name] = entry
    missing = [t for t in BACKUP_TABLES if t not in by_name]
    if missing:
        raise RestoreRefused(f"The backup lacks table(s): {', '.join(missing)}.")
    expected = {MANIFEST, *(e["file"] for e in by_name.values())}
    strangers = sorted(m for m in members - expected if not m.endswith("/"))
    if strangers:
        raise RestoreRefused(f"The archive contains unexpected files: {', '.join(strangers[:5])}.")
    return Plan(manifest=manifest, tables=[by_name[t] for t in BACKUP_TABLES])


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


# --- Restore: loading --------------------------------------------------------------------------------


class _ValidateOnly(Exception):
    """Raised at the end of a dry run to roll the transaction back."""


def _db_error_message(table: str, exc: psycopg.Error) -> str:
    diag = exc.diag
    primary = diag.message_primary or str(exc).splitlines()[0]
    where = ""
    if diag.context:
        m = re.search(r"COPY (\S+), line (\d+)", diag.context)
        if m:
            # Line 1 is the header, so data row N is line N + 1.
            where = f" (row {int(m.group(2)) - 1} of {m.group(1)})"
    detail = f" {diag.message_detail}" if diag.message_detail else ""
    return f"Table {table}: {primary}{where}.{detail} Nothing was changed."


@dataclass
class _Postponed:
    """A foreign key or index dropped for the load; `create_sql` puts it back exactly as it was."""

    table: str  # the table it belongs to (messages)
    name: str
    drop_sql: str
    create_sql: str
    comment_sql: str | None  # COMMENT ON … again, when it had one
    after: str  # put back once this table (the later of the tables it needs) is loaded


def _postponed_foreign_keys(tables: list[str]) -> list[_Postponed]:
    """Foreign keys between two restored tables; those into other tables stay and are checked per row."""
    order = {t: i for i, t in enumerate(tables)}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid), p.relname, "
            "obj_description(c.oid, 'pg_constraint') "
            "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid "
            "WHERE c.contype = 'f' AND c.conparentid = 0 AND c.coninhcount = 0 "
            "AND t.relnamespace = current_schema()::regnamespace AND p.relnamespace = t.relnamespace "
            "AND t.relname = ANY(%s) AND p.relname = ANY(%s) ORDER BY t.relname, c.conname",
            [tables, tables],
        )
        rows = cur.fetchall()
    return [
        _Postponed(
            table=table,
            name=name,
            drop_sql=f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}",
            create_sql=f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}",
            comment_sql=f"COMMENT ON CONSTRAINT {_q(name)} ON {_q(table)} IS {_literal(comment)}" if comment else None,
            after=max(table, parent, key=order.__getitem__),
        )
        for table, name, definition, parent, comment in rows
    ]


def _postponed_indexes(tables: list[str]) -> list[_Postponed]:
    """Secondary indexes that pg_get_indexdef recreates exactly: not unique (those stop a duplicate on
    its own row), not backing a constraint, nothing depending on them, no tablespace, clustering,
    replica identity or per-column statistics target that the definition would not carry."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid), obj_description(x.indexrelid, 'pg_class') "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(%s) "
            "AND NOT x.indisunique AND NOT x.indisprimary AND NOT x.indisexclusion AND x.indisvalid AND x.indisready "
            "AND NOT x.indisclustered AND NOT x.indisreplident AND i.reltablespace = 0 AND i.relkind = 'i' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass "
            "AND d.refobjid = x.indexrelid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indexrelid "
            "AND COALESCE(a.attstattarget, -1) >= 0) "
            "ORDER BY t.relname, i.relname",
            [tables],
        )
        rows = cur.fetchall()
    return [
        _Postponed(
            table=table,
            name=name,
            drop_sql=f"DROP INDEX {_q(name)}",
            create_sql=definition,
            comment_sql=f"COMMENT ON INDEX {_q(name)} IS {_literal(comment)}" if comment else None,
            after=table,
        )
        for table, name, definition, comment in rows
    ]


def _literal(text: str) -> str:
    """A string literal for DDL, which takes no parameters."""
    return sql.Literal(text).as_string(connection.connection)


def _postpone_per_row_work(tables: list[str]) -> dict[str, list[_Postponed]]:
    """Drop the FKs and secondary indexes the load would otherwise maintain row by row.

    Returns them grouped by the table after whose COPY they come back.
    """
    postponed = _postponed_indexes(tables) + _postponed_foreign_keys(tables)
    with connection.cursor() as cur:
        for item in postponed:
            cur.execute(item.drop_sql)
    by_table: dict[str, list[_Postponed]] = {}
    for item in postponed:
        by_table.setdefault(item.after, []).append(item)
    return by_table


def load_archive(path: Path, plan: Plan, *, reporter: LiveReporter | None = None, validate_only: bool = False) -> dict:
    """Phase 2: replace every table in one transaction; returns rows loaded per table."""
    from dashboard.services import reid

    outside = outside_dependents(BACKUP_TABLES)
    if outside:
        child, parent, name = outside[0]
        raise RestoreRefused(
            f"Table {child} refers to {parent} ({name}) but is not part of backups; restoring would break it. "
            "Add it to BACKUP_TABLES."
        )
    loaded: dict[str, int] = {}
    current = None
    try:
        with _open_zip(path) as zf, transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [RESTORE_LOCK_KEY])
                if not cur.fetchone()[0]:
                    raise RestoreRefused("Another restore is running; wait for it to finish.")
                # Flush pending deferred checks so TRUNCATE and ALTER TABLE may run, and check any FK that
                # stays in place (into a table outside the backup) row by row as it loads.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.execute("TRUNCATE " + ", ".join(_q(t) for t in BACKUP_TABLES))
            postponed = _postpone_per_row_work(BACKUP_TABLES)
            vectors = reid.pause_vector_sync()
            for i, entry in enumerate(plan.tables):
                current = entry["name"]
                info = zf.getinfo(entry["file"])
                sha = hashlib.sha256()
                cols = ", ".join(_q(c) for c in entry["columns"])
                with connection.connection.cursor() as cur:
                    with cur.copy(f"COPY {_q(current)} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                        for data in _read_limited(zf, info):
                            sha.update(data)
                            copy.write(data)
                            if reporter is not None and reporter.due():
                                reporter.update(None, f"Restoring {current}")
                    count = cur.rowcount
                if sha.hexdigest() != entry["sha256"]:
                    raise RestoreRefused(f"Checksum mismatch for table {current} while loading; nothing was changed.")
                if count != entry["rows"]:
                    raise RestoreRefused(
                        f"Table {current}: the manifest promises {entry['rows']} rows but the file holds {count}; "
                        "nothing was changed."
                    )
                loaded[current] = count
                # Every table these need is loaded now: one index build / one anti-join each, not one per row.
                with connection.cursor() as cur:
                    for item in postponed.pop(entry["name"], []):
                        current = item.table
                        cur.execute(item.create_sql)
                        if item.comment_sql:
                            cur.execute(item.comment_sql)
                current = entry["name"]
                if reporter is not None:
                    reporter.update(30 + int((i + 1) * 55 / len(plan.tables)), f"Restored {current}", force=True,
                                    completed_tables=i + 1)  # fmt: skip
            if postponed:  # never commit with a constraint or index missing (the plan lists every table)
                raise RuntimeError(f"indexes/constraints of {', '.join(sorted(postponed))} were not put back")
            if vectors is not None:
                current = "reid_embeddings"
                if reporter is not None:
                    reporter.update(88, "Rebuilding the re-id search index", force=True)
                reid.resume_vector_sync(vectors)
            current = None
            _reset_sequences(BACKUP_TABLES)
            if reporter is not None:
                reporter.update(95, "Restored every table", force=True)
            if validate_only:
                raise _ValidateOnly
    except _ValidateOnly:
        pass
    except psycopg.Error as exc:
        raise RestoreRefused(_db_error_message(current or "?", exc))
    except Exception as exc:
        from django.db import DatabaseError

        if isinstance(exc, DatabaseError) and isinstance(exc.__cause__, psycopg.Error):
            raise RestoreRefused(_db_error_message(current or "?", exc.__cause__))
        raise
    return loaded


def _reset_sequences(tables: list[str]) -> None:
    """Point every serial / identity sequence past the largest restored id."""
    with connection.cursor() as cur:
        for table in tables:
            cur.execute(
                "SELECT attname, pg_get_serial_sequence(%s, attname) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [_q(table), table],
            )
            for column, seq in cur.fetchall():
                if seq:
                    cur.execute(
                        f"SELECT setval(%s, COALESCE((SELECT MAX({_q(column)}) FROM {_q(table)}), 0) + 1, false)", [seq]
                    )


# --- Restore: the job --------------------------------------------------------------------------------


def active_restore_exists(exclude=None) -> bool:
    from jobs.models import RestoreJob

    qs = RestoreJob.objects.filter(
        status__in=[RestoreStatus.PENDING, RestoreStatus.VALIDATING, RestoreStatus.RESTORING]
    )
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.exists()


def create_restore(
    upload_path: str | None,
    *,
    created_by: str | None = None,
    request=None,
    validate_only: bool = False,
    refusal: str | None = None,
    cli: bool = False,
    dispatch: bool = True,
):
    """Record a RestoreJob and enqueue its tracked job.

    `refusal` records an upload that was refused before it could be stored
    (too large): the job runs and fails with that message, so every refusal is
    a failed job someone can read.
    """
    from jobs.models import RestoreJob
    from jobs.services.tracked import enqueue
    from monitoring.services.audit import record

    with transaction.atomic():
        restore = RestoreJob.objects.create(
            upload_path=upload_path, created_by=created_by, total_tables=len(BACKUP_TABLES), current_step="Queued"
        )
        kwargs = {"restore_id": str(restore.pk)}
        if validate_only:
            kwargs["validate_only"] = True
        if refusal:
            kwargs["refusal"] = refusal
        if cli:
            kwargs["cli"] = True
        job = enqueue(RESTORE_JOB_TYPE, kwargs=kwargs, priority=0, max_attempts=1, created_by=created_by,
                      dispatch=dispatch)  # fmt: skip
        restore.job = job
        restore.save(update_fields=["job"])
        record("restore_started", "restore", restore.pk, request=request, actor=None if request else (created_by or "system"),
               details={"validate_only": validate_only, "job_id": str(job.pk), "refused_upload": refusal})  # fmt: skip
    return restore


def _restore_path(restore, cli: bool) -> Path:
    """Uploads live in UPLOAD_DIR; the command line (an operator's shell) may name any file."""
    stored = restore.upload_path or ""
    if cli:
        return Path(stored)
    return ensure_under(settings.UPLOAD_DIR, stored)


def run_restore(ctx, restore_id, validate_only: bool = False, refusal: str | None = None, cli: bool = False) -> dict:
    from jobs.models import RestoreJob
    from monitoring.services.audit import record

    restore = RestoreJob.objects.get(pk=restore_id)
    if restore.status == RestoreStatus.COMPLETED:
        return {"already": restore.status}

    def mark(**fields):
        RestoreJob.objects.filter(pk=restore.pk).update(**fields)

    mark(status=RestoreStatus.VALIDATING, started_at=timezone.now(), current_step="Validating the archive",
         progress_percent=0, completed_tables=0, job_id=ctx.job_id, error_message=None, completed_at=None)  # fmt: skip
    ctx.progress(1, step="Validating the archive")
    path = None
    try:
        if refusal:
            raise RestoreRefused(refusal)
        try:
            path = _restore_path(restore, cli)
        except SuspiciousFileOperation:
            raise RestoreRefused("The uploaded file's location is not inside the upload folder.")
        with LiveReporter(ctx, "restore_jobs", restore.pk) as reporter:
            plan = validate_archive(path, reporter=reporter)
            created = plan.manifest.get("created_at")
            backup_created = None
            if isinstance(created, str):
                try:
                    backup_created = dt.datetime.fromisoformat(created)
                except ValueError:
                    backup_created = None
            mark(status=RestoreStatus.RESTORING, backup_id=str(plan.manifest.get("backup_id") or path.name)[:64],
                 backup_created_at=backup_created, current_step="Replacing tables", progress_percent=30)  # fmt: skip
            ctx.progress(30, step="Replacing tables" if not validate_only else "Test-loading tables")
            ctx.log(f"Archive valid: {len(plan.tables)} tables, {plan.total_rows:,} rows.")
            ctx.check_cancelled(force=True)
            loaded = load_archive(path, plan, reporter=reporter, validate_only=validate_only)
    except JobCancelled:
        mark(status=RestoreStatus.FAILED, completed_at=timezone.now(), error_message="Cancelled by an operator; nothing was changed.",
             current_step="Cancelled")  # fmt: skip
        record("restore_failed", "restore", restore.pk, actor=restore.created_by or "system",
               details={"error": "cancelled"}, status="failure")  # fmt: skip
        raise
    except Exception as exc:
        message = str(exc) if isinstance(exc, RestoreRefused) else f"The restore failed and nothing was changed: {exc}"
        mark(status=RestoreStatus.FAILED, completed_at=timezone.now(), error_message=message, current_step="Failed")
        record("restore_failed", "restore", restore.pk, actor=restore.created_by or "system",
               details={"error": message, "validate_only": validate_only}, status="failure")  # fmt: skip
        raise RestoreRefused(message)
    finally:
        if not cli:
            _discard_upload(path)
    mark(status=RestoreStatus.COMPLETED, completed_at=timezone.now(), items_restored=None if validate_only else loaded,
         completed_tables=len(loaded), progress_percent=100,
         current_step="Validated; nothing was changed" if validate_only else "Done")  # fmt: skip
    record("restore_finished", "restore", restore.pk, actor=restore.created_by or "system",
           details={"validate_only": validate_only, "items_restored": loaded})  # fmt: skip
    return {"validate_only": validate_only, "items_restored": loaded}


def restore_abandoned(kwargs: dict, message: str, retrying: bool) -> None:
    """on_failure hook: the restore's worker died or it was cancelled before it started.

    Its transaction died with the worker's connection, so nothing was changed.
    """
    from jobs.models import RestoreJob
    from monitoring.services.audit import record

    restore_id = kwargs.get("restore_id")
    updated = RestoreJob.objects.filter(
        pk=restore_id, status__in=[RestoreStatus.PENDING, RestoreStatus.VALIDATING, RestoreStatus.RESTORING]
    ).update(
        status=RestoreStatus.FAILED,
        completed_at=timezone.now(),
        current_step="Failed",
        error_message=f"{message} The restore's transaction was rolled back: nothing was changed.",
    )
    if updated:
        record("restore_failed", "restore", restore_id, actor="system", details={"error": message}, status="failure")


def _discard_upload(path: Path | None) -> None:
    """Uploaded archives are single-use; files named on the command line are the operator's."""
    if path is None:
        return
    try:
        ensure_under(settings.UPLOAD_DIR, path).unlink()
    except (SuspiciousFileOperation, FileNotFoundError):
        pass
