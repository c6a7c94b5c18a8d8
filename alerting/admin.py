"""Admin for alert rules, alerts, camera zones and the learned baselines.

Rule and zone validation (placeholders, geometry, colour, bounds) lives in the
models' clean(), which the admin form runs, so bad values come back as form
errors rather than database errors.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from alerting.models import ActivityBaseline, Alert, AlertRule, CameraZone, ClassBaseline, NotificationDelivery
from dashboard.admin_base import ReadOnlyModelAdmin, ReadOnlyTabularInline, WatchpostModelAdmin, recent_filter


class AlertRuleAdminForm(forms.ModelForm):
    """The JSON fields get the same checks as the rule page's form, so the admin cannot
    store a schedule or channel list the rule engine would have to skip."""

    class Meta:
        model = AlertRule
        fields = (
            "name", "description", "enabled", "severity", "risk_threshold", "min_confidence", "object_types",
            "camera_ids", "zone_ids", "schedule", "dedup_key_template", "cooldown_seconds", "channels", "conditions",
        )  # fmt: skip

    def clean_schedule(self):
        from alerting.services.schedule import ScheduleError, parse_schedule

        raw = self.cleaned_data.get("schedule")
        try:
            parse_schedule(raw)
        except ScheduleError as exc:
            raise ValidationError(f"{exc.field}: {exc.message}")
        return raw

    def clean_channels(self):
        from alerting.services.notify import validate_channels

        raw = self.cleaned_data.get("channels")
        return None if raw in (None, "", []) else validate_channels(raw)


@admin.register(AlertRule)
class AlertRuleAdmin(WatchpostModelAdmin):
    form = AlertRuleAdminForm
    list_display = ("name", "enabled", "severity", "risk_threshold", "min_confidence", "cooldown_seconds", "updated_at")
    list_filter = ("enabled", "severity")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled", "severity")}),
        ("Conditions", {"fields": ("risk_threshold", "min_confidence", "object_types", "camera_ids", "zone_ids")}),
        (
            "Schedule",
            {
                "fields": ("schedule",),
                "description": 'e.g. {"days": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00", '
                '"timezone": "Europe/London"} (0 = Monday; start after end spans midnight).',
            },
        ),
        ("Delivery", {"fields": ("dedup_key_template", "cooldown_seconds", "channels")}),
        ("Legacy", {"classes": ["collapse"], "fields": ("conditions",)}),
    )


class DeliveryInline(ReadOnlyTabularInline):
    model = NotificationDelivery
    fields = ("created_at", "channel_type", "target", "attempt", "status", "http_status", "error", "finished_at")
    readonly_fields = fields
    show_change_link = False


@admin.register(Alert)
class AlertAdmin(WatchpostModelAdmin):
    list_display = ("id", "created_at", "severity", "status", "rule", "event", "dedup_key", "delivered_at")
    # Rules are few, so the rule filter lists a handful of rows; events are not (raw id).
    # recent_filter (an idx_alerts_created_at range), not date_hierarchy: drawing its links reads every alert.
    list_filter = ("status", "severity", "rule", recent_filter("created_at", "created"))
    sortable_by = ("created_at", "delivered_at")
    # rule is nullable, which the admin's automatic select_related() skips.
    list_select_related = ("rule", "event")
    raw_id_fields = ("event",)
    autocomplete_fields = ("rule",)
    # Dedup keys are exact (idx_alerts_dedup_key).
    search_fields = ("dedup_key__exact",)
    id_search_fields = ("id", "event")
    search_help_text = "An alert id, an event id, or an exact dedup key."
    # Bumped by the alert's own update methods (optimistic locking), never by hand.
    readonly_fields = ("version_id",)
    inlines = [DeliveryInline]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyModelAdmin):
    """Delivery attempts are history written by the channel senders."""

    list_display = ("created_at", "alert", "channel_type", "target", "attempt", "status", "http_status")
    list_filter = ("status", "channel_type", recent_filter("created_at", "created"))
    list_select_related = ("alert",)
    id_search_fields = ("alert",)
    search_help_text = "An alert id."


@admin.register(CameraZone)
class CameraZoneAdmin(WatchpostModelAdmin):
    list_display = ("id", "name", "camera", "zone_type", "shape", "color", "enabled", "priority", "updated_at")
    list_filter = ("camera", "zone_type", "shape", "enabled")
    search_fields = ("id", "name")
    autocomplete_fields = ("camera",)

    def get_readonly_fields(self, request, obj=None):
        # The id is the primary key (rules refer to it in zone_ids).
        return ("id",) if obj is not None else ()


@admin.register(ActivityBaseline)
class ActivityBaselineAdmin(WatchpostModelAdmin):
    list_display = ("camera", "day_of_week", "hour", "avg_count", "sample_count", "last_updated")
    list_filter = ("camera", "day_of_week")
    ordering = ("camera", "day_of_week", "hour")  # a small table: cameras × 168 slots
    autocomplete_fields = ("camera",)


@admin.register(ClassBaseline)
class ClassBaselineAdmin(WatchpostModelAdmin):
    list_display = ("camera", "detection_class", "hour", "frequency", "sample_count", "last_updated")
    list_filter = ("camera", "detection_class")
    ordering = ("camera", "detection_class", "hour")  # idx_class_baseline_slot
    autocomplete_fields = ("camera",)
