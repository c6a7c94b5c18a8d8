from __future__ import annotations

from django import forms

from dashboard.choices import FeedbackType, Severity
from dashboard.models import Event
from dashboard.services.events import BULK_REVIEW_MAX


class EventFilterForm(forms.Form):
    """Base form of EventFilterSet: checks that go across fields."""

    def clean(self):
        data = super().clean()
        lo, hi = data.get("risk_score_min"), data.get("risk_score_max")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("risk_score_max", "The maximum risk score must not be below the minimum.")
        start, end = data.get("started_at__gte"), data.get("started_at__lt")
        if start and end and start >= end:
            self.add_error("started_at__lt", "The end of the time range must be after its start.")
        return data


class BoundedModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Refuses an over-long list before it becomes an `IN (...)` query."""

    def __init__(self, *args, max_count: int, **kwargs):
        self.max_count = max_count
        super().__init__(*args, **kwargs)

    def clean(self, value):
        if value and len(value) > self.max_count:
            raise forms.ValidationError(f"At most {self.max_count} events can be marked at once.")
        return super().clean(value)


class BulkReviewForm(forms.Form):
    event_ids = BoundedModelMultipleChoiceField(
        queryset=Event.objects.only("id"),
        max_count=BULK_REVIEW_MAX,
        error_messages={"required": "Select at least one event to mark as reviewed."},
    )


class ReviewForm(forms.Form):
    reviewed = forms.BooleanField(required=False, label="Reviewed")
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        # Both forms of the event page have "notes": keep their element ids apart.
        kwargs.setdefault("auto_id", "review_%s")
        super().__init__(*args, **kwargs)


class FeedbackForm(forms.Form):
    feedback_type = forms.ChoiceField(choices=FeedbackType.choices, label="Feedback")
    expected_severity = forms.ChoiceField(
        choices=[("", "—")] + list(Severity.choices),
        required=False,
        label="Expected severity",
        help_text="What the risk level should have been, if it was wrong.",
    )
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "feedback_%s")
        super().__init__(*args, **kwargs)


class WindowForm(forms.Form):
    """Time window of the statistics pages."""

    weeks = forms.IntegerField(min_value=1, max_value=104, required=False, initial=12)
    days = forms.IntegerField(min_value=1, max_value=730, required=False, initial=30)
