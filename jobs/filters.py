"""FilterSet of the jobs list (django-filter). Bad values become form errors, never 500s."""

from __future__ import annotations

import uuid

import django_filters
from django import forms
from django.db.models import Q

from dashboard.filters import yes_no_filter
from jobs.choices import JobStatus
from jobs.forms import JobListForm
from jobs.models import Job
from jobs.services.tracked import registered_types

_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S")


def _type_choices():
    return [(name, jt.label) for name, jt in sorted(registered_types().items())]


class JobFilter(django_filters.FilterSet):
    # idx_jobs_job_type_status / idx_jobs_status_created_at serve these.
    job_type = django_filters.ChoiceFilter(choices=_type_choices, empty_label="any type", label="Type")
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, widget=forms.CheckboxSelectMultiple)
    created_at__gte = django_filters.DateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Created from", widget=_DATETIME
    )
    created_at__lt = django_filters.DateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Created before", widget=_DATETIME
    )
    has_error = yes_no_filter(
        method="filter_has_error", label="Error", any_label="any", yes="with an error", no="without"
    )
    q = django_filters.CharFilter(method="filter_q", label="Search", max_length=200)

    class Meta:
        model = Job
        form = JobListForm
        fields = ["job_type", "status", "created_at__gte", "created_at__lt", "has_error", "q"]

    def filter_queryset(self, queryset):
        # `before` (the keyset cursor) is a form field, not a filter: the view applies it.
        for name, value in self.form.cleaned_data.items():
            if name in self.filters:
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def filter_has_error(self, queryset, name, value):
        with_error = Q(error_message__isnull=False) & ~Q(error_message="")
        return queryset.filter(with_error) if value else queryset.exclude(with_error)

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        try:
            # A pasted job id finds that job through the primary key.
            return queryset.filter(pk=uuid.UUID(value))
        except ValueError:
            pass
        # Within the keyset page this stops after 50 matches; the newest jobs are scanned first.
        return queryset.filter(
            Q(current_step__icontains=value)
            | Q(error_message__icontains=value)
            | Q(created_by__icontains=value)
            | Q(job_type__icontains=value)
        )
