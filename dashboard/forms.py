from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join

from dashboard.choices import FeedbackType, Severity
from dashboard.models import Event
from dashboard.services.events import BULK_REVIEW_MAX


class LongSelect(forms.Select):
    """A <select> whose options are drawn in Python, for choice lists of hundreds.

    The stock widget renders every <option> through the form template engine:
    3 ms for a 100-rule filter, a tenth of the alerts page. The markup is the same.
    """

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        options = []
        for group_name, group_choices, _index in widget["optgroups"]:
            if group_name:  # the stock widget handles groups; none of our long lists has them
                return super().render(name, value, attrs, renderer)
            options.extend(group_choices)
        body = format_html_join(
            "",
            '\n  <option value="{}"{}>{}</option>',
            ((str(o["value"]), flatatt(o["attrs"]), o["label"]) for o in options),
        )
        return format_html('<select name="{}"{}>{}\n</select>', name, flatatt(widget["attrs"]), body)


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
