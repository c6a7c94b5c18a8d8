"""Event review: keyset pages of events, the event detail bundle, review and feedback changes."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.shortcuts import get_object_or_404

from alerting.models import Alert, CameraZone
from alerting.services.geometry import point_in_polygon
from dashboard.models import Detection, Event, EventFeedback, ReidEmbedding
from monitoring.services.audit import record

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
BULK_REVIEW_MAX = 500


# --- Keyset pagination on (started_at, id) ------------------------------------------------


class InvalidCursor(ValueError):
    pass


def encode_cursor(direction: str, started_at: dt.datetime, pk: int) -> str:
    raw = f"{direction}|{started_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, ts, pk = raw.split("|")
        if direction not in ("n", "p"):
            raise ValueError
        started_at = dt.datetime.fromisoformat(ts)
        if started_at.tzinfo is None:
            raise ValueError
        return direction, started_at, int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor("This page link is no longer valid; showing the newest events instead.")


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None = None  # older events
    prev_cursor: str | None = None  # newer events
    is_first: bool = True


def keyset_page(qs, cursor: str | None, size: int = PAGE_SIZE) -> KeysetPage:
    """Newest first. `started_at <= t` is the index condition on idx_events_started_at_id,
    so a deep page starts where the cursor points instead of skipping rows (no OFFSET);
    the OR only breaks ties between events that started in the same microsecond."""
    direction, ts, pk = decode_cursor(cursor) if cursor else (None, None, None)
    if direction == "p":
        rows = list(
            qs.filter(started_at__gte=ts)
            .filter(Q(started_at__gt=ts) | Q(id__gt=pk))
            .order_by("started_at", "id")[: size + 1]
        )
        more_newer = len(rows) > size
        items = list(reversed(rows[:size]))
        page = KeysetPage(items, is_first=not more_newer)
        if items:
            page.next_cursor = encode_cursor("n", items[-1].started_at, items[-1].pk)
            if more_newer:
                page.prev_cursor = encode_cursor("p", items[0].started_at, items[0].pk)
        return page
    if direction == "n":
        qs = qs.filter(started_at__lte=ts).filter(Q(started_at__lt=ts) | Q(id__lt=pk))
    rows = list(qs.order_by("-started_at", "-id")[: size + 1])
    items = rows[:size]
    page = KeysetPage(items, is_first=direction is None)
    if len(rows) > size:
        page.next_cursor = encode_cursor("n", items[-1].started_at, items[-1].pk)
    if direction == "n" and items:
        page.prev_cursor = encode_cursor("p", items[0].started_at, items[0].pk)
    return page


def list_queryset():
    """Events with their camera; the page's feedback/alert flags come from `add_flags`."""
    return Event.objects.select_related("camera")


def add_flags(events: list) -> list:
    """Set `has_feedback` and `has_alert` on a page of events, in one query.

    As EXISTS columns of the page's own query the planner hashes all of event_feedback and
    alerts once (it plans for the whole events table before the LIMIT): 64 ms at 1M events.
    Asked for just the page's ids, each is one probe of idx_event_feedback_event_id and
    idx_alerts_event_id.
    """
    if not events:
        return events
    with connection.cursor() as cur:
        cur.execute(
            "SELECT e.id, EXISTS (SELECT 1 FROM event_feedback f WHERE f.event_id = e.id), "
            "EXISTS (SELECT 1 FROM alerts a WHERE a.event_id = e.id) FROM unnest(%s::bigint[]) AS e(id)",
            [[e.pk for e in events]],
        )
        flags = {pk: (feedback, alert) for pk, feedback, alert in cur.fetchall()}
    for e in events:
        e.has_feedback, e.has_alert = flags.get(e.pk, (False, False))
    return events


# --- Review -----------------------------------------------------------------------------------


def mark_reviewed(event_ids, *, request=None) -> list[int]:
    """Mark the given events reviewed; returns the ids that changed. One audit row."""
    ids = sorted({int(i) for i in event_ids})
    if len(ids) > BULK_REVIEW_MAX:
        raise ValueError(f"At most {BULK_REVIEW_MAX} events can be marked at once.")
    with transaction.atomic():
        changed = list(
            Event.objects.filter(pk__in=ids, reviewed=False)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Event.objects.filter(pk__in=changed).update(reviewed=True)
        record(
            "bulk_review",
            "event",
            None,
            request=request,
            details={"event_ids": changed, "requested": len(ids), "changes": {"reviewed": [False, True]}},
        )
    return changed


def set_review(event_id: int, *, reviewed: bool, notes: str | None, request=None) -> tuple[Event, dict]:
    """Set the reviewed flag and notes of one event; returns (event, changes). Audited."""
    notes = (notes or "").strip() or None
    with transaction.atomic():
        event = get_object_or_404(Event.objects.select_for_update(), pk=event_id)
        changes = {}
        if event.reviewed != reviewed:
            changes["reviewed"] = [event.reviewed, reviewed]
        if event.notes != notes:
            changes["notes"] = [event.notes, notes]
        if changes:
            event.reviewed = reviewed
            event.notes = notes
            event.save(update_fields=["reviewed", "notes"])
        record("review", "event", event.pk, request=request, details={"changes": changes})
    return event, changes


def save_feedback(
    event_id: int, *, feedback_type: str, expected_severity: str | None, notes: str | None, request=None
) -> tuple[EventFeedback, bool]:
    """Create the event's feedback or edit the one it has (the seed allows one per event)."""
    values = {
        "feedback_type": feedback_type,
        "expected_severity": expected_severity or None,
        "notes": (notes or "").strip() or None,
    }
    with transaction.atomic():
        # Locking the event serialises two submissions for it, so the second one
        # edits instead of tripping the UNIQUE constraint.
        event = get_object_or_404(Event.objects.select_for_update(), pk=event_id)
        feedback = EventFeedback.objects.filter(event=event).first()
        created = feedback is None
        if created:
            feedback = EventFeedback.objects.create(event=event, **values)
            changes = {k: [None, v] for k, v in values.items() if v is not None}
        else:
            changes = {k: [getattr(feedback, k), v] for k, v in values.items() if getattr(feedback, k) != v}
            if changes:
                for k, v in values.items():
                    setattr(feedback, k, v)
                feedback.save(update_fields=list(values))
        record(
            "create" if created else "update",
            "event_feedback",
            feedback.pk,
            request=request,
            details={"event_id": event.pk, "changes": changes},
        )
    return feedback, created


# --- Event detail -----------------------------------------------------------------------------

# COCO-17 skeleton (keypoint index pairs) for drawing poses.
COCO_SKELETON = [
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
]  # fmt: skip
KEYPOINT_MIN_CONFIDENCE = 0.3


def media_file(path: str | None) -> Path | None:
    """The file under MEDIA_ROOT that `path` names, if it exists; never a path outside it."""
    if not path:
        return None
    root = Path(settings.MEDIA_ROOT).resolve()
    try:
        candidate = (root / path).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def pose_points(pose, det: Detection) -> tuple[list, list]:
    """Keypoints in frame pixels, and skeleton segments between confident pairs.

    Upstream stores [x, y, conf] per COCO keypoint, either normalised to the frame
    (all values ≤ 1) or in frame pixels; both are accepted."""
    raw = pose.keypoints if isinstance(pose.keypoints, list) else []
    pts = []
    for kp in raw:
        if isinstance(kp, (list, tuple)) and len(kp) >= 2 and all(isinstance(v, (int, float)) for v in kp[:3]):
            pts.append((float(kp[0]), float(kp[1]), float(kp[2]) if len(kp) > 2 else 1.0))
        else:
            pts.append(None)
    normalised = all(p is None or (p[0] <= 1.0 and p[1] <= 1.0) for p in pts)
    sx, sy = (det.image_width, det.image_height) if normalised else (1, 1)
    scaled = [None if p is None else (round(p[0] * sx, 1), round(p[1] * sy, 1), p[2]) for p in pts]
    points = [p for p in scaled if p is not None and p[2] >= KEYPOINT_MIN_CONFIDENCE]
    segments = []
    for a, b in COCO_SKELETON:
        if a < len(scaled) and b < len(scaled):
            pa, pb = scaled[a], scaled[b]
            if pa and pb and pa[2] >= KEYPOINT_MIN_CONFIDENCE and pb[2] >= KEYPOINT_MIN_CONFIDENCE:
                segments.append((pa[0], pa[1], pb[0], pb[1]))
    return points, segments


def zone_points_px(zone, det: Detection) -> str:
    return " ".join(f"{x * det.image_width:.1f},{y * det.image_height:.1f}" for x, y in zone.coordinates)


@dataclass
class DetectionView:
    detection: Detection
    zones: list = field(default_factory=list)
    frame_url: str | None = None
    pose: object = None
    keypoints: list = field(default_factory=list)
    skeleton: list = field(default_factory=list)
    zone_shapes: list = field(default_factory=list)

    @property
    def marker_radius(self) -> float:
        return max(2.0, self.detection.image_width / 240)

    @property
    def label_size(self) -> float:
        return max(12.0, self.detection.image_width / 30)

    @property
    def demographics(self):
        return self.detection.demographics.all()[0] if self.detection.demographics.all() else None

    @property
    def action(self):
        return self.detection.actions.all()[0] if self.detection.actions.all() else None


def load_event(event_id: int) -> Event:
    """One event with everything its page shows, in a fixed number of queries:
    event+camera, detections (+has_reid), pose, threats, demographics, actions,
    alerts+rule, feedback, audits."""
    detections = (
        Detection.objects.annotate(has_reid=Exists(ReidEmbedding.objects.filter(detection=OuterRef("pk"))))
        .prefetch_related("pose_results", "threats", "demographics", "actions")
        .order_by("detected_at", "id")
    )
    qs = Event.objects.select_related("camera").prefetch_related(
        Prefetch("detections", queryset=detections),
        Prefetch("alerts", queryset=Alert.objects.select_related("rule").order_by("-created_at")),
        "feedback",
        "audits",
    )
    return get_object_or_404(qs, pk=event_id)


def detection_views(event: Event) -> list[DetectionView]:
    from django.urls import reverse

    zones = [z for z in CameraZone.objects.enabled().for_camera(event.camera_id) if _valid_zone(z)]
    views = []
    for det in event.detections.all():
        cx, cy = det.centre
        view = DetectionView(det)
        view.zones = [z for z in zones if point_in_polygon(cx, cy, z.coordinates)]
        view.zone_shapes = [(z, zone_points_px(z, det)) for z in zones]
        if media_file(det.file_path) is not None:
            view.frame_url = reverse("dashboard:detection_frame", args=[det.pk])
        poses = det.pose_results.all()
        if poses:
            view.pose = poses[0]
            view.keypoints, view.skeleton = pose_points(poses[0], det)
        views.append(view)
    return views


def _valid_zone(zone) -> bool:
    coords = zone.coordinates
    return (
        isinstance(coords, list)
        and len(coords) >= 3
        and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in coords
        )
    )


def anomaly_score(event: Event):
    """The alerting app's anomaly score for the event's camera/weekday/hour slot, if it offers one."""
    try:
        from alerting.services.baselines import anomaly_score_for_event
    except ImportError:
        return None
    try:
        result = anomaly_score_for_event(event)
    except Exception:  # a missing baseline must not take the event page down
        logger.exception("anomaly score for event %s failed", event.pk)
        return None
    if isinstance(result, dict):
        result = result.get("score")
    elif result is not None and not isinstance(result, (int, float)):
        result = getattr(result, "score", None)
    return float(result) if isinstance(result, (int, float)) and not isinstance(result, bool) else None
