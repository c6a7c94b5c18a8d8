"""gpu_stats, logs and audit_logs (seed "GPU Stats", "Application Logs", "Audit Logs")."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q

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


class GpuStat(models.Model):
    recorded_at = models.DateTimeField(**now_defaults())
    gpu_name = models.CharField(max_length=255, null=True, blank=True)
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
    gpu_uuid = models.CharField(max_length=100, null=True, blank=True)
    host = models.CharField(max_length=255, **literal_defaults(""))

    objects = GpuStatQuerySet.as_manager()

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


class LogQuerySet(models.QuerySet):
    def between(self, start, end):
        return self.filter(timestamp__gte=start, timestamp__lt=end)

    def errors(self):
        return self.filter(level__in=[LogLevel.ERROR, LogLevel.CRITICAL])


class Log(models.Model):
    timestamp = models.DateTimeField(**now_defaults())
    level = models.CharField(max_length=10, choices=LogLevel.choices)
    component = models.CharField(max_length=50)
    message = models.TextField()
    camera_id = models.CharField(max_length=100, null=True, blank=True)
    event_id = models.IntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=36, null=True, blank=True)
    detection_id = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    extra = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=LogSource.choices, **literal_defaults(LogSource.BACKEND))
    user_agent = models.TextField(null=True, blank=True)
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


class AuditLog(models.Model):
    timestamp = models.DateTimeField(**now_defaults())
    action = models.CharField(max_length=50)
    resource_type = models.CharField(max_length=50)
    resource_id = models.CharField(max_length=255, null=True, blank=True)
    actor = models.CharField(max_length=100)
    ip_address = models.CharField(max_length=45, null=True, blank=True)
    user_agent = models.TextField(null=True, blank=True)
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
