"""FilterSets of the log and audit explorers (django-filter). Bad values → form errors, not 500s."""

from __future__ import annotations

import django_filters
from django import forms

from monitoring.choices import AuditStatus, LogLevel, LogSource
from monitoring.forms import CursorField, TimeRangeForm
from monitoring.models import AuditLog, Log

_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S")


class CursorFilter(django_filters.Filter):
    """`?before=<timestamp>,<id>`: the keyset page after that row (newest-first order)."""

    field_class = CursorField

    def filter(self, qs, value):
        return qs.before(*value) if value else qs


class LogFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_q",
        label="Search",
        max_length=200,
        help_text='Web search syntax: words, "exact phrase", or, -exclude.',
    )
    level = django_filters.MultipleChoiceFilter(
        choices=LogLevel.choices, widget=forms.CheckboxSelectMultiple, label="Levels"
    )
    component = django_filters.CharFilter(max_length=50)  # idx_logs_component (exact match)
    camera = django_filters.CharFilter(field_name="camera_id", max_length=100, label="Camera")  # idx_logs_camera_id
    source = django_filters.ChoiceFilter(choices=LogSource.choices, empty_label="any")
    timestamp__gte = django_filters.DateTimeFilter(
        field_name="timestamp", lookup_expr="gte", label="From", widget=_DATETIME
    )
    timestamp__lt = django_filters.DateTimeFilter(
        field_name="timestamp", lookup_expr="lt", label="Until", widget=_DATETIME
    )
    before = CursorFilter(label="Page")

    class Meta:
        model = Log
        form = TimeRangeForm
        fields = ["q", "level", "component", "camera", "source", "timestamp__gte", "timestamp__lt", "before"]

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.search(value) if value else queryset


class AuditFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(max_length=50)  # idx_audit_logs_action
    resource_type = django_filters.CharFilter(max_length=50, label="Resource type")  # idx_audit_logs_resource_type
    resource_id = django_filters.CharFilter(max_length=255, label="Resource id")  # idx_audit_logs_resource
    actor = django_filters.CharFilter(max_length=100)  # idx_audit_logs_actor
    status = django_filters.MultipleChoiceFilter(choices=AuditStatus.choices, widget=forms.CheckboxSelectMultiple)
    timestamp__gte = django_filters.DateTimeFilter(
        field_name="timestamp", lookup_expr="gte", label="From", widget=_DATETIME
    )
    timestamp__lt = django_filters.DateTimeFilter(
        field_name="timestamp", lookup_expr="lt", label="Until", widget=_DATETIME
    )
    before = CursorFilter(label="Page")

    class Meta:
        model = AuditLog
        form = TimeRangeForm
        fields = [
            "action",
            "resource_type",
            "resource_id",
            "actor",
            "status",
            "timestamp__gte",
            "timestamp__lt",
            "before",
        ]
