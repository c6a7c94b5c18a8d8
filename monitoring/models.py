"""gpu_stats, logs and audit_logs (seed "GPU Stats", "Application Logs", "Audit Logs")."""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Avg, Count, DateTimeField, F, Func, Max, Q, Value

from dashboard.fields import literal_defaults, now_defaults
from monitoring.choices import AuditStatus, LogLevel, LogSource


class GpuStatQuerySet(models.QuerySet):
    def between(self, start, end):
        return self.filter(recorded_at__gte=start, recorded_at__lt=end)

    def for_gpu(self, host: str | None = None, gpu_index: int | None = None):
        qs = self
        if host is not None:
            qs = qs.filter(host=host)
        if gpu_index is not None:
            qs = qs.filter(gpu_index=gpu_index)
        return qs

    def bucketed(self, width: dt.timedelta, origin: dt.datetime | None = None):
        """One row per `width` bucket: averages (and a few maxima) computed by PostgreSQL.

        `date_bin` groups in SQL, so a 30-day chart reads the rows of its range
        once and returns ~360 rows instead of shipping 500k samples to Python.
        Combined with `for_gpu(...).between(...)` the scan is a range of
        idx_gpu_stats_gpu_recorded_at.
        """
        origin = origin or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        return (
            self.order_by()
            .annotate(bucket=DateBin(width, F("recorded_at"), origin))
            .values("bucket")
            .annotate(
                # Maxima first: once "temperature" names the average, Max("temperature")
                # would refer to the annotation instead of the column.
                temperature_max=Max("temperature"),
                samples=Count("id"),
                gpu_utilization=Avg("gpu_utilization"),
                memory_bandwidth_utilization=Avg("memory_bandwidth_utilization"),
                memory_used=Avg("memory_used"),
                memory_total=Max("memory_total"),
                temperature=Avg("temperature"),
                power_usage=Avg("power_usage"),
                power_limit=Max("power_limit"),
                sm_clock=Avg("sm_clock"),
                memory_clock=Avg("memory_clock"),
                fan_speed=Avg("fan_speed"),
                inference_fps=Avg("inference_fps"),
                pcie_tx_throughput=Avg("pcie_tx_throughput"),
                pcie_rx_throughput=Avg("pcie_rx_throughput"),
                encoder_utilization=Avg("encoder_utilization"),
                decoder_utilization=Avg("decoder_utilization"),
            )
            .order_by("bucket")
        )


class GpuStatManager(models.Manager.from_queryset(GpuStatQuerySet)):
    # Skip scan over idx_gpu_stats_gpu_recorded_at: walk the distinct (host,
    # gpu_index) pairs one index probe at a time, then one probe per GPU for its
    # newest row. DISTINCT ON would read every row of the table (10M+).
    LATEST_SQL = """
        WITH RECURSIVE gpus AS (
            (SELECT host, gpu_index FROM gpu_stats ORDER BY host, gpu_index LIMIT 1)
            UNION ALL
            SELECT nxt.host, nxt.gpu_index FROM gpus
            CROSS JOIN LATERAL (
                SELECT g.host, g.gpu_index FROM gpu_stats g
                WHERE (g.host, g.gpu_index) > (gpus.host, gpus.gpu_index)
                ORDER BY g.host, g.gpu_index LIMIT 1
            ) nxt
        )
        SELECT latest.* FROM gpus
        CROSS JOIN LATERAL (
            SELECT s.* FROM gpu_stats s
            WHERE s.host = gpus.host AND s.gpu_index = gpus.gpu_index
            ORDER BY s.recorded_at DESC LIMIT 1
        ) latest
        ORDER BY latest.host, latest.gpu_index
    """

    def latest_per_gpu(self) -> list:
        """The newest sample of every GPU ever sampled (any host), ordered by host and index."""
        return list(self.raw(self.LATEST_SQL))


class DateBin(Func):
    """PostgreSQL 14+ date_bin(stride, source, origin)."""

    function = "date_bin"
    output_field = DateTimeField()

    def __init__(self, stride: dt.timedelta, source, origin: dt.datetime, **extra):
        super().__init__(Value(stride), source, Value(origin), **extra)


class GpuStat(models.Model):
    recorded_at = models.DateTimeField(**now_defaults())
    gpu_name = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    gpu_utilization = models.FloatField(null=True, blank=True)
    memory_used = models.IntegerField(null=True, blank=True, help_text="MB")
    memory_total = models.IntegerField(null=True, blank=True, help_text="MB")
    temperature = models.FloatField(null=True, blank=True, help_text="°C")
    power_usage = models.FloatField(null=True, blank=True, help_text="W")
    inference_fps = models.FloatField(null=True, blank=True)
    fan_speed = models.IntegerField(null=True, blank=True, help_text="%")
    sm_clock = models.IntegerField(null=True, blank=True, help_text="MHz")
    memory_bandwidth_utilization = models.FloatField(null=True, blank=True)
    pstate = models.IntegerField(null=True, blank=True)
    throttle_reasons = models.IntegerField(null=True, blank=True)
    power_limit = models.FloatField(null=True, blank=True, help_text="W")
    sm_clock_max = models.IntegerField(null=True, blank=True, help_text="MHz")
    compute_processes_count = models.IntegerField(null=True, blank=True)
    pcie_replay_counter = models.IntegerField(null=True, blank=True)
    temp_slowdown_threshold = models.FloatField(null=True, blank=True, help_text="°C")
    memory_clock = models.IntegerField(null=True, blank=True, help_text="MHz")
    memory_clock_max = models.IntegerField(null=True, blank=True, help_text="MHz")
    pcie_link_gen = models.IntegerField(null=True, blank=True)
    pcie_link_width = models.IntegerField(null=True, blank=True)
    pcie_tx_throughput = models.IntegerField(null=True, blank=True, help_text="KB/s")
    pcie_rx_throughput = models.IntegerField(null=True, blank=True, help_text="KB/s")
    encoder_utilization = models.IntegerField(null=True, blank=True)
    decoder_utilization = models.IntegerField(null=True, blank=True)
    bar1_used = models.IntegerField(null=True, blank=True, help_text="MB")
    # Beyond the seed: several GPUs and hosts share the table.
    gpu_index = models.IntegerField(**literal_defaults(0))
    gpu_uuid = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    host = models.CharField(max_length=255, **literal_defaults(""))

    objects = GpuStatManager()

    class Meta:
        db_table = "gpu_stats"
        ordering = ["-recorded_at"]
        indexes = [
            BrinIndex(fields=["recorded_at"], name="ix_gpu_stats_recorded_at_brin"),
            # BRIN cannot return rows in order: "latest sample per GPU" (GPU page,
            # overview widget) and per-GPU chart ranges walk this B-tree instead.
            models.Index(fields=["host", "gpu_index", "-recorded_at"], name="idx_gpu_stats_gpu_recorded_at"),
        ]

    def __str__(self) -> str:
        return f"{self.gpu_name or 'GPU'} #{self.gpu_index} @ {self.recorded_at:%Y-%m-%d %H:%M:%S}"


def _keyset_before(qs, field: str, timestamp, pk):
    # `t <= ts AND NOT (t = ts AND id >= pk)` is the row comparison (t, id) < (ts, pk)
    # written so the B-tree on the timestamp serves it as a plain range.
    return qs.filter(**{f"{field}__lte": timestamp}).exclude(**{field: timestamp, "id__gte": pk})


def _keyset_after(qs, field: str, timestamp, pk):
    return qs.filter(**{f"{field}__gte": timestamp}).exclude(**{field: timestamp, "id__lte": pk})


class LogQuerySet(models.QuerySet):
    def between(self, start, end):
        return self.filter(timestamp__gte=start, timestamp__lt=end)

    def errors(self):
        return self.filter(level__in=[LogLevel.ERROR, LogLevel.CRITICAL])

    def search(self, text: str):
        """Full-text match in websearch syntax ("disk full" -camera or error) via the GIN index."""
        from django.contrib.postgres.search import SearchQuery

        return self.filter(search_vector=SearchQuery(text, search_type="websearch", config="english"))

    def newest_first(self):
        return self.order_by("-timestamp", "-id")

    def before(self, timestamp, pk):
        """Keyset page: rows strictly older than (timestamp, pk) in newest-first order."""
        return _keyset_before(self, "timestamp", timestamp, pk)

    def after(self, timestamp, pk):
        """Rows strictly newer than (timestamp, pk): the live tail."""
        return _keyset_after(self, "timestamp", timestamp, pk)


class Log(models.Model):
    timestamp = models.DateTimeField(**now_defaults())
    level = models.CharField(max_length=10, choices=LogLevel.choices)
    component = models.CharField(max_length=50)
    message = models.TextField()
    camera_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    event_id = models.IntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=36, null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    detection_id = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    extra = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=LogSource.choices, **literal_defaults(LogSource.BACKEND))
    user_agent = models.TextField(null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    # Maintained by PostgreSQL itself (a stored generated column), so COPY, psql and
    # every other insert path get it without a trigger or application code.
    search_vector = models.GeneratedField(
        expression=SearchVector("message", weight="A", config="english")
        + SearchVector("component", weight="B", config="english")
        + SearchVector("level", weight="C", config="english"),
        output_field=SearchVectorField(null=True),
        db_persist=True,
    )

    objects = LogQuerySet.as_manager()

    class Meta:
        db_table = "logs"
        ordering = ["-timestamp", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(level__in=LogLevel.values), name="ck_logs_level"),
            models.CheckConstraint(condition=Q(source__in=LogSource.values), name="ck_logs_source"),
        ]
        indexes = [
            # Newest-first explorer pages and the live tail (keyset on timestamp, id).
            models.Index(fields=["timestamp"], name="idx_logs_timestamp"),
            models.Index(fields=["level"], name="idx_logs_level"),
            models.Index(fields=["component"], name="idx_logs_component"),
            models.Index(fields=["camera_id"], name="idx_logs_camera_id"),
            models.Index(fields=["source"], name="idx_logs_source"),
            BrinIndex(fields=["timestamp"], name="ix_logs_timestamp_brin"),
            GinIndex(fields=["search_vector"], name="idx_logs_search_vector"),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.component}: {self.message[:80]}"


class AuditLogQuerySet(models.QuerySet):
    def between(self, start, end):
        return self.filter(timestamp__gte=start, timestamp__lt=end)

    def for_resource(self, resource_type: str, resource_id=None):
        qs = self.filter(resource_type=resource_type)
        if resource_id is not None:
            qs = qs.filter(resource_id=str(resource_id))
        return qs

    def newest_first(self):
        return self.order_by("-timestamp", "-id")

    def before(self, timestamp, pk):
        return _keyset_before(self, "timestamp", timestamp, pk)

    def top(self, field: str, limit: int = 10):
        """[(value, count)] of the most frequent values of `field`, most frequent first."""
        rows = self.order_by().values(field).annotate(n=Count("id")).order_by("-n", field)[:limit]
        return [(row[field], row["n"]) for row in rows]


class AuditLog(models.Model):
    timestamp = models.DateTimeField(**now_defaults())
    action = models.CharField(max_length=50)
    resource_type = models.CharField(max_length=50)
    resource_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    actor = models.CharField(max_length=100)
    ip_address = models.CharField(max_length=45, null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    user_agent = models.TextField(null=True, blank=True)  # noqa: DJ001 (nullable in the seed)
    details = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=AuditStatus.choices, **literal_defaults(AuditStatus.SUCCESS))

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "audit_logs"
        ordering = ["-timestamp", "-id"]
        constraints = [models.CheckConstraint(condition=Q(status__in=AuditStatus.values), name="ck_audit_logs_status")]
        indexes = [
            models.Index(fields=["timestamp"], name="idx_audit_logs_timestamp"),
            models.Index(fields=["action"], name="idx_audit_logs_action"),
            models.Index(fields=["resource_type"], name="idx_audit_logs_resource_type"),
            models.Index(fields=["actor"], name="idx_audit_logs_actor"),
            models.Index(fields=["status"], name="idx_audit_logs_status"),
            models.Index(fields=["resource_type", "resource_id"], name="idx_audit_logs_resource"),
            BrinIndex(fields=["timestamp"], name="ix_audit_logs_timestamp_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.resource_type}:{self.resource_id or '-'}"


class SamplerStatus(models.Model):
    """What the GPU sampler on each host last found (beyond the seed).

    The sampler runs in the worker, the pages in the web server: this row is how
    the web process learns *why* there are no samples ("NVML Shared Library Not
    Found") and the per-GPU details that have no gpu_stats column (process list).
    """

    host = models.CharField(max_length=255, unique=True)
    available = models.BooleanField(default=False)
    reason = models.TextField(blank=True, default="")
    gpu_count = models.IntegerField(default=0)
    driver_version = models.CharField(max_length=80, blank=True, default="")
    # {"gpus": [{"index": 0, "uuid": ..., "processes": [{"pid", "name", "used_memory_mb"}],
    #            "unsupported": [field, ...], "errors": {field: message}}]}
    details = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "monitoring_sampler_status"
        ordering = ["host"]
        verbose_name_plural = "sampler statuses"

    def __str__(self) -> str:
        return f"{self.host}: {'available' if self.available else self.reason}"
