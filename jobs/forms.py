"""Forms of the jobs, exports and backups pages."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.utils.dateparse import parse_datetime

from jobs.choices import ExportFormat, JobLogLevel


def parse_cursor(value: str) -> tuple[dt.datetime, str]:
    """`<iso timestamp>,<uuid>` of the last row shown; ValidationError if it does not parse."""
    import uuid

    stamp, _, pk = value.rpartition(",")
    moment = parse_datetime(stamp) if stamp else None
    try:
        key = str(uuid.UUID(pk))
    except ValueError:
        key = None
    if moment is None or key is None:
        raise forms.ValidationError("The page link is damaged; start again from the newest jobs.")
    return moment, key


def make_cursor(moment: dt.datetime, pk) -> str:
    return f"{moment.isoformat()},{pk}"


class JobListForm(forms.Form):
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_before(self):
        value = self.cleaned_data.get("before") or ""
        return parse_cursor(value) if value else None

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("created_at__gte"), cleaned.get("created_at__lt")
        if start and end and start >= end:
            raise forms.ValidationError("The start of the time range must be before its end.")
        return cleaned


LEVEL_ORDER = [JobLogLevel.DEBUG, JobLogLevel.INFO, JobLogLevel.WARNING, JobLogLevel.ERROR]


class LogLevelForm(forms.Form):
    level = forms.ChoiceField(choices=JobLogLevel.choices, required=False, label="Minimum level")

    def levels(self) -> list[str]:
        chosen = self.cleaned_data.get("level") if self.is_valid() else ""
        chosen = chosen or JobLogLevel.DEBUG
        return [str(lv) for lv in LEVEL_ORDER[LEVEL_ORDER.index(chosen) :]]


class ExportCreateForm(forms.Form):
    export_type = forms.ChoiceField(choices=[("events", "Events"), ("alerts", "Alerts")], widget=forms.HiddenInput)
    export_format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.CSV, label="Format")
    retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Keep for (days)",
        help_text="Empty: the default retention.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["retention_days"].widget.attrs["placeholder"] = str(settings.EXPORT_RETENTION_DAYS)


class AcknowledgeForm(forms.Form):
    acknowledge = forms.BooleanField(
        required=True,
        label="I understand this file contains sensitive surveillance data and will handle it accordingly.",
        error_messages={"required": "Please confirm that you understand the file contains sensitive data."},
    )


class LegalHoldForm(forms.Form):
    legal_hold = forms.BooleanField(required=False)


class RestoreUploadForm(forms.Form):
    archive = forms.FileField(label="Backup archive (.zip)")
    validate_only = forms.BooleanField(required=False, label="Only check the archive; change nothing")
    confirm = forms.BooleanField(
        required=False,
        label="I understand that restoring replaces every backed-up table with the archive's contents.",
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("validate_only") and not cleaned.get("confirm"):
            raise forms.ValidationError(
                "Tick the confirmation to replace the data, or choose to only check the archive."
            )
        return cleaned
