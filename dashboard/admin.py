"""Admin for cameras, events, detections, enrichment results and event reviews.

Events and detections grow without bound: their foreign keys use raw-id
widgets (no select box listing millions of rows), detections filter by recent
time windows rather than a date hierarchy, and searches by id go through the
primary key index (`id_search_fields`).
"""

from __future__ import annotations

from django.contrib import admin

from dashboard.admin_base import ReadOnlyTabularInline, WatchpostModelAdmin, recent_filter
from dashboard.models import (
    ActionResult,
    Camera,
    DemographicsResult,
    Detection,
    Event,
    EventAudit,
    EventDetection,
    EventFeedback,
    PoseResult,
    ReidEmbedding,
    ThreatDetection,
)


@admin.register(Camera)
class CameraAdmin(WatchpostModelAdmin):
    list_display = ("id", "name", "status", "last_seen_at", "frame_width", "frame_height", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "name")

    def get_readonly_fields(self, request, obj=None):
        # The slug is the primary key: editing it would create a second camera.
        return ("id",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        # Deleting a camera cascades to its whole history, and the confirmation
        # page would load every event and detection to list them. Retire a camera
        # by setting its status instead; an unused camera can still be deleted.
        if obj is not None and (obj.events.exists() or obj.detections.exists()):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class EventDetectionInline(admin.TabularInline):
    model = EventDetection
    extra = 0
    raw_id_fields = ("detection",)
    fields = ("detection", "object_type", "confidence", "detected_at")
    readonly_fields = ("object_type", "confidence", "detected_at")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("detection")

    @admin.display(description="object")
    def object_type(self, obj):
        return obj.detection.object_type if obj.detection_id else "-"

    @admin.display(description="confidence")
    def confidence(self, obj):
        return f"{obj.detection.confidence:.2f}" if obj.detection_id else "-"

    @admin.display(description="detected at")
    def detected_at(self, obj):
        return obj.detection.detected_at if obj.detection_id else "-"


class EventFeedbackInline(admin.StackedInline):
    model = EventFeedback
    extra = 0
    max_num = 1  # uq_event_feedback_event_id


@admin.register(Event)
class EventAdmin(WatchpostModelAdmin):
    list_display = (
        "id",
        "started_at",
        "camera",
        "risk_score",
        "risk_level",
        "object_types",
        "reviewed",
        "short_summary",
    )
    list_display_links = ("id", "started_at")
    # Few cameras, so the camera filter lists a handful of rows.
    # recent_filter, not date_hierarchy: drawing the hierarchy's links is a SELECT DISTINCT
    # date_trunc() over every event (340 ms at 1M events); a window is one index range.
    list_filter = ("risk_level", "reviewed", "camera", recent_filter("started_at", "started"))
    sortable_by = ("id", "started_at")
    autocomplete_fields = ("camera",)
    search_fields = ("summary",)
    id_search_fields = ("id",)
    search_help_text = "An event id, or words in the summary."
    inlines = [EventDetectionInline, EventFeedbackInline]

    @admin.display(description="summary")
    def short_summary(self, obj):
        return obj.summary if len(obj.summary) <= 100 else obj.summary[:99] + "…"


class PoseInline(ReadOnlyTabularInline):
    model = PoseResult
    fields = ("pose_class", "confidence", "is_suspicious", "created_at")
    readonly_fields = fields


class ThreatInline(ReadOnlyTabularInline):
    model = ThreatDetection
    fields = ("threat_type", "severity", "confidence", "bbox", "created_at")
    readonly_fields = fields


class DemographicsInline(ReadOnlyTabularInline):
    model = DemographicsResult
    fields = ("age_range", "age_confidence", "gender", "gender_confidence", "created_at")
    readonly_fields = fields


class ActionInline(ReadOnlyTabularInline):
    model = ActionResult
    fields = ("action", "confidence", "is_suspicious", "created_at")
    readonly_fields = fields


class ReidInline(ReadOnlyTabularInline):
    model = ReidEmbedding
    fields = ("embedding_hash", "created_at")  # the 512 floats are no use on screen
    readonly_fields = fields


@admin.register(Detection)
class DetectionAdmin(WatchpostModelAdmin):
    list_display = (
        "id",
        "detected_at",
        "camera",
        "object_type",
        "confidence",
        "bbox_x",
        "bbox_y",
        "bbox_width",
        "bbox_height",
    )
    list_filter = (recent_filter("detected_at", "detected"), "camera")
    sortable_by = ("id", "detected_at")
    autocomplete_fields = ("camera",)
    # object_type has idx_detections_object_type; an exact match uses it.
    search_fields = ("object_type__exact",)
    id_search_fields = ("id",)
    search_help_text = "A detection id, or an object class (person, car, …)."
    inlines = [PoseInline, ThreatInline, DemographicsInline, ActionInline, ReidInline]


@admin.register(EventDetection)
class EventDetectionAdmin(WatchpostModelAdmin):
    list_display = ("id", "event", "detection")
    raw_id_fields = ("event", "detection")
    id_search_fields = ("event", "detection")
    search_help_text = "An event id or a detection id."


class EnrichmentAdmin(WatchpostModelAdmin):
    """One result per detection; found by detection id."""

    raw_id_fields = ("detection",)
    id_search_fields = ("detection",)
    search_help_text = "A detection id."


@admin.register(PoseResult)
class PoseResultAdmin(EnrichmentAdmin):
    list_display = ("id", "detection", "pose_class", "confidence", "is_suspicious", "created_at")
    list_filter = ("is_suspicious",)


@admin.register(ThreatDetection)
class ThreatDetectionAdmin(EnrichmentAdmin):
    list_display = ("id", "detection", "threat_type", "severity", "confidence", "created_at")
    list_filter = ("severity",)


@admin.register(DemographicsResult)
class DemographicsResultAdmin(EnrichmentAdmin):
    list_display = ("id", "detection", "age_range", "age_confidence", "gender", "gender_confidence", "created_at")


@admin.register(ReidEmbedding)
class ReidEmbeddingAdmin(EnrichmentAdmin):
    list_display = ("id", "detection", "embedding_hash", "created_at")
    # Hashes are exact keys (idx_reid_embeddings_hash).
    search_fields = ("embedding_hash__exact",)
    search_help_text = "A detection id or an embedding hash."

    def get_queryset(self, request):
        # The list never shows the 512-float vector and decoding 50 of them was most of its time;
        # the change page loads it when its form asks (one more query there).
        return super().get_queryset(request).defer("embedding")


@admin.register(ActionResult)
class ActionResultAdmin(EnrichmentAdmin):
    list_display = ("id", "detection", "action", "confidence", "is_suspicious", "created_at")
    list_filter = ("is_suspicious",)


@admin.register(EventFeedback)
class EventFeedbackAdmin(WatchpostModelAdmin):
    list_display = ("id", "event", "feedback_type", "expected_severity", "created_at")
    list_filter = ("feedback_type", "expected_severity", recent_filter("created_at", "given"))
    raw_id_fields = ("event",)
    id_search_fields = ("event",)
    search_help_text = "An event id."


@admin.register(EventAudit)
class EventAuditAdmin(WatchpostModelAdmin):
    list_display = (
        "id",
        "event",
        "audited_at",
        "overall_quality_score",
        "enrichment_utilization",
        "prompt_length",
        "consistency_diff",
    )
    list_filter = (
        "has_florence", "has_clip", "has_zones", "has_baseline", "has_cross_camera", recent_filter("audited_at", "audited")
    )  # fmt: skip
    raw_id_fields = ("event",)
    id_search_fields = ("event",)
    search_help_text = "An event id."
    fieldsets = (
        (None, {"fields": ("event", "audited_at")}),
        ("Enrichment present", {"fields": EventAudit.FLAG_FIELDS}),
        ("Prompt", {"fields": ("prompt_length", "prompt_token_estimate", "enrichment_utilization")}),
        ("Scores (1–5)", {"fields": EventAudit.SCORE_FIELDS + ["consistency_risk_score", "consistency_diff"]}),
        (
            "Self-evaluation",
            {
                "classes": ["collapse"],
                "fields": (
                    "self_eval_critique",
                    "self_eval_prompt",
                    "self_eval_response",
                    "missing_context",
                    "confusing_sections",
                    "unused_data",
                    "format_suggestions",
                    "model_gaps",
                ),
            },
        ),
    )
