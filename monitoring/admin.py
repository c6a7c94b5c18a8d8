"""Admin for GPU samples, application logs and the audit trail: all read-only.

These are the biggest tables in the system. List filters are limited to
choice/boolean fields and recent time windows (a filter on a free-text column
would run SELECT DISTINCT over the whole table just to draw its links), and
sorting is limited to columns an index can return in order.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.postgres.search import SearchQuery

from dashboard.admin_base import ReadOnlyModelAdmin, recent_filter
from monitoring.models import AuditLog, GpuStat, Log, SamplerStatus


@admin.register(GpuStat)
class GpuStatAdmin(ReadOnlyModelAdmin):
    list_display = (
        "recorded_at",
        "host",
        "gpu_index",
        "gpu_name",
        "gpu_utilization",
        "memory_used",
        "memory_total",
        "temperature",
        "power_usage",
        "inference_fps",
    )
    list_filter = (recent_filter("recorded_at", "recorded"),)
    # The seed's index on recorded_at is BRIN, which cannot return rows in order;
    # idx_gpu_stats_gpu_recorded_at (host, gpu_index, -recorded_at) can: newest
    # first per GPU, without sorting the whole table.
    ordering = ("host", "gpu_index", "-recorded_at")
    sortable_by = ()


@admin.register(Log)
class LogAdmin(ReadOnlyModelAdmin):
    list_display = ("timestamp", "level", "component", "short_message", "camera_id", "source")
    list_filter = ("level", "source", recent_filter("timestamp"))
    sortable_by = ("timestamp",)  # idx_logs_timestamp
    search_fields = ("search_vector",)
    search_help_text = 'Full-text search of message, component and level (e.g. timeout -debug, "camera offline").'
    exclude = ("search_vector",)

    @admin.display(description="message")
    def short_message(self, obj):
        return obj.message if len(obj.message) <= 120 else obj.message[:119] + "…"

    def get_search_results(self, request, queryset, search_term):
        # The stored tsvector and its GIN index (idx_logs_search_vector) answer the
        # search; the stock icontains on message would scan every row.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(search_vector=SearchQuery(term, search_type="websearch", config="english")), False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyModelAdmin):
    list_display = ("timestamp", "actor", "action", "resource_type", "resource_id", "status", "ip_address")
    list_filter = ("status", recent_filter("timestamp"))
    sortable_by = ("timestamp",)  # idx_audit_logs_timestamp
    # Exact matches on indexed columns (idx_audit_logs_actor/_action/_resource_type/_resource).
    search_fields = ("actor__exact", "action__exact", "resource_type__exact", "resource_id__exact")
    search_help_text = "Exact actor, action, resource type or resource id."


@admin.register(SamplerStatus)
class SamplerStatusAdmin(ReadOnlyModelAdmin):
    """Written by the GPU sampler on each host; shown for diagnosis only."""

    list_display = ("host", "available", "gpu_count", "driver_version", "reason", "updated_at")
    list_filter = ("available",)
    search_fields = ("host",)
