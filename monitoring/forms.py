"""Forms of the monitoring pages: the filter forms' cross-field checks and the GPU history selector."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.dateparse import parse_datetime

# (label, span, bucket width): ~120-360 points per chart whatever the range.
GPU_RANGES: dict[str, tuple[str, dt.timedelta, dt.timedelta]] = {
    "1h": ("1 hour", dt.timedelta(hours=1), dt.timedelta(seconds=30)),
    "6h": ("6 hours", dt.timedelta(hours=6), dt.timedelta(minutes=2)),
    "24h": ("24 hours", dt.timedelta(hours=24), dt.timedelta(minutes=5)),
    "7d": ("7 days", dt.timedelta(days=7), dt.timedelta(minutes=30)),
    "30d": ("30 days", dt.timedelta(days=30), dt.timedelta(hours=2)),
}
DEFAULT_GPU_RANGE = "1h"


class TimeRangeForm(forms.Form):
    """Base form of the log and audit FilterSets: the range must run forwards."""

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("timestamp__gte"), cleaned.get("timestamp__lt")
        if start and end and start >= end:
            raise forms.ValidationError("The start of the time range must be before its end.")
        return cleaned


class CursorField(forms.CharField):
    """A keyset page link, "<ISO timestamp>,<id>" → (datetime, id)."""

    widget = forms.HiddenInput

    def clean(self, value):
        value = super().clean(value)
        return parse_cursor(value) if value else None


def parse_cursor(value: str) -> tuple[dt.datetime, int]:
    """ "<ISO timestamp>,<id>" → (aware datetime, id); ValidationError when malformed."""
    stamp, _, pk = value.rpartition(",")
    when = parse_datetime(stamp) if stamp else None
    if when is None or when.tzinfo is None or not pk.isdigit() or len(pk) > 12:
        raise forms.ValidationError("This page link is malformed; start again from the first page.")
    return when, int(pk)


def make_cursor(timestamp: dt.datetime, pk: int) -> str:
    return f"{timestamp.isoformat()},{pk}"


class GpuHistoryForm(forms.Form):
    range = forms.ChoiceField(choices=[(k, v[0]) for k, v in GPU_RANGES.items()], required=False)
    gpu = forms.ChoiceField(choices=[], required=False, label="GPU")

    def __init__(self, *args, gpus: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gpu"].choices = list(gpus)

    def clean_range(self):
        return self.cleaned_data.get("range") or DEFAULT_GPU_RANGE

    def clean_gpu(self):
        value = self.cleaned_data.get("gpu") or ""
        if not value:
            choices = self.fields["gpu"].choices
            value = choices[0][0] if choices else ""
        return value
