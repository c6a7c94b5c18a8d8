"""Exports of events and alerts to csv, json, zip (csv inside) or xlsx.

Every format streams one PostgreSQL `COPY (SELECT …) TO STDOUT`: the server
sends one message per row and we write it out as it comes, so memory stays flat
whether the export has ten rows or ten million (a named cursor would do too, but
COPY is ~10× faster than fetching rows: DESIGN "Performance notes").

- csv / zip: the CSV bytes PostgreSQL produces are written as they are.
- json: PostgreSQL renders each row with row_to_json; we only join them.
- xlsx: rows are parsed into typed values and written with openpyxl's
  write-only workbook (which spills rows to a temporary file, not memory).

Spreadsheet formula injection: in csv, zip and xlsx every text cell that starts
with = + - @, a tab or a carriage return gets a leading apostrophe, done in the
SELECT itself so the fast path stays a pure COPY.

Files are written under EXPORT_DIR to a hidden temporary name and renamed when
complete, so a partial file is never offered; the final name carries 128 random
bits and cannot be guessed.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import secrets
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from alerting.choices import AlertStatus
from dashboard.choices import RiskLevel, Severity
from dashboard.files import ensure_under
from jobs.choices import ExportFormat, ExportStatus, ExportType
from jobs.services.live import LiveReporter
from jobs.services.tracked import JobCancelled, JobFailed

logger = logging.getLogger(__name__)

EXPORT_JOB_TYPE = "export"
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit (1,048,576) minus the header row
EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.JSON: "json", ExportFormat.ZIP: "zip", ExportFormat.XLSX: "xlsx"}
CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.JSON: "application/json",
    ExportFormat.ZIP: "application/zip",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportError(JobFailed):
    """An export that cannot be made; the message is for people."""


# --- Filters ---------------------------------------------------------------------------
# The same query-string names as the events and alerts list pages, so "export
# these results" can pass the page's query string through unchanged.

EVENT_FILTERS = (
    "camera", "started_at__gte", "started_at__lt", "risk_level", "reviewed",
    "risk_score_min", "risk_score_max", "object_type", "has_feedback", "has_alert",
)  # fmt: skip
ALERT_FILTERS = ("camera", "created_at__gte", "created_at__lt", "status", "severity", "rule")
FILTER_LABELS = {
    "camera": "Camera",
    "started_at__gte": "Started from",
    "started_at__lt": "Started before",
    "created_at__gte": "Created from",
    "created_at__lt": "Created before",
    "risk_level": "Risk level",
    "reviewed": "Reviewed",
    "risk_score_min": "Risk score from",
    "risk_score_max": "Risk score to",
    "object_type": "Object type",
    "has_feedback": "Has feedback",
    "has_alert": "Has alert",
    "status": "Status",
    "severity": "Severity",
    "rule": "Rule",
}
_TRUE = {"1", "true", "yes", "on", "True"}
_FALSE = {"0", "false", "no", "off", "False"}


def _getlist(data, name) -> list[str]:
    if hasattr(data, "getlist"):
        values = data.getlist(name)
    else:
        value = data.get(name)
        values = value if isinstance(value, list | tuple) else ([] if value is None else [value])
    out = []
    for v in values:
        # "a,b" and repeated parameters both mean several values.
        out.extend(part.strip() for part in str(v).split(",") if part.strip())
    return out


def parse_moment(text: str, label: str) -> dt.datetime:
    """ISO date or date-time; a naive value is in the console's time zone."""
    bad = ValidationError(f"{label}: {text!r} is not a date or ISO date-time (e.g. 2025-01-31 or 2025-01-31T08:00).")
    try:
        # Well-formed but impossible values (month 13, hour 25, offset +99:00) raise ValueError.
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            if day is None:
                raise bad
            value = dt.datetime.combine(day, dt.time.min)
    except ValueError:
        raise bad
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def clean_filters(export_type: str, data) -> dict:
    """Validate list-page query parameters into JSON-able filters; unknown names are ignored."""
    errors: list[str] = []
    out: dict = {}
    if export_type not in (ExportType.EVENTS, ExportType.ALERTS):
        raise ValidationError("Only events and alerts can be exported.")
    names = EVENT_FILTERS if export_type == ExportType.EVENTS else ALERT_FILTERS
    for name in names:
        values = _getlist(data, name)
        if not values:
            continue
        label = FILTER_LABELS[name]
        try:
            if name == "camera":
                out[name] = sorted(set(values))
            elif name.endswith("__gte") or name.endswith("__lt"):
                out[name] = parse_moment(values[-1], label).isoformat()
            elif name == "risk_level":
                bad = [v for v in values if v not in RiskLevel.values]
                if bad:
                    raise ValidationError(f"{label}: unknown value(s) {', '.join(bad)}.")
                out[name] = sorted(set(values))
            elif name == "status":
                bad = [v for v in values if v not in AlertStatus.values]
                if bad:
                    raise ValidationError(f"{label}: unknown value(s) {', '.join(bad)}.")
                out[name] = sorted(set(values))
            elif name == "severity":
                bad = [v for v in values if v not in Severity.values]
                if bad:
                    raise ValidationError(f"{label}: unknown value(s) {', '.join(bad)}.")
                out[name] = sorted(set(values))
            elif name in ("risk_score_min", "risk_score_max"):
                try:
                    score = int(values[-1])
                except ValueError:
                    raise ValidationError(f"{label}: {values[-1]!r} is not a whole number.")
                if not 0 <= score <= 100:
                    raise ValidationError(f"{label}: must be between 0 and 100.")
                out[name] = score
            elif name == "object_type":
                value = values[-1].strip().lower()
                if len(value) > 50:
                    raise ValidationError(f"{label}: at most 50 characters.")
                if value:
                    out[name] = value
            elif name in ("reviewed", "has_feedback", "has_alert"):
                v = values[-1]
                if v in _TRUE:
                    out[name] = True
                elif v in _FALSE:
                    out[name] = False
                elif v not in ("", "unknown"):
                    raise ValidationError(f"{label}: use yes or no.")
            elif name == "rule":
                try:
                    out[name] = str(uuid.UUID(values[-1]))
                except ValueError:
                    raise ValidationError(f"{label}: {values[-1]!r} is not a rule id.")
        except ValidationError as exc:
            errors.extend(exc.messages)
    lo, hi = (
        ("started_at__gte", "started_at__lt")
        if export_type == ExportType.EVENTS
        else ("created_at__gte", "created_at__lt")
    )
    if lo in out and hi in out and parse_datetime(out[lo]) >= parse_datetime(out[hi]):
        errors.append("The start of the time range must be before its end.")
    if out.get("risk_score_min", 0) > out.get("risk_score_max", 100):
        errors.append("The risk score range is empty: its start is above its end.")
    if errors:
        raise ValidationError(errors)
    return out


def describe_filters(filters: dict) -> list[tuple[str, str]]:
    rows = []
    for name, value in filters.items():
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, list):
            shown = ", ".join(value)
        else:
            shown = str(value)
        rows.append((FILTER_LABELS.get(name, name), shown))
    return rows


# --- Queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    pg_type: str  # for parsing typed rows (xlsx)
    text: bool = False  # neutralised against formula injection in csv/zip/xlsx


EVENT_COLUMNS = [
    Column("id", "e.id", "int8"),
    Column("camera_id", "e.camera_id", "text", True),
    Column("camera_name", "c.name", "text", True),
    Column("started_at", "e.started_at", "timestamptz"),
    Column("ended_at", "e.ended_at", "timestamptz"),
    Column("risk_score", "e.risk_score", "int4"),
    Column("risk_level", "e.risk_level", "text", True),
    Column("object_types", "e.object_types", "text", True),
    Column("reviewed", "e.reviewed", "bool"),
    Column("summary", "e.summary", "text", True),
    Column("reasoning", "e.reasoning", "text", True),
    Column("notes", "e.notes", "text", True),
]
ALERT_COLUMNS = [
    Column("id", "a.id", "uuid"),
    Column("created_at", "a.created_at", "timestamptz"),
    Column("updated_at", "a.updated_at", "timestamptz"),
    Column("delivered_at", "a.delivered_at", "timestamptz"),
    Column("severity", "a.severity", "text", True),
    Column("status", "a.status", "text", True),
    Column("rule_id", "a.rule_id", "uuid"),
    Column("rule_name", "r.name", "text", True),
    Column("event_id", "a.event_id", "int8"),
    Column("camera_id", "ev.camera_id", "text", True),
    Column("dedup_key", "a.dedup_key", "text", True),
    Column("channels", "a.channels::text", "text", True),
    Column("metadata", "a.metadata::text", "text", True),
    Column("version_id", "a.version_id", "int4"),
]


def _neutralised(expr: str) -> str:
    # left(x, 1) IN (...) is cheaper than a regular expression on every cell.
    return f"CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {expr} ELSE {expr} END"


@dataclass
class ExportQuery:
    columns: list[Column]
    select_sql: str
    count_sql: str
    params: list


def build_query(export_type: str, filters: dict, *, neutralise: bool) -> ExportQuery:
    where: list[str] = []
    params: list = []
    if export_type == ExportType.EVENTS:
        columns = EVENT_COLUMNS
        if filters.get("camera"):
            where.append("e.camera_id = ANY(%s)")
            params.append(list(filters["camera"]))
        if filters.get("started_at__gte"):
            where.append("e.started_at >= %s")
            params.append(parse_datetime(filters["started_at__gte"]))
        if filters.get("started_at__lt"):
            where.append("e.started_at < %s")
            params.append(parse_datetime(filters["started_at__lt"]))
        if filters.get("risk_level"):
            where.append("e.risk_level = ANY(%s)")
            params.append(list(filters["risk_level"]))
        if "reviewed" in filters:
            where.append("e.reviewed = %s")
            params.append(bool(filters["reviewed"]))
        if filters.get("risk_score_min") is not None:
            where.append("e.risk_score >= %s")
            params.append(int(filters["risk_score_min"]))
        if filters.get("risk_score_max") is not None:
            where.append("e.risk_score <= %s")
            params.append(int(filters["risk_score_max"]))
        if filters.get("object_type"):
            from dashboard.filters import object_type_pattern

            where.append("e.object_types ~* %s")
            params.append(object_type_pattern(filters["object_type"]))
        for name, table in (("has_feedback", "event_feedback"), ("has_alert", "alerts")):
            if name in filters:
                exists = f"EXISTS (SELECT 1 FROM {table} x WHERE x.event_id = e.id)"
                where.append(exists if filters[name] else f"NOT {exists}")
        from_sql = "events e JOIN cameras c ON c.id = e.camera_id"
        count_from = "events e"
        # Newest first, like the events list; idx_events_started_at_id serves it.
        order = "e.started_at DESC, e.id DESC"
    elif export_type == ExportType.ALERTS:
        columns = ALERT_COLUMNS
        if filters.get("camera"):
            where.append("ev.camera_id = ANY(%s)")
            params.append(list(filters["camera"]))
        if filters.get("created_at__gte"):
            where.append("a.created_at >= %s")
            params.append(parse_datetime(filters["created_at__gte"]))
        if filters.get("created_at__lt"):
            where.append("a.created_at < %s")
            params.append(parse_datetime(filters["created_at__lt"]))
        if filters.get("status"):
            where.append("a.status = ANY(%s)")
            params.append(list(filters["status"]))
        if filters.get("severity"):
            where.append("a.severity = ANY(%s)")
            params.append(list(filters["severity"]))
        if filters.get("rule"):
            where.append("a.rule_id = %s")
            params.append(uuid.UUID(filters["rule"]))
        from_sql = "alerts a JOIN events ev ON ev.id = a.event_id LEFT JOIN alert_rules r ON r.id = a.rule_id"
        count_from = "alerts a JOIN events ev ON ev.id = a.event_id" if filters.get("camera") else "alerts a"
        # Newest first, like the alerts list; idx_alerts_created_at serves it.
        order = "a.created_at DESC, a.id DESC"
    else:
        raise ExportError(f"Exports of {export_type!r} are not supported.")
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    select_list = ", ".join(f"{_neutralised(c.sql) if (neutralise and c.text) else c.sql} AS {c.name}" for c in columns)
    return ExportQuery(
        columns=columns,
        select_sql=f"SELECT {select_list} FROM {from_sql}{where_sql} ORDER BY {order}",
        count_sql=f"SELECT count(*) FROM {count_from}{where_sql}",
        params=params,
    )


def copy_sql(export_type: str, filters: dict, export_format: str = ExportFormat.CSV) -> tuple[str, list]:
    """The COPY statement an export of this kind runs (used by the benchmarks too)."""
    q = build_query(export_type, filters, neutralise=export_format != ExportFormat.JSON)
    if export_format == ExportFormat.JSON:
        return f"COPY (SELECT row_to_json(t)::text FROM ({q.select_sql}) t) TO STDOUT", q.params
    if export_format == ExportFormat.XLSX:
        return f"COPY ({q.select_sql}) TO STDOUT", q.params
    return f"COPY ({q.select_sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", q.params


# --- Writing -----------------------------------------------------------------------------


class _Progress:
    """Counts rows, reports them through the side connection and honours Cancel."""

    EVERY = 5000  # rows between clock checks; time.monotonic() per row would cost more than the row

    def __init__(self, reporter: LiveReporter | None, total: int | None, started: dt.datetime):
        self.reporter = reporter
        self.total = total
        self.started = started
        self.rows = 0
        self._next = self.EVERY

    def tick(self, n: int = 1) -> None:
        self.rows += n
        if self.rows >= self._next:
            self._next = self.rows + self.EVERY
            self.report()

    def report(self, force: bool = False) -> None:
        if self.reporter is None or not (force or self.reporter.due()):
            return
        pct = min(99, int(self.rows * 100 / self.total)) if self.total else None
        extra = {"processed_items": self.rows}
        if self.total and self.rows:
            elapsed = (timezone.now() - self.started).total_seconds()
            remaining = elapsed / self.rows * max(0, self.total - self.rows)
            extra["estimated_completion"] = timezone.now() + dt.timedelta(seconds=remaining)
        if pct is not None:
            extra["progress_percent"] = pct
        self.reporter.update(pct, f"Writing rows ({self.rows:,} of {self.total:,})" if self.total else None,
                             force=True, **extra)  # fmt: skip
        if self.reporter.cancel_requested():
            raise JobCancelled("Cancelled by an operator.")


@contextmanager
def _copy_stream(sql: str, params: list):
    """A psycopg Copy object for a COPY TO STDOUT on the main connection."""
    connection.ensure_connection()
    with connection.connection.cursor() as cur, cur.copy(sql, params) as copy:
        yield copy


def write_csv(fh, export_type: str, filters: dict, progress: _Progress) -> None:
    # The hot loop of the fastest path: local names, no call per row but the write.
    sql, params = copy_sql(export_type, filters, ExportFormat.CSV)
    write = fh.write
    every = progress.EVERY
    with _copy_stream(sql, params) as copy:
        it = iter(copy)
        for data in it:  # the header line
            write(data)
            break
        n = 0
        for data in it:
            write(data)
            n += 1
            if n == every:
                progress.tick(n)
                n = 0
        progress.tick(n)


def write_json(fh, export_type: str, filters: dict, progress: _Progress) -> None:
    """One JSON array, one object per line, as PostgreSQL's row_to_json wrote it.

    COPY's text format escapes backslash, newline, CR, tab, BS, FF and VT; JSON
    text from row_to_json has none of the raw control characters (they are
    escaped inside the JSON already), so undoing COPY's escaping only means
    turning every doubled backslash back into one.
    """
    sql, params = copy_sql(export_type, filters, ExportFormat.JSON)
    write = fh.write
    every = progress.EVERY
    write(b"[")
    sep = b"\n"
    n = 0
    with _copy_stream(sql, params) as copy:
        for data in copy:
            obj = bytes(data[:-1])  # drop the row's newline
            if b"\\" in obj:
                obj = obj.replace(b"\\\\", b"\\")
            write(sep)
            write(obj)
            sep = b",\n"
            n += 1
            if n == every:
                progress.tick(n)
                n = 0
    progress.tick(n)
    write(b"]\n" if sep == b"\n" else b"\n]\n")


def _xlsx_value(value):
    if isinstance(value, dt.datetime):
        # Excel has no time zones: cells are UTC, the header says so.
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def write_xlsx(path: Path, export_type: str, filters: dict, progress: _Progress) -> None:
    from openpyxl import Workbook

    q = build_query(export_type, filters, neutralise=True)
    header = [f"{c.name} (UTC)" if c.pg_type == "timestamptz" else c.name for c in q.columns]
    wb = Workbook(write_only=True)
    sheet_no, in_sheet = 1, 0
    ws = wb.create_sheet(export_type)
    ws.append(header)
    sql, params = copy_sql(export_type, filters, ExportFormat.XLSX)
    with _copy_stream(sql, params) as copy:
        copy.set_types([c.pg_type for c in q.columns])
        for row in copy.rows():
            if in_sheet >= XLSX_MAX_ROWS:
                sheet_no += 1
                in_sheet = 0
                ws = wb.create_sheet(f"{export_type} {sheet_no}")
                ws.append(header)
            ws.append([_xlsx_value(v) for v in row])
            in_sheet += 1
            progress.tick()
    wb.save(path)


def final_name(export) -> str:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return f"{export.export_type}-{stamp}-{secrets.token_urlsafe(16)}.{EXTENSIONS[export.export_format]}"


def write_export_file(export, dest: Path, progress: _Progress) -> int:
    """Write the export to `dest` atomically (temporary name, then rename); returns its size."""
    filters = json.loads(export.filter_params or "{}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        if export.export_format == ExportFormat.XLSX:
            write_xlsx(tmp, export.export_type, filters, progress)
        else:
            with open(tmp, "wb") as raw:
                fh = io.BufferedWriter(raw, buffer_size=1 << 20)
                if export.export_format == ExportFormat.CSV:
                    write_csv(fh, export.export_type, filters, progress)
                elif export.export_format == ExportFormat.JSON:
                    write_json(fh, export.export_type, filters, progress)
                elif export.export_format == ExportFormat.ZIP:
                    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                        member = zf.open(f"{export.export_type}.csv", "w", force_zip64=True)
                        with io.BufferedWriter(member, buffer_size=1 << 20) as mfh:
                            write_csv(mfh, export.export_type, filters, progress)
                else:
                    raise ExportError(f"Unknown export format {export.export_format!r}.")
                fh.flush()
                os.fsync(raw.fileno())
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest.stat().st_size


def count_rows(export) -> int:
    q = build_query(export.export_type, json.loads(export.filter_params or "{}"), neutralise=False)
    with connection.cursor() as cur:
        cur.execute(q.count_sql, q.params)
        return cur.fetchone()[0]


def run_export(ctx, export_id, destination: str | None = None) -> dict:
    """Tracked-job body: produce the file for ExportJob `export_id`.

    `destination` is only ever set by the `export` management command (an
    operator's shell): the web always writes under EXPORT_DIR.
    """
    from jobs.models import ExportJob

    export = ExportJob.objects.get(pk=export_id)
    if export.status == ExportStatus.COMPLETED:
        return {"rows": export.processed_items, "file": export.output_path, "already": True}
    now = timezone.now()
    ExportJob.objects.filter(pk=export.pk).update(
        status=ExportStatus.RUNNING, started_at=now, processed_items=0, progress_percent=0,
        current_step="Counting rows", error_message=None, job_id=ctx.job_id,
    )  # fmt: skip
    ctx.progress(1, step="Counting rows")
    try:
        total = count_rows(export)
        ExportJob.objects.filter(pk=export.pk).update(total_items=total, current_step="Writing rows")
        ctx.log(f"Exporting {total:,} {export.export_type} as {export.export_format}.")
        ctx.check_cancelled(force=True)
        if destination:
            dest = Path(destination)
            stored = str(dest.resolve())
        else:
            name = final_name(export)
            dest = Path(settings.EXPORT_DIR) / name
            stored = name
        with LiveReporter(ctx, "export_jobs", export.pk) as reporter:
            progress = _Progress(reporter, total, now)
            size = write_export_file(export, dest, progress)
        done = timezone.now()
        ExportJob.objects.filter(pk=export.pk).update(
            status=ExportStatus.COMPLETED, completed_at=done, output_path=stored, output_size_bytes=size,
            processed_items=progress.rows, total_items=max(total, progress.rows), progress_percent=100,
            current_step="Ready to download", estimated_completion=None,
        )  # fmt: skip
        ctx.log(f"Wrote {progress.rows:,} rows, {size:,} bytes.")
        return {"rows": progress.rows, "bytes": size, "file": stored}
    except JobCancelled:
        ExportJob.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, completed_at=timezone.now(), error_message="Cancelled by an operator.",
            current_step="Cancelled",
        )  # fmt: skip
        raise
    except Exception as exc:
        ExportJob.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, completed_at=timezone.now(), current_step="Failed",
            error_message=f"The export could not be written: {exc}",
        )  # fmt: skip
        raise


# --- Creating, downloading, expiring ----------------------------------------------------------


def create_export(
    export_type: str,
    export_format: str,
    filters: dict,
    *,
    created_by: str | None = None,
    retention_days: int | None = None,
    request=None,
    destination: str | None = None,
    dispatch: bool = True,
):
    """Record an ExportJob and enqueue the tracked job that writes it (after commit)."""
    from django.db import transaction

    from jobs.models import ExportJob
    from jobs.services.tracked import enqueue
    from monitoring.services.audit import record

    if export_type not in (ExportType.EVENTS, ExportType.ALERTS):
        raise ExportError("Only events and alerts can be exported.")
    if export_format not in ExportFormat.values:
        raise ExportError(f"Unknown format {export_format!r}; use one of {', '.join(ExportFormat.values)}.")
    if retention_days is not None and retention_days < 1:
        raise ExportError("Retention must be at least one day.")
    now = timezone.now()
    days = retention_days or settings.EXPORT_RETENTION_DAYS
    with transaction.atomic():
        export = ExportJob.objects.create(
            export_type=export_type,
            export_format=export_format,
            filter_params=json.dumps(filters, sort_keys=True),
            created_at=now,
            expires_at=now + dt.timedelta(days=days),
            retention_days=retention_days,
            created_by=created_by,
            current_step="Queued",
        )
        kwargs = {"export_id": str(export.pk)}
        if destination:
            kwargs["destination"] = destination
        job = enqueue(EXPORT_JOB_TYPE, kwargs=kwargs, priority=2, max_attempts=1 if destination else 2,
                      created_by=created_by, dispatch=dispatch)  # fmt: skip
        export.job = job
        export.save(update_fields=["job"])
        record(
            "export_created", "export", export.pk, request=request, actor=None if request else (created_by or "system"),
            details={"export_type": export_type, "format": export_format, "filters": filters, "job_id": str(job.pk),
                     "expires_at": export.expires_at.isoformat()},
        )  # fmt: skip
    return export


def export_file_path(export) -> Path:
    """The export's file, resolved and checked to be inside EXPORT_DIR (SuspiciousFileOperation otherwise)."""
    if not export.output_path:
        raise FileNotFoundError("This export has no file.")
    path = ensure_under(settings.EXPORT_DIR, export.output_path)
    if not path.is_file():
        raise FileNotFoundError("The export file is gone (expired or deleted).")
    return path


def download_name(export) -> str:
    stamp = timezone.localtime(export.created_at).strftime("%Y%m%d-%H%M")
    return f"watchpost-{export.export_type}-{stamp}.{EXTENSIONS.get(export.export_format, 'bin')}"


def record_download(export, *, user, request=None) -> None:
    """Count a download and remember who acknowledged the data's sensitivity."""
    from django.db.models import F

    from jobs.models import ExportJob
    from monitoring.services.audit import record

    now = timezone.now()
    meta = dict(export.compliance_metadata or {})
    meta["last_acknowledged_by"] = user.get_username() if user else None
    meta["last_acknowledged_at"] = now.isoformat()
    ExportJob.objects.filter(pk=export.pk).update(
        download_count=F("download_count") + 1, last_downloaded_at=now, sensitivity_acknowledged=True,
        acknowledged_at=now, compliance_metadata=meta,
    )  # fmt: skip
    export.refresh_from_db()
    record("export_downloaded", "export", export.pk, request=request,
           details={"download_count": export.download_count, "sensitivity_acknowledged": True,
                    "bytes": export.output_size_bytes})  # fmt: skip


def set_legal_hold(export, hold: bool, *, request=None, actor: str | None = None) -> bool:
    """Toggle legal hold; returns whether it changed. Audited either way it changes."""
    from jobs.models import ExportJob
    from monitoring.services.audit import record

    old = export.legal_hold
    if old == hold:
        return False
    ExportJob.objects.filter(pk=export.pk).update(legal_hold=hold)
    export.legal_hold = hold
    record("export_legal_hold", "export", export.pk, request=request, actor=actor,
           details={"changes": {"legal_hold": [old, hold]}})  # fmt: skip
    return True


def delete_export_file(export) -> bool:
    """Remove the file if (and only if) it lies inside EXPORT_DIR; True when a file was removed."""
    if not export.output_path:
        return False
    try:
        path = ensure_under(settings.EXPORT_DIR, export.output_path)
    except SuspiciousFileOperation:
        # Written elsewhere by the command line, or a tampered row: never delete outside the folder.
        return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def expire_exports(now=None, batch: int = 500) -> int:
    """Delete expired exports (file and row) unless on legal hold; one audit row each."""
    from django.db import transaction

    from jobs.models import ExportJob
    from monitoring.services.audit import record

    now = now or timezone.now()
    removed = 0
    while True:
        with transaction.atomic():
            # idx_export_jobs_expires_at finds them; SKIP LOCKED lets two sweeps share the work.
            expired = list(
                ExportJob.objects.expired(now).select_for_update(skip_locked=True).order_by("expires_at")[:batch]
            )
            if not expired:
                break
            for export in expired:
                had_file = delete_export_file(export)
                record("export_expired", "export", export.pk, actor="system",
                       details={"expires_at": export.expires_at.isoformat() if export.expires_at else None,
                                "file_removed": had_file, "download_count": export.download_count})  # fmt: skip
            ExportJob.objects.filter(pk__in=[e.pk for e in expired]).delete()
            removed += len(expired)
        if len(expired) < batch:
            break
    return removed


def export_abandoned(kwargs: dict, message: str, retrying: bool) -> None:
    """on_failure hook: the attempt died (or was cancelled) before the handler could say so."""
    from jobs.models import ExportJob

    note = " Another attempt follows." if retrying else ""
    ExportJob.objects.filter(
        pk=kwargs.get("export_id"), status__in=[ExportStatus.PENDING, ExportStatus.RUNNING]
    ).update(
        status=ExportStatus.FAILED, completed_at=timezone.now(), current_step="Failed", error_message=message + note
    )
