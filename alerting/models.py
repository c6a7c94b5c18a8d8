"""alert_rules, alerts, camera_zones, activity_baselines, class_baselines."""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from alerting.choices import (
    DEFAULT_DEDUP_TEMPLATE,
    AlertStatus,
    ChannelType,
    DeliveryStatus,
    Severity,
    ZoneShape,
    ZoneType,
)
from dashboard.fields import literal_defaults, now_defaults


class AlertRuleQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def search(self, text: str):
        return self.filter(name__icontains=text) if text else self

    def using_zone(self, zone_id: str):
        # JSONB containment: zone_ids @> '["zone"]'.
        return self.filter(zone_ids__contains=[zone_id])


class AlertRule(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)  # noqa: DJ001  (seed: nullable)
    enabled = models.BooleanField(**literal_defaults(True))
    severity = models.CharField(max_length=10, choices=Severity.choices, **literal_defaults(Severity.MEDIUM))
    risk_threshold = models.IntegerField(null=True, blank=True)
    # The seed says JSON; stored as JSONB so containment queries and GIN are possible.
    object_types = models.JSONField(null=True, blank=True)
    camera_ids = models.JSONField(null=True, blank=True)
    zone_ids = models.JSONField(null=True, blank=True)
    min_confidence = models.FloatField(null=True, blank=True)
    schedule = models.JSONField(null=True, blank=True)
    conditions = models.JSONField(null=True, blank=True)
    dedup_key_template = models.CharField(max_length=255, **literal_defaults(DEFAULT_DEDUP_TEMPLATE))
    cooldown_seconds = models.IntegerField(**literal_defaults(300))
    channels = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())
    updated_at = models.DateTimeField(**now_defaults())

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        db_table = "alert_rules"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(risk_threshold__isnull=True) | Q(risk_threshold__gte=0, risk_threshold__lte=100),
                name="ck_alert_rules_risk_threshold",
            ),
            models.CheckConstraint(
                condition=Q(min_confidence__isnull=True) | Q(min_confidence__gte=0.0, min_confidence__lte=1.0),
                name="ck_alert_rules_min_confidence",
            ),
            models.CheckConstraint(condition=Q(cooldown_seconds__gte=0), name="ck_alert_rules_cooldown_seconds"),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="ck_alert_rules_severity"),
        ]
        indexes = [
            models.Index(fields=["name"], name="idx_alert_rules_name"),
            models.Index(fields=["enabled"], name="idx_alert_rules_enabled"),
            models.Index(fields=["severity"], name="idx_alert_rules_severity"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # The engine's rule cache keys on max(updated_at); every save must move it.
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    @property
    def channel_list(self) -> list[dict]:
        return [c for c in (self.channels or []) if isinstance(c, dict)]

    def clean(self):
        errors = {}
        if self.risk_threshold is not None and not 0 <= self.risk_threshold <= 100:
            errors["risk_threshold"] = "Risk threshold must be between 0 and 100."
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            errors["min_confidence"] = "Minimum confidence must be between 0 and 1."
        if self.cooldown_seconds is not None and self.cooldown_seconds < 0:
            errors["cooldown_seconds"] = "Cooldown cannot be negative."
        if self.dedup_key_template:
            from alerting.choices import DEDUP_PLACEHOLDERS

            unknown = sorted(set(re.findall(r"{([^{}]*)}", self.dedup_key_template)) - set(DEDUP_PLACEHOLDERS))
            if unknown:
                errors["dedup_key_template"] = (
                    f"Unknown placeholder(s): {', '.join('{' + u + '}' for u in unknown)}. "
                    f"Allowed: {', '.join('{' + p + '}' for p in DEDUP_PLACEHOLDERS)}."
                )
        if errors:
            raise ValidationError(errors)


class AlertQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=[AlertStatus.PENDING, AlertStatus.DELIVERED])

    def between(self, start, end):
        return self.filter(created_at__gte=start, created_at__lt=end)

    def newest_first(self):
        # Keyset order of the inbox, served by idx_alerts_created_at (id breaks ties).
        return self.order_by("-created_at", "-id")

    def for_camera(self, camera_id):
        return self.filter(event__camera_id=camera_id)


class Alert(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey("dashboard.Event", on_delete=models.CASCADE, related_name="alerts", db_index=False)
    rule = models.ForeignKey(
        AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts", db_index=False
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, **literal_defaults(Severity.MEDIUM))
    status = models.CharField(max_length=20, choices=AlertStatus.choices, **literal_defaults(AlertStatus.PENDING))
    created_at = models.DateTimeField(**now_defaults())
    updated_at = models.DateTimeField(**now_defaults())
    delivered_at = models.DateTimeField(null=True, blank=True)
    channels = models.JSONField(null=True, blank=True)
    dedup_key = models.CharField(max_length=255)
    metadata = models.JSONField(null=True, blank=True)
    version_id = models.IntegerField(**literal_defaults(1))

    objects = AlertQuerySet.as_manager()

    class Meta:
        db_table = "alerts"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="ck_alerts_severity"),
            models.CheckConstraint(condition=Q(status__in=AlertStatus.values), name="ck_alerts_status"),
            models.CheckConstraint(condition=Q(version_id__gte=1), name="ck_alerts_version_id"),
        ]
        indexes = [
            models.Index(fields=["event"], name="idx_alerts_event_id"),
            models.Index(fields=["rule"], name="idx_alerts_rule_id"),
            models.Index(fields=["severity"], name="idx_alerts_severity"),
            models.Index(fields=["status"], name="idx_alerts_status"),
            models.Index(fields=["created_at"], name="idx_alerts_created_at"),
            models.Index(fields=["dedup_key"], name="idx_alerts_dedup_key"),
            models.Index(fields=["dedup_key", "created_at"], name="idx_alerts_dedup_key_created_at"),
            models.Index(fields=["delivered_at"], name="idx_alerts_delivered_at"),
            models.Index(fields=["event", "rule", "delivered_at"], name="idx_alerts_event_rule_delivered"),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()} alert {str(self.pk)[:8]} ({self.status})"

    @property
    def matched_conditions(self) -> list:
        return list((self.metadata or {}).get("matched_conditions") or [])

    @property
    def can_acknowledge(self) -> bool:
        from alerting.choices import ACKNOWLEDGEABLE

        return self.status in ACKNOWLEDGEABLE

    @property
    def can_dismiss(self) -> bool:
        return self.status != AlertStatus.DISMISSED


class NotificationDeliveryQuerySet(models.QuerySet):
    def for_channel(self, channel_type: str, target: str):
        return self.filter(channel_type=channel_type, target=target)

    def succeeded(self):
        return self.filter(status=DeliveryStatus.SUCCEEDED)


class NotificationDelivery(models.Model):
    """One attempt to deliver one alert through one channel (beyond the seed: `alert_deliveries`)."""

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    channel_type = models.CharField(max_length=20, choices=ChannelType.choices)
    # URL for webhooks, comma-separated recipients for email; never the webhook secret.
    target = models.CharField(max_length=1000)
    attempt = models.IntegerField(**literal_defaults(1))
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, **literal_defaults(DeliveryStatus.PENDING))
    http_status = models.IntegerField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)  # noqa: DJ001  (NULL: no error)
    created_at = models.DateTimeField(**now_defaults())
    finished_at = models.DateTimeField(null=True, blank=True)
    # The tracked job (jobs.id) that made this attempt; no FK so job retention cannot delete history.
    job_id = models.UUIDField(null=True, blank=True)

    objects = NotificationDeliveryQuerySet.as_manager()

    class Meta:
        db_table = "alert_deliveries"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel_type__in=ChannelType.values), name="ck_alert_deliveries_channel"
            ),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="ck_alert_deliveries_status"),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="ck_alert_deliveries_attempt"),
            # One row per attempt: a job that runs twice cannot record the same attempt twice.
            models.UniqueConstraint(
                fields=["alert", "channel_type", "target", "attempt"], name="uq_alert_deliveries_attempt"
            ),
        ]
        indexes = [
            # Alert detail (deliveries of one alert, in order) and the "all channels succeeded" check.
            models.Index(fields=["alert", "created_at"], name="idx_alert_deliveries_alert"),
            # Operators looking for failing channels across alerts, newest first.
            models.Index(fields=["status", "-created_at"], name="idx_alert_deliveries_status"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_type} → {self.target} #{self.attempt} ({self.status})"


class CameraZoneQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def for_camera(self, camera_id):
        return self.filter(camera_id=camera_id)


class CameraZone(models.Model):
    id = models.CharField(primary_key=True, max_length=100, help_text="User-defined id, e.g. front_door_porch")
    camera = models.ForeignKey("dashboard.Camera", on_delete=models.CASCADE, related_name="zones", db_index=False)
    name = models.CharField(max_length=255)
    zone_type = models.CharField(max_length=20, choices=ZoneType.choices, **literal_defaults(ZoneType.OTHER))
    coordinates = models.JSONField(help_text="Normalised [[x, y], ...] points in [0, 1]")
    shape = models.CharField(max_length=20, choices=ZoneShape.choices, **literal_defaults(ZoneShape.RECTANGLE))
    color = models.CharField(max_length=7, **literal_defaults("#3B82F6"))
    enabled = models.BooleanField(**literal_defaults(True))
    priority = models.IntegerField(**literal_defaults(0))
    created_at = models.DateTimeField(**now_defaults())
    updated_at = models.DateTimeField(**now_defaults())

    objects = CameraZoneQuerySet.as_manager()

    class Meta:
        db_table = "camera_zones"
        ordering = ["camera_id", "-priority", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(priority__gte=0), name="ck_camera_zones_priority"),
            models.CheckConstraint(condition=Q(color__regex=r"^#[0-9A-Fa-f]{6}$"), name="ck_camera_zones_color"),
            models.CheckConstraint(condition=Q(zone_type__in=ZoneType.values), name="ck_camera_zones_zone_type"),
            models.CheckConstraint(condition=Q(shape__in=ZoneShape.values), name="ck_camera_zones_shape"),
        ]
        indexes = [
            models.Index(fields=["camera"], name="idx_camera_zones_camera_id"),
            models.Index(fields=["enabled"], name="idx_camera_zones_enabled"),
            models.Index(fields=["camera", "enabled"], name="idx_camera_zones_camera_enabled"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.camera_id})"

    def save(self, *args, **kwargs):
        # The engine's zone cache keys on max(updated_at); every save must move it.
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    def clean(self):
        from alerting.services.geometry import validate_zone_points

        errors = {}
        if self.priority is not None and self.priority < 0:
            errors["priority"] = "Priority must be 0 or more."
        if self.color and not re.fullmatch(r"#[0-9A-Fa-f]{6}", self.color):
            errors["color"] = "Colour must look like #RRGGBB."
        try:
            validate_zone_points(self.coordinates, self.shape)
        except ValidationError as exc:
            errors["coordinates"] = exc.messages
        if errors:
            raise ValidationError(errors)


class ActivityBaseline(models.Model):
    camera = models.ForeignKey(
        "dashboard.Camera", on_delete=models.CASCADE, related_name="activity_baselines", db_index=False
    )
    hour = models.IntegerField()
    day_of_week = models.IntegerField(help_text="0=Monday … 6=Sunday")
    avg_count = models.FloatField(**literal_defaults(0.0))
    sample_count = models.IntegerField(**literal_defaults(0))
    last_updated = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "activity_baselines"
        constraints = [
            models.UniqueConstraint(fields=["camera", "hour", "day_of_week"], name="uq_activity_baselines_slot"),
            models.CheckConstraint(condition=Q(hour__gte=0, hour__lte=23), name="ck_activity_baselines_hour"),
            models.CheckConstraint(
                condition=Q(day_of_week__gte=0, day_of_week__lte=6), name="ck_activity_baselines_day_of_week"
            ),
        ]
        indexes = [
            models.Index(fields=["camera"], name="idx_activity_baseline_camera"),
            models.Index(fields=["camera", "hour", "day_of_week"], name="idx_activity_baseline_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.camera_id} d{self.day_of_week} h{self.hour}: {self.avg_count:.2f}"

    def clean(self):
        errors = {}
        if self.hour is not None and not 0 <= self.hour <= 23:
            errors["hour"] = "Hour must be between 0 and 23."
        if self.day_of_week is not None and not 0 <= self.day_of_week <= 6:
            errors["day_of_week"] = "Day of week must be between 0 (Monday) and 6 (Sunday)."
        if errors:
            raise ValidationError(errors)


class ClassBaseline(models.Model):
    camera = models.ForeignKey(
        "dashboard.Camera", on_delete=models.CASCADE, related_name="class_baselines", db_index=False
    )
    detection_class = models.CharField()
    hour = models.IntegerField()
    frequency = models.FloatField(**literal_defaults(0.0))
    sample_count = models.IntegerField(**literal_defaults(0))
    last_updated = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "class_baselines"
        constraints = [
            models.UniqueConstraint(fields=["camera", "detection_class", "hour"], name="uq_class_baselines_slot"),
            models.CheckConstraint(condition=Q(hour__gte=0, hour__lte=23), name="ck_class_baselines_hour"),
        ]
        indexes = [
            models.Index(fields=["camera"], name="idx_class_baseline_camera"),
            models.Index(fields=["camera", "detection_class"], name="idx_class_baseline_class"),
            models.Index(fields=["camera", "detection_class", "hour"], name="idx_class_baseline_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.camera_id} {self.detection_class} h{self.hour}: {self.frequency:.2f}"

    def clean(self):
        if self.hour is not None and not 0 <= self.hour <= 23:
            raise ValidationError({"hour": "Hour must be between 0 and 23."})
