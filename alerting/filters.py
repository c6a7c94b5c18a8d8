"""FilterSets of the alerting list pages (the export of alerts reuses AlertFilterSet)."""

from __future__ import annotations

import django_filters
from django import forms

from alerting.choices import AlertStatus, Severity
from alerting.models import Alert, AlertRule
from dashboard.filters import yes_no_filter
from dashboard.forms import LongSelect


class AlertFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=AlertStatus.choices, widget=forms.CheckboxSelectMultiple, label="Status"
    )
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices, widget=forms.CheckboxSelectMultiple, label="Severity"
    )
    # Events carry the camera; the join follows alerts.event_id (idx_alerts_event_id).
    camera = django_filters.CharFilter(field_name="event__camera_id", label="Camera")
    rule = django_filters.UUIDFilter(field_name="rule_id", label="Rule")
    created_at__gte = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    created_at__lt = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Before",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = Alert
        fields = ["status", "severity", "camera", "rule", "created_at__gte", "created_at__lt"]

    def __init__(self, *args, cameras=None, rules=None, **kwargs):
        super().__init__(*args, **kwargs)
        if cameras is not None:
            self.filters["camera"].field.widget = forms.Select(choices=[("", "Any camera"), *cameras])
        if rules is not None:
            self.filters["rule"].field.widget = LongSelect(choices=[("", "Any rule"), *rules])


class AlertRuleFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    enabled = yes_no_filter(any_label="Enabled or not", yes="Enabled", no="Disabled", label="Enabled")
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices, widget=forms.CheckboxSelectMultiple, label="Severity"
    )

    class Meta:
        model = AlertRule
        fields = ["q", "enabled", "severity"]

    def search(self, queryset, name, value):
        return queryset.search(value.strip())
