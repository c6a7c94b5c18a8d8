"""Forms of the alerting pages: rules (with schedule and channels), zones, test-rule options."""

from __future__ import annotations

import datetime as dt
import json
import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerting.choices import DEDUP_PLACEHOLDERS, WEEKDAYS
from alerting.models import AlertRule, CameraZone
from alerting.services.notify import validate_channels
from alerting.services.schedule import ScheduleError, get_zone, parse_hhmm
from dashboard.choices import OBJECT_TYPES

MAX_COOLDOWN_SECONDS = 7 * 24 * 3600
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def known_object_types() -> list[str]:
    """The detector's classes plus any class the baselines have seen (a small table)."""
    from alerting.models import ClassBaseline

    seen = ClassBaseline.objects.order_by().values_list("detection_class", flat=True).distinct()
    return list(OBJECT_TYPES) + sorted(set(seen) - set(OBJECT_TYPES))


def _split_emails(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,;\s]+", text or "") if p.strip()]


class AlertRuleForm(forms.ModelForm):
    risk_threshold = forms.IntegerField(
        required=False, min_value=0, max_value=100, help_text="Minimum event risk score, 0-100. Empty: any."
    )
    min_confidence = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, help_text="Minimum detection confidence, 0-1. Empty: any."
    )
    cooldown_seconds = forms.IntegerField(
        min_value=0,
        max_value=MAX_COOLDOWN_SECONDS,
        initial=300,
        help_text="No second alert with the same dedup key within this many seconds; 0 means no cooldown.",
    )
    object_types = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Empty: any object."
    )
    camera_ids = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Cameras", help_text="Empty: every camera."
    )
    zone_ids = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Zones",
        help_text="A detection's centre must lie inside one of these (enabled) zones. Empty: anywhere.",
    )
    schedule_enabled = forms.BooleanField(required=False, label="Only at certain times")
    schedule_days = forms.TypedMultipleChoiceField(
        required=False, choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple, label="Days"
    )
    schedule_start = forms.CharField(
        required=False, label="From", widget=forms.TimeInput(attrs={"type": "time"}), help_text="HH:MM"
    )
    schedule_end = forms.CharField(
        required=False,
        label="Until (inclusive)",
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="HH:MM; earlier than the start for an overnight window.",
    )
    schedule_timezone = forms.CharField(
        required=False, label="Timezone", widget=forms.TextInput(attrs={"list": "timezones"}), help_text="IANA name"
    )
    email_to = forms.CharField(
        required=False,
        label="Email recipients",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Addresses separated by commas or new lines.",
    )
    webhooks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line: URL, optionally followed by a space and the signing secret.",
    )

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "description",
            "enabled",
            "severity",
            "risk_threshold",
            "min_confidence",
            "dedup_key_template",
            "cooldown_seconds",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "dedup_key_template": "Placeholders: " + " ".join("{" + p + "}" for p in DEDUP_PLACEHOLDERS),
        }

    SCHEDULE_FIELDS = ("schedule_enabled", "schedule_days", "schedule_start", "schedule_end", "schedule_timezone")

    def __init__(self, *args, cameras=None, zones=None, object_types=None, hide_secrets=False, **kwargs):
        super().__init__(*args, **kwargs)
        from alerting.models import CameraZone as Zone
        from dashboard.models import Camera

        cameras = (
            list(cameras) if cameras is not None else list(Camera.objects.order_by("name").values_list("id", "name"))
        )
        self.zone_rows = (
            list(zones)
            if zones is not None
            else list(Zone.objects.order_by("camera_id", "-priority", "name").values_list("id", "name", "camera_id"))
        )
        self.zone_camera = {zid: cam for zid, _, cam in self.zone_rows}
        inst = self.instance
        known = list(object_types if object_types is not None else known_object_types())
        for t in inst.object_types or []:
            if t not in known:
                known.append(t)
        self.fields["object_types"].choices = [(t, t) for t in known]
        cam_ids = [c for c, _ in cameras]
        extra_cams = [c for c in (inst.camera_ids or []) if c not in cam_ids]
        self.fields["camera_ids"].choices = [(c, n) for c, n in cameras] + [(c, f"{c} (missing)") for c in extra_cams]
        extra_zones = [z for z in (inst.zone_ids or []) if z not in self.zone_camera]
        self.fields["zone_ids"].choices = [(z, f"{n} ({cam})") for z, n, cam in self.zone_rows] + [
            (z, f"{z} (missing)") for z in extra_zones
        ]
        if not self.is_bound:
            sched = inst.schedule or {}
            self.initial.update(
                object_types=inst.object_types or [],
                camera_ids=inst.camera_ids or [],
                zone_ids=inst.zone_ids or [],
                schedule_enabled=bool(sched),
                schedule_days=sched.get("days", [0, 1, 2, 3, 4, 5, 6]),
                schedule_start=sched.get("start", ""),
                schedule_end=sched.get("end", ""),
                schedule_timezone=sched.get("timezone", settings.TIME_ZONE),
                email_to=", ".join(
                    a for c in inst.channel_list if c.get("type") == "email" for a in (c.get("to") or [])
                ),
                webhooks="\n".join(
                    (
                        c.get("url", "")
                        + (" " + ("(secret hidden)" if hide_secrets else c["secret"]) if c.get("secret") else "")
                    )
                    for c in inst.channel_list
                    if c.get("type") == "webhook"
                ),
            )

    @property
    def selected_cameras(self) -> list[str]:
        if self.is_bound:
            return self.data.getlist(self.add_prefix("camera_ids")) if hasattr(self.data, "getlist") else []
        return list(self.initial.get("camera_ids") or [])

    def clean_name(self):
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise ValidationError("Give the rule a name.")
        return name

    def clean_schedule_timezone(self):
        tz = (self.cleaned_data.get("schedule_timezone") or "").strip()
        if tz:
            try:
                get_zone(tz)
            except ScheduleError as exc:
                raise ValidationError(exc.message)
        return tz

    def _clean_hhmm(self, name):
        value = (self.cleaned_data.get(name) or "").strip()
        if value:
            # <input type=time> may send seconds (HH:MM:SS); minutes are the resolution.
            if re.fullmatch(r"\d\d:\d\d:\d\d", value):
                value = value[:5]
            try:
                parse_hhmm(value, name)
            except ScheduleError as exc:
                raise ValidationError(exc.message)
        return value

    def clean_schedule_start(self):
        return self._clean_hhmm("schedule_start")

    def clean_schedule_end(self):
        return self._clean_hhmm("schedule_end")

    def clean_email_to(self):
        addrs = _split_emails(self.cleaned_data.get("email_to"))
        if addrs:
            validate_channels([{"type": "email", "to": addrs}])
        return addrs

    def clean_webhooks(self):
        out = []
        for n, line in enumerate((self.cleaned_data.get("webhooks") or "").splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            url, secret = parts[0], (parts[1].strip() if len(parts) > 1 else "")
            try:
                out.extend(validate_channels([{"type": "webhook", "url": url, "secret": secret}]))
            except ValidationError as exc:
                raise ValidationError(f"Line {n}: {exc.messages[0]}")
        return out

    def clean(self):
        data = super().clean()
        # Schedule
        schedule = None
        if data.get("schedule_enabled"):
            days = data.get("schedule_days") or []
            start, end = data.get("schedule_start"), data.get("schedule_end")
            if not days and "schedule_days" not in self.errors:
                self.add_error("schedule_days", "Pick at least one day.")
            if not start and "schedule_start" not in self.errors:
                self.add_error("schedule_start", "Give the start time (HH:MM).")
            if not end and "schedule_end" not in self.errors:
                self.add_error("schedule_end", "Give the end time (HH:MM).")
            if start and end and start == end:
                self.add_error(
                    "schedule_end",
                    "Start and end are the same; use different times (end earlier than start spans midnight).",
                )
            if not any(f in self.errors for f in self.SCHEDULE_FIELDS):
                schedule = {
                    "days": sorted(set(days)),
                    "start": start,
                    "end": end,
                    "timezone": data.get("schedule_timezone") or settings.TIME_ZONE,
                }
        # Zones must belong to the chosen cameras.
        cams = data.get("camera_ids") or []
        zones = data.get("zone_ids") or []
        if cams and zones:
            stray = [z for z in zones if self.zone_camera.get(z) not in cams]
            if stray:
                self.add_error(
                    "zone_ids",
                    "These zones belong to cameras the rule does not watch: "
                    + ", ".join(f"{z} ({self.zone_camera.get(z, 'unknown camera')})" for z in stray)
                    + ".",
                )
        channels = []
        if data.get("email_to"):
            channels.append({"type": "email", "to": data["email_to"]})
        channels.extend(data.get("webhooks") or [])
        inst = self.instance
        inst.object_types = data.get("object_types") or None
        inst.camera_ids = cams or None
        inst.zone_ids = zones or None
        inst.schedule = schedule
        inst.channels = channels or None
        return data


class TestRuleForm(forms.Form):
    MODE_CHOICES = [("last", "The last N events"), ("range", "A date range")]
    MAX_EVENTS = 1000

    mode = forms.ChoiceField(choices=MODE_CHOICES, initial="last", widget=forms.RadioSelect)
    last_n = forms.IntegerField(required=False, min_value=1, max_value=MAX_EVENTS, initial=50, label="N")
    start = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    end = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )

    def clean(self):
        data = super().clean()
        if data.get("mode") == "range":
            start, end = data.get("start"), data.get("end")
            if not start and "start" not in self.errors:
                self.add_error("start", "Give the start of the range.")
            if not end and "end" not in self.errors:
                self.add_error("end", "Give the end of the range.")
            if start and end and end <= start:
                self.add_error("end", "The end must be after the start.")
        elif data.get("mode") == "last" and not data.get("last_n") and "last_n" not in self.errors:
            data["last_n"] = 50
        return data

    def event_ids(self) -> tuple[list[int], bool]:
        """Newest first, at most MAX_EVENTS (keyset-friendly: idx_events_started_at_id)."""
        from dashboard.models import Event

        data = self.cleaned_data
        qs = Event.objects.order_by("-started_at", "-id")
        if data["mode"] == "range":
            qs = qs.filter(started_at__gte=data["start"], started_at__lt=data["end"])
            limit = self.MAX_EVENTS
        else:
            limit = data.get("last_n") or 50
        ids = list(qs.values_list("id", flat=True)[: limit + 1])
        return ids[:limit], len(ids) > limit


class CameraZoneForm(forms.ModelForm):
    coordinates = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "zone-coords"}),
        help_text="Normalised [[x, y], …] points in [0, 1], e.g. [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6], [0.1, 0.6]].",
    )
    color = forms.CharField(widget=forms.TextInput(attrs={"type": "color"}), initial="#3B82F6")
    priority = forms.IntegerField(min_value=0, max_value=1000, initial=0)

    class Meta:
        model = CameraZone
        fields = ["id", "name", "zone_type", "shape", "coordinates", "color", "priority", "enabled"]
        labels = {"id": "Zone id"}
        help_texts = {"id": "Lower-case letters, digits, - and _; rules refer to it. Cannot be changed later."}

    def __init__(self, *args, camera=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.camera = camera
        if camera is not None:
            self.instance.camera = camera
        if self.instance._state.adding and not self.is_bound:
            # A new zone starts in polygon mode so a click on the frame adds a point, as the
            # editor's help text says; the rectangle tool is one click away.
            self.initial.setdefault("shape", "polygon")
        if self.instance._state.adding is False:
            self.fields["id"].disabled = True
            self.fields["id"].required = False
        if not self.is_bound and self.instance.coordinates is not None:
            # Compact JSON keeps the textarea readable.
            self.initial["coordinates"] = self.instance.coordinates

    def clean_id(self):
        if self.fields["id"].disabled:
            return self.instance.id
        zid = (self.cleaned_data.get("id") or "").strip()
        if not _SLUG.match(zid):
            raise ValidationError("Use lower-case letters, digits, - and _ (starting with a letter or digit).")
        return zid

    def clean_color(self):
        color = (self.cleaned_data.get("color") or "").strip()
        if not re.fullmatch(r"#[0-9A-Fa-f]{6}", color):
            raise ValidationError("Colour must look like #RRGGBB.")
        return color.upper()


def coordinates_json(value) -> str:
    return json.dumps(value, separators=(", ", ": ")) if value is not None else ""


def default_range() -> tuple[dt.datetime, dt.datetime]:
    end = timezone.localtime().replace(second=0, microsecond=0)
    return end - dt.timedelta(days=1), end
