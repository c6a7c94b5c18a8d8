from __future__ import annotations

import re

import django_filters as filters
from django import forms
from django.db.models import Exists, OuterRef

from alerting.models import Alert
from dashboard.choices import RiskLevel
from dashboard.forms import EventFilterForm
from dashboard.models import Camera, Event, EventFeedback


def yes_no_filter(*, any_label="Any", yes="Yes", no="No", **kwargs):
    """A strict yes/no filter ("true"/"false"): an unknown value is a form error, where
    django-filter's BooleanFilter would silently read it as "any". Used by the events,
    rules and jobs lists."""
    choices = [("", any_label), ("true", yes), ("false", no)]
    return filters.TypedChoiceFilter(choices=choices, coerce=lambda v: v == "true", **kwargs)


def _datetime_widget():
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def object_type_pattern(value: str) -> str:
    """events.object_types is a comma-separated list ("person,car"): a regex matching one whole item.

    Shared with the events export (jobs.services.exports), which must select the same rows."""
    return rf"(^|,)\s*{re.escape(value)}\s*(,|$)"


class EventFilterSet(filters.FilterSet):
    """Filters of the events list (and of "export these results", which reuses the query string)."""

    camera = filters.MultipleChoiceFilter(field_name="camera_id", choices=[], label="Camera")
    risk_level = filters.MultipleChoiceFilter(
        choices=RiskLevel.choices, widget=forms.CheckboxSelectMultiple, label="Risk level"
    )
    risk_score_min = filters.NumberFilter(
        field_name="risk_score", lookup_expr="gte", label="Risk score from", min_value=0, max_value=100
    )
    risk_score_max = filters.NumberFilter(
        field_name="risk_score", lookup_expr="lte", label="to", min_value=0, max_value=100
    )
    started_at__gte = filters.IsoDateTimeFilter(
        field_name="started_at", lookup_expr="gte", label="From", widget=_datetime_widget()
    )
    started_at__lt = filters.IsoDateTimeFilter(
        field_name="started_at", lookup_expr="lt", label="Until", widget=_datetime_widget()
    )
    reviewed = yes_no_filter(label="Reviewed")
    object_type = filters.CharFilter(method="filter_object_type", label="Object type", max_length=50)
    has_feedback = yes_no_filter(method="filter_has_feedback", label="Has feedback")
    has_alert = yes_no_filter(method="filter_has_alert", label="Has alert")

    class Meta:
        model = Event
        form = EventFilterForm
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Evaluated once here: a callable would be re-run for validation and again for rendering.
        self.filters["camera"].extra["choices"] = list(Camera.objects.order_by("name", "id").values_list("id", "name"))

    def filter_object_type(self, queryset, name, value):
        value = value.strip().lower()
        if not value:
            return queryset
        return queryset.filter(object_types__iregex=object_type_pattern(value))

    def filter_has_feedback(self, queryset, name, value):
        exists = Exists(EventFeedback.objects.filter(event=OuterRef("pk")))
        return queryset.filter(exists if value else ~exists)

    def filter_has_alert(self, queryset, name, value):
        exists = Exists(Alert.objects.filter(event=OuterRef("pk")))
        return queryset.filter(exists if value else ~exists)
