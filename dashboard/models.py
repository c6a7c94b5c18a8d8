"""Core domain: cameras, events, detections and what the enrichment models said about them.

`cameras`, `events`, `detections` and `event_detections` are not in the seed;
they are modelled minimally after the upstream system (DESIGN.md "Data").
The enrichment tables, `event_feedback` and `event_audits` follow the seed.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from dashboard.choices import CameraStatus, FeedbackType, RiskLevel, Severity, risk_level_for
from dashboard.fields import literal_defaults, now_defaults


class Camera(models.Model):
    id = models.CharField(primary_key=True, max_length=100, help_text="Slug, e.g. front_door")
    name = models.CharField(max_length=255)
    folder_path = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=20, choices=CameraStatus.choices, **literal_defaults(CameraStatus.ONLINE))
    # Latest frame (path under MEDIA_ROOT) shown under zones and detections.
    frame_path = models.CharField(max_length=500, null=True, blank=True)
    frame_width = models.IntegerField(null=True, blank=True)
    frame_height = models.IntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "cameras"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CameraStatus.values), name="ck_cameras_status"),
            models.CheckConstraint(condition=Q(id__regex=r"^[a-z0-9][a-z0-9_-]*$"), name="ck_cameras_id_slug"),
        ]

    def __str__(self) -> str:
        return self.name or self.id


class EventQuerySet(models.QuerySet):
    def between(self, start, end):
        return self.filter(started_at__gte=start, started_at__lt=end)

    def for_camera(self, camera_id):
        return self.filter(camera_id=camera_id)

    def unreviewed(self):
        return self.filter(reviewed=False)


class Event(models.Model):
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="events", db_index=False)
    started_at = models.DateTimeField(**now_defaults())
    ended_at = models.DateTimeField(null=True, blank=True)
    risk_score = models.IntegerField(null=True, blank=True)
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, null=True, blank=True)
    summary = models.TextField(blank=True, default="")
    reasoning = models.TextField(blank=True, default="")
    object_types = models.CharField(max_length=255, blank=True, default="", help_text="Comma-separated classes")
    reviewed = models.BooleanField(**literal_defaults(False))
    notes = models.TextField(null=True, blank=True)
    detections = models.ManyToManyField("Detection", through="EventDetection", related_name="events")

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "events"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(risk_score__isnull=True) | Q(risk_score__gte=0, risk_score__lte=100),
                name="ck_events_risk_score",
            ),
            models.CheckConstraint(
                condition=Q(risk_level__isnull=True) | Q(risk_level__in=RiskLevel.values), name="ck_events_risk_level"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="ck_events_ended_after_started",
            ),
        ]
        indexes = [
            # Events list (newest first, keyset on (started_at, id)) and the overview's "today".
            models.Index(fields=["-started_at", "-id"], name="idx_events_started_at_id"),
            # Events list filtered by camera, newest first.
            models.Index(fields=["camera", "-started_at"], name="idx_events_camera_started_at"),
            models.Index(fields=["risk_level"], name="idx_events_risk_level"),
            BrinIndex(fields=["started_at"], name="ix_events_started_at_brin"),
        ]

    def __str__(self) -> str:
        return f"Event {self.pk} on {self.camera_id}"

    def clean(self):
        if self.risk_score is not None and not 0 <= self.risk_score <= 100:
            raise ValidationError({"risk_score": "Risk score must be between 0 and 100."})
        if self.ended_at and self.started_at and self.ended_at < self.started_at:
            raise ValidationError({"ended_at": "An event cannot end before it starts."})

    def save(self, *args, **kwargs):
        if self.risk_score is not None and not self.risk_level:
            self.risk_level = risk_level_for(self.risk_score)
        super().save(*args, **kwargs)


class Detection(models.Model):
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="detections", db_index=False)
    detected_at = models.DateTimeField(**now_defaults())
    object_type = models.CharField(max_length=50)
    confidence = models.FloatField()
    # Pixel bounding box in the source frame; zone matching normalises by image size.
    bbox_x = models.IntegerField()
    bbox_y = models.IntegerField()
    bbox_width = models.IntegerField()
    bbox_height = models.IntegerField()
    image_width = models.IntegerField(**literal_defaults(1920))
    image_height = models.IntegerField(**literal_defaults(1080))
    file_path = models.CharField(max_length=500, null=True, blank=True)

    class Meta:
        db_table = "detections"
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0.0, confidence__lte=1.0), name="ck_detections_confidence"
            ),
            models.CheckConstraint(condition=Q(bbox_width__gte=0, bbox_height__gte=0), name="ck_detections_bbox_size"),
            models.CheckConstraint(condition=Q(image_width__gt=0, image_height__gt=0), name="ck_detections_image_size"),
        ]
        indexes = [
            # inference_fps (detections in the last 60 s) and baselines read by time.
            models.Index(fields=["detected_at"], name="idx_detections_detected_at"),
            models.Index(fields=["camera", "detected_at"], name="idx_detections_camera_time"),
            models.Index(fields=["object_type"], name="idx_detections_object_type"),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} ({self.confidence:.2f}) on {self.camera_id}"

    def clean(self):
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValidationError({"confidence": "Confidence must be between 0 and 1."})

    @property
    def centre(self) -> tuple[float, float]:
        """Bounding-box centre normalised to [0, 1] by the frame size."""
        return (
            (self.bbox_x + self.bbox_width / 2) / self.image_width,
            (self.bbox_y + self.bbox_height / 2) / self.image_height,
        )


class EventDetection(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, db_index=False)
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, db_index=False)

    class Meta:
        db_table = "event_detections"
        constraints = [
            models.UniqueConstraint(fields=["event", "detection"], name="uq_event_detections_event_detection"),
        ]
        indexes = [models.Index(fields=["detection"], name="idx_event_detections_detection")]

    def __str__(self) -> str:
        return f"{self.event_id} ↔ {self.detection_id}"


# --- Enrichment results (seed: pose_results … action_results) --------------------------


class PoseResult(models.Model):
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="pose_results", db_index=False)
    keypoints = models.JSONField(help_text="17 COCO keypoints [[x, y, conf], ...]")
    pose_class = models.CharField()
    confidence = models.FloatField()
    is_suspicious = models.BooleanField(**literal_defaults(False))
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "pose_results"
        constraints = [
            models.UniqueConstraint(fields=["detection"], name="uq_pose_results_detection_id"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0.0, confidence__lte=1.0), name="ck_pose_results_confidence"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pose_class} ({self.confidence:.2f})"


class ThreatDetection(models.Model):
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="threats", db_index=False)
    threat_type = models.CharField()
    confidence = models.FloatField()
    severity = models.CharField(choices=Severity.choices)
    bbox = models.JSONField(null=True, blank=True, help_text="[x1, y1, x2, y2]")
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "threat_detections"
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0.0, confidence__lte=1.0), name="ck_threat_detections_confidence"
            ),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="ck_threat_detections_severity"),
        ]
        indexes = [models.Index(fields=["detection"], name="idx_threat_detections_detection")]

    def __str__(self) -> str:
        return f"{self.threat_type} ({self.severity})"


class DemographicsResult(models.Model):
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="demographics", db_index=False)
    age_range = models.CharField()
    age_confidence = models.FloatField()
    gender = models.CharField()
    gender_confidence = models.FloatField()
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "demographics_results"
        constraints = [
            models.UniqueConstraint(fields=["detection"], name="uq_demographics_results_detection_id"),
            models.CheckConstraint(
                condition=Q(
                    age_confidence__gte=0.0,
                    age_confidence__lte=1.0,
                    gender_confidence__gte=0.0,
                    gender_confidence__lte=1.0,
                ),
                name="ck_demographics_results_confidence",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gender}, {self.age_range}"


class ReidEmbedding(models.Model):
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="reid_embeddings", db_index=False)
    # Source of truth for the 512-d vector; a pgvector copy may index it where available.
    embedding = models.JSONField()
    embedding_hash = models.CharField(help_text="SHA-256 of the embedding")
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "reid_embeddings"
        constraints = [models.UniqueConstraint(fields=["detection"], name="uq_reid_embeddings_detection_id")]
        indexes = [models.Index(fields=["embedding_hash"], name="idx_reid_embeddings_hash")]

    def __str__(self) -> str:
        return f"re-id {self.embedding_hash[:12]}"

    def clean(self):
        from dashboard.services.reid import InvalidEmbedding, validate_embedding

        try:
            validate_embedding(self.embedding)
        except InvalidEmbedding as exc:
            raise ValidationError({"embedding": str(exc)})


class ActionResult(models.Model):
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="actions", db_index=False)
    action = models.CharField()
    confidence = models.FloatField()
    is_suspicious = models.BooleanField(**literal_defaults(False))
    all_scores = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "action_results"
        constraints = [
            models.UniqueConstraint(fields=["detection"], name="uq_action_results_detection_id"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0.0, confidence__lte=1.0), name="ck_action_results_confidence"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} ({self.confidence:.2f})"


# --- Review ---------------------------------------------------------------------------


class EventFeedback(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="feedback", db_index=False)
    feedback_type = models.CharField(choices=FeedbackType.choices)
    notes = models.TextField(null=True, blank=True)
    expected_severity = models.CharField(choices=Severity.choices, null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())

    class Meta:
        db_table = "event_feedback"
        constraints = [
            models.UniqueConstraint(fields=["event"], name="uq_event_feedback_event_id"),
            models.CheckConstraint(condition=Q(feedback_type__in=FeedbackType.values), name="ck_event_feedback_type"),
            models.CheckConstraint(
                condition=Q(expected_severity__isnull=True) | Q(expected_severity__in=Severity.values),
                name="ck_event_feedback_expected_severity",
            ),
        ]
        indexes = [
            models.Index(fields=["event"], name="idx_event_feedback_event_id"),
            models.Index(fields=["feedback_type"], name="idx_event_feedback_type"),
            models.Index(fields=["created_at"], name="idx_event_feedback_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_feedback_type_display()} on event {self.event_id}"


_SCORE_FIELDS = [
    "context_usage_score",
    "reasoning_coherence_score",
    "risk_justification_score",
    "consistency_score",
    "overall_quality_score",
]


class EventAudit(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="audits", db_index=False)
    audited_at = models.DateTimeField(**now_defaults())
    has_yolo26 = models.BooleanField(**literal_defaults(False))
    has_florence = models.BooleanField(**literal_defaults(False))
    has_clip = models.BooleanField(**literal_defaults(False))
    has_violence = models.BooleanField(**literal_defaults(False))
    has_clothing = models.BooleanField(**literal_defaults(False))
    has_vehicle = models.BooleanField(**literal_defaults(False))
    has_pet = models.BooleanField(**literal_defaults(False))
    has_weather = models.BooleanField(**literal_defaults(False))
    has_image_quality = models.BooleanField(**literal_defaults(False))
    has_zones = models.BooleanField(**literal_defaults(False))
    has_baseline = models.BooleanField(**literal_defaults(False))
    has_cross_camera = models.BooleanField(**literal_defaults(False))
    prompt_length = models.IntegerField(**literal_defaults(0))
    prompt_token_estimate = models.IntegerField(**literal_defaults(0))
    enrichment_utilization = models.FloatField(**literal_defaults(0.0))
    context_usage_score = models.FloatField(null=True, blank=True)
    reasoning_coherence_score = models.FloatField(null=True, blank=True)
    risk_justification_score = models.FloatField(null=True, blank=True)
    consistency_score = models.FloatField(null=True, blank=True)
    overall_quality_score = models.FloatField(null=True, blank=True)
    consistency_risk_score = models.IntegerField(null=True, blank=True)
    consistency_diff = models.IntegerField(null=True, blank=True)
    self_eval_critique = models.TextField(null=True, blank=True)
    self_eval_prompt = models.TextField(null=True, blank=True)
    self_eval_response = models.TextField(null=True, blank=True)
    missing_context = models.TextField(null=True, blank=True)
    confusing_sections = models.TextField(null=True, blank=True)
    unused_data = models.TextField(null=True, blank=True)
    format_suggestions = models.TextField(null=True, blank=True)
    model_gaps = models.TextField(null=True, blank=True)

    FLAG_FIELDS = [
        "has_yolo26", "has_florence", "has_clip", "has_violence", "has_clothing", "has_vehicle",
        "has_pet", "has_weather", "has_image_quality", "has_zones", "has_baseline", "has_cross_camera",
    ]  # fmt: skip
    SCORE_FIELDS = _SCORE_FIELDS

    class Meta:
        db_table = "event_audits"
        constraints = [
            models.UniqueConstraint(fields=["event"], name="uq_event_audits_event_id"),
            models.CheckConstraint(
                condition=Q(enrichment_utilization__gte=0.0, enrichment_utilization__lte=1.0),
                name="ck_event_audits_enrichment_utilization",
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{f}__isnull": True}) | Q(**{f"{f}__gte": 1.0, f"{f}__lte": 5.0}),
                    name=f"ck_event_audits_{f}",
                )
                for f in _SCORE_FIELDS
            ],
        ]
        indexes = [
            models.Index(fields=["event"], name="idx_event_audits_event_id"),
            models.Index(fields=["audited_at"], name="idx_event_audits_audited_at"),
            models.Index(fields=["overall_quality_score"], name="idx_event_audits_overall_score"),
        ]

    def __str__(self) -> str:
        return f"Audit of event {self.event_id}"

    def clean(self):
        errors = {}
        if self.enrichment_utilization is not None and not 0.0 <= self.enrichment_utilization <= 1.0:
            errors["enrichment_utilization"] = "Enrichment utilisation must be between 0 and 1."
        for f in _SCORE_FIELDS:
            v = getattr(self, f)
            if v is not None and not 1.0 <= v <= 5.0:
                errors[f] = "Scores run from 1 to 5."
        if errors:
            raise ValidationError(errors)


def today_start():
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
