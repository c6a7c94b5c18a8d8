"""The rule engine: which enabled rules does an event match, and which alerts does that create.

* :func:`evaluate_rule` is pure: (rule, event, detections, zones) → :class:`Match`
  with every condition's verdict and reason. "Test rule" uses it as is.
* :func:`evaluate_event` / :func:`evaluate_events` load the events (and their
  detections) in one query, evaluate every enabled rule from a per-process cache
  of compiled rules and zones, and create alerts: for a batch of events, in one
  transaction per few hundred (rule, dedup key)s, not one per event (the commits,
  not the matching, set the rate).

Conditions are ANDed (DESIGN.md "Alerting"). The detection-level conditions
(object types, minimum confidence, zones) must hold for one and the same
detection: "a person with confidence ≥ 0.7 inside the driveway" does not match
a confident car in the driveway plus an unsure person on the street.

Cooldown and dedup under concurrency: before checking for an earlier alert the
transaction takes ``pg_advisory_xact_lock(hashtext(rule_id || ':' || dedup_key))``,
so workers evaluating the same event (or two events with the same key) are
serialised on that key and the second one sees the first one's committed alert.
A batch takes the locks of all its keys in one statement, sorted, so batches
cannot deadlock each other; within a batch the earlier event wins a key.
An event never gets two alerts from one rule (re-evaluation after a re-score is
idempotent), and with cooldown_seconds > 0 no second alert with the same rule and
dedup key is created within the cooldown.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from alerting.choices import DEDUP_PLACEHOLDERS
from alerting.services.geometry import bbox_centre, bounds, point_in_polygon
from alerting.services.schedule import Schedule, ScheduleError, parse_schedule

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"{([^{}]*)}")
# How long a compiled rule set may be reused without seeing the fingerprint change
# (a safety net for rows changed by raw SQL that did not move updated_at).
CACHE_TTL_SECONDS = 30.0

CONDITION_LABELS = {
    "risk_threshold": "Risk threshold",
    "camera_ids": "Cameras",
    "object_types": "Object types",
    "min_confidence": "Minimum confidence",
    "zone_ids": "Zones",
    "detection": "Same detection",
    "schedule": "Schedule",
}


# --- Value objects ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectionView:
    id: int | None
    object_type: str
    confidence: float | None
    centre: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class EventView:
    id: int | None
    camera_id: str
    started_at: dt.datetime
    risk_score: int | None
    detections: tuple[DetectionView, ...]
    # Rules that already have an alert for this event (re-evaluation is idempotent).
    alerted_rules: frozenset = frozenset()


@dataclass(frozen=True, slots=True)
class ZoneView:
    id: str
    camera_id: str
    points: tuple[tuple[float, float], ...]
    box: tuple[float, float, float, float]

    def contains(self, point: tuple[float, float]) -> bool:
        x, y = point
        x0, y0, x1, y1 = self.box
        if x < x0 or x > x1 or y < y0 or y > y1:
            return False
        return point_in_polygon(x, y, self.points)


@dataclass(slots=True)
class CompiledRule:
    id: object
    name: str
    severity: str
    risk_threshold: int | None
    camera_ids: frozenset[str] | None
    object_types: frozenset[str] | None
    min_confidence: float | None
    # None: the rule has no zone condition. Otherwise camera_id → enabled zones of the rule.
    zones_by_camera: dict[str, tuple[ZoneView, ...]] | None
    zone_ids: tuple[str, ...]
    schedule: Schedule | None
    schedule_error: str | None
    dedup_key_template: str
    cooldown_seconds: int
    channels: list
    rule: object = None  # the AlertRule, for callers that need more
    # (camera id, object type, zone id) → rendered dedup key: a batch renders each key once.
    keys: dict = field(default_factory=dict)

    @property
    def has_detection_conditions(self) -> bool:
        return self.object_types is not None or self.min_confidence is not None or self.zones_by_camera is not None

    def dedup_key(self, camera_id: str, object_type: str, zone_id: str) -> str:
        key = self.keys.get((camera_id, object_type, zone_id))
        if key is None:
            key = render_dedup_key(
                self.dedup_key_template,
                {
                    "camera_id": camera_id,
                    "rule_id": self.id,
                    "object_type": object_type,
                    "zone_id": zone_id,
                    "severity": self.severity,
                },
            )
            self.keys[(camera_id, object_type, zone_id)] = key
        return key


@dataclass(slots=True)
class ConditionResult:
    name: str
    passed: bool
    detail: str

    @property
    def label(self) -> str:
        return CONDITION_LABELS.get(self.name, self.name)


@dataclass(slots=True)
class Match:
    matched: bool
    conditions: list[ConditionResult] = field(default_factory=list)
    detection: DetectionView | None = None
    zone_id: str | None = None

    @property
    def matched_conditions(self) -> list[str]:
        return [c.name for c in self.conditions if c.passed]

    @property
    def failed_conditions(self) -> list[ConditionResult]:
        return [c for c in self.conditions if not c.passed]

    @property
    def reasons(self) -> dict[str, str]:
        return {c.name: c.detail for c in self.conditions}


# --- Compiling rules, zones, events ------------------------------------------------------------


def zone_view(zone) -> ZoneView:
    points = tuple((float(p[0]), float(p[1])) for p in zone.coordinates)
    return ZoneView(id=zone.id, camera_id=zone.camera_id, points=points, box=bounds(points))


def _str_set(raw) -> frozenset[str] | None:
    """JSON list → set; None or [] means "no condition"."""
    if not raw:
        return None
    if isinstance(raw, str):
        raw = [raw]
    return frozenset(str(v) for v in raw)


def compile_rule(rule, zones: dict[str, ZoneView]) -> CompiledRule:
    """`zones` maps zone id → enabled ZoneView (disabled or missing zones never match)."""
    zone_ids = tuple(str(z) for z in (rule.zone_ids or []))
    zones_by_camera = None
    if zone_ids:
        zones_by_camera = {}
        for zid in zone_ids:
            z = zones.get(zid)
            if z is not None:
                zones_by_camera.setdefault(z.camera_id, ())
                zones_by_camera[z.camera_id] += (z,)
    schedule, schedule_error = None, None
    try:
        schedule = parse_schedule(rule.schedule)
    except ScheduleError as exc:
        schedule_error = exc.message
    return CompiledRule(
        id=rule.id,
        name=rule.name,
        severity=rule.severity,
        risk_threshold=rule.risk_threshold,
        camera_ids=_str_set(rule.camera_ids),
        object_types=_str_set(rule.object_types),
        min_confidence=rule.min_confidence,
        zones_by_camera=zones_by_camera,
        zone_ids=zone_ids,
        schedule=schedule,
        schedule_error=schedule_error,
        dedup_key_template=rule.dedup_key_template or "{camera_id}:{rule_id}",
        cooldown_seconds=rule.cooldown_seconds or 0,
        channels=rule.channel_list if hasattr(rule, "channel_list") else list(rule.channels or []),
        rule=rule,
    )


def detection_view(row) -> DetectionView:
    """From a Detection instance or the engine's JSON row [id, type, conf, x, y, w, h, iw, ih]."""
    if isinstance(row, (list, tuple)):
        did, otype, conf, x, y, w, h, iw, ih = row
    else:
        did, otype, conf = row.pk, row.object_type, row.confidence
        x, y, w, h, iw, ih = row.bbox_x, row.bbox_y, row.bbox_width, row.bbox_height, row.image_width, row.image_height
    return DetectionView(id=did, object_type=otype, confidence=conf, centre=bbox_centre(x, y, w, h, iw, ih))


def _fallback_detections(object_types: str) -> tuple[DetectionView, ...]:
    # Events without linked detections still name their classes; those can match an
    # object-type condition but never a confidence or zone condition.
    names = [t.strip() for t in (object_types or "").split(",") if t.strip()]
    return tuple(DetectionView(id=None, object_type=n, confidence=None, centre=None) for n in names)


def event_view(event, detections=None) -> EventView:
    if detections is None:
        detections = list(event.detections.all())
    dets = tuple(d if isinstance(d, DetectionView) else detection_view(d) for d in detections)
    return EventView(
        id=event.pk,
        camera_id=event.camera_id,
        started_at=event.started_at,
        risk_score=event.risk_score,
        detections=dets or _fallback_detections(event.object_types),
    )


# --- Evaluation -------------------------------------------------------------------------------------


def _detection_ok(rule: CompiledRule, d: DetectionView, zones: tuple[ZoneView, ...] | None):
    """(passes, zone id) for one detection against the detection-level conditions."""
    if rule.object_types is not None and d.object_type not in rule.object_types:
        return False, None
    if rule.min_confidence is not None and (d.confidence is None or d.confidence < rule.min_confidence):
        return False, None
    if zones is not None:
        if d.centre is None:
            return False, None
        for z in zones:
            if z.contains(d.centre):
                return True, z.id
        return False, None
    return True, None


def fast_match(rule: CompiledRule, ev: EventView):
    """The engine's hot path: None when the rule does not match, else (best detection, zone id).

    Same verdict as match_compiled(), without building explanations (about 1 µs per rule).
    """
    if rule.risk_threshold is not None and (ev.risk_score is None or ev.risk_score < rule.risk_threshold):
        return None
    if rule.camera_ids is not None and ev.camera_id not in rule.camera_ids:
        return None
    best = None
    best_zone = None
    if rule.object_types is not None or rule.min_confidence is not None or rule.zones_by_camera is not None:
        zones = None if rule.zones_by_camera is None else rule.zones_by_camera.get(ev.camera_id, ())
        if zones == ():
            return None
        for d in ev.detections:
            ok, zid = _detection_ok(rule, d, zones)
            if ok and (best is None or (d.confidence or 0) > (best.confidence or 0)):
                best, best_zone = d, zid
        if best is None:
            return None
    elif ev.detections:
        best = max(ev.detections, key=_confidence)
    if rule.schedule_error is not None:
        return None
    if rule.schedule is not None and not rule.schedule.is_active(ev.started_at):
        return None
    return best, best_zone


def _confidence(d: DetectionView) -> float:
    return d.confidence or 0


def match_compiled(rule: CompiledRule, ev: EventView, explain: bool = False) -> Match:
    """Evaluate one compiled rule. Without `explain` it stops at the first failing condition."""
    conditions: list[ConditionResult] = []

    def verdict(name, passed, detail):
        if explain:
            conditions.append(ConditionResult(name, passed, detail() if callable(detail) else detail))
        return passed

    # Cheap scalar conditions first: most events fail here.
    if rule.risk_threshold is not None:
        score = ev.risk_score
        ok = score is not None and score >= rule.risk_threshold
        if (
            not verdict(
                "risk_threshold",
                ok,
                lambda: (
                    "the event has no risk score"
                    if score is None
                    else f"risk {score} {'≥' if ok else '<'} {rule.risk_threshold}"
                ),
            )
            and not explain
        ):
            return Match(False)
    if rule.camera_ids is not None:
        ok = ev.camera_id in rule.camera_ids
        if (
            not verdict(
                "camera_ids",
                ok,
                lambda: (
                    f"camera {ev.camera_id} is {'one of' if ok else 'not among'} {', '.join(sorted(rule.camera_ids))}"
                ),
            )
            and not explain
        ):
            return Match(False)

    best: DetectionView | None = None
    best_zone: str | None = None
    if rule.has_detection_conditions:
        zones = None
        if rule.zones_by_camera is not None:
            zones = rule.zones_by_camera.get(ev.camera_id, ())
        for d in ev.detections:
            ok, zid = _detection_ok(rule, d, zones)
            if ok and (best is None or (d.confidence or 0) > (best.confidence or 0)):
                best, best_zone = d, zid
        if explain:
            _explain_detections(rule, ev, zones, best, best_zone, conditions)
        elif best is None:
            return Match(False)
    elif ev.detections:
        best = max(ev.detections, key=lambda d: d.confidence or 0)

    if rule.schedule_error is not None:
        verdict("schedule", False, f"the schedule is invalid: {rule.schedule_error}")
        if not explain:
            return Match(False)
    elif rule.schedule is not None:
        ok = rule.schedule.is_active(ev.started_at)
        if not verdict("schedule", ok, lambda: _schedule_detail(rule.schedule, ev.started_at, ok)) and not explain:
            return Match(False)

    matched = all(c.passed for c in conditions) if explain else True
    return Match(matched, conditions, best if matched or explain else None, best_zone)


def _schedule_detail(schedule: Schedule, when: dt.datetime, ok: bool) -> str:
    from alerting.services.schedule import get_zone

    local = when.astimezone(get_zone(schedule.tz_name))
    return f"{local:%a %H:%M} {schedule.tz_name} is {'inside' if ok else 'outside'} {schedule.describe()}"


def _explain_detections(rule, ev, zones, best, best_zone, conditions):
    dets = ev.detections
    seen = ", ".join(sorted({d.object_type for d in dets})) or "nothing"
    if rule.object_types is not None:
        hits = [d for d in dets if d.object_type in rule.object_types]
        wanted = ", ".join(sorted(rule.object_types))
        conditions.append(
            ConditionResult(
                "object_types",
                bool(hits),
                f"{hits[0].object_type} detected" if hits else f"none of {wanted} detected (seen: {seen})",
            )
        )
    if rule.min_confidence is not None:
        confs = [d for d in dets if d.confidence is not None]
        top = max(confs, key=lambda d: d.confidence) if confs else None
        ok = top is not None and top.confidence >= rule.min_confidence
        conditions.append(
            ConditionResult(
                "min_confidence",
                ok,
                "no detection with a confidence"
                if top is None
                else f"{top.object_type} at {top.confidence:.2f} {'≥' if ok else '<'} {rule.min_confidence:.2f}",
            )
        )
    if zones is not None:
        names = ", ".join(rule.zone_ids)
        if not zones:
            conditions.append(
                ConditionResult("zone_ids", False, f"none of the rule's zones ({names}) is enabled on {ev.camera_id}")
            )
        else:
            inside = [(d, z.id) for d in dets if d.centre is not None for z in zones if z.contains(d.centre)]
            if inside:
                d, zid = inside[0]
                detail = f"{d.object_type} centre ({d.centre[0]:.2f}, {d.centre[1]:.2f}) inside zone {zid}"
            else:
                detail = f"no detection centre inside zone(s) {', '.join(z.id for z in zones)}"
            conditions.append(ConditionResult("zone_ids", bool(inside), detail))
    individually = all(c.passed for c in conditions if c.name in ("object_types", "min_confidence", "zone_ids"))
    if individually and best is None:
        conditions.append(
            ConditionResult(
                "detection", False, "no single detection meets the object, confidence and zone conditions together"
            )
        )
    elif best is not None and best.id is not None and len(dets) > 1:
        conditions.append(
            ConditionResult("detection", True, f"detection {best.id} ({best.object_type}) meets them all")
        )


def evaluate_rule(rule, event, detections=None, zones=None, explain: bool = True) -> Match:
    """Pure evaluation of one AlertRule against one event.

    `detections`: Detection instances or DetectionViews (default: the event's own);
    `zones`: CameraZone instances to resolve the rule's zone_ids against (only
    enabled ones count; default: none, so a zone condition cannot match).
    """
    zone_map = {z.id: zone_view(z) for z in (zones or []) if getattr(z, "enabled", True)}
    ev = event if isinstance(event, EventView) else event_view(event, detections)
    return match_compiled(compile_rule(rule, zone_map), ev, explain=explain)


def render_dedup_key(template: str, values: dict) -> str:
    """Substitute {camera_id} {rule_id} {object_type} {zone_id} {severity}; unknown ones stay literal.

    Not str.format: a template can carry no format specs or attribute access.
    """

    def sub(m):
        name = m.group(1)
        if name in DEDUP_PLACEHOLDERS:
            v = values.get(name)
            return "" if v is None else str(v)
        return m.group(0)

    return _PLACEHOLDER.sub(sub, template)[:255]


def dedup_key_for(rule: CompiledRule, ev: EventView, match: Match) -> str:
    return render_dedup_key(
        rule.dedup_key_template,
        {
            "camera_id": ev.camera_id,
            "rule_id": rule.id,
            "object_type": match.detection.object_type if match.detection else "",
            "zone_id": match.zone_id or "",
            "severity": rule.severity,
        },
    )


# --- The rule set cache --------------------------------------------------------------------------------


@dataclass
class RuleSet:
    fingerprint: tuple
    loaded_at: float
    by_camera: dict[str, list[CompiledRule]]
    any_camera: list[CompiledRule]

    def candidates(self, camera_id: str) -> list[CompiledRule]:
        specific = self.by_camera.get(camera_id)
        return self.any_camera + specific if specific else self.any_camera


_cache_lock = threading.Lock()
_cache: RuleSet | None = None


def clear_cache() -> None:
    """Forget the compiled rules and the recent-alert times (tests; a rule change does not need it)."""
    global _cache
    with _cache_lock:
        _cache = None
    with _recent_lock:
        _recent.clear()


def load_ruleset(fingerprint: tuple = ()) -> RuleSet:
    from alerting.models import AlertRule, CameraZone

    zones = {z.id: zone_view(z) for z in CameraZone.objects.enabled()}
    by_camera: dict[str, list[CompiledRule]] = {}
    any_camera: list[CompiledRule] = []
    for rule in AlertRule.objects.enabled().order_by("name", "id"):
        compiled = compile_rule(rule, zones)
        if compiled.camera_ids is None:
            any_camera.append(compiled)
        else:
            for cam in compiled.camera_ids:
                by_camera.setdefault(cam, []).append(compiled)
    return RuleSet(fingerprint, time.monotonic(), by_camera, any_camera)


def _ruleset_for(fingerprint: tuple) -> RuleSet:
    global _cache
    cached = _cache
    if (
        cached is not None
        and cached.fingerprint == fingerprint
        and time.monotonic() - cached.loaded_at < CACHE_TTL_SECONDS
    ):
        return cached
    fresh = load_ruleset(fingerprint)
    with _cache_lock:
        _cache = fresh
    return fresh


# One round trip per batch: the events, their detections as JSON, and fingerprints of
# the rule and zone tables (count + newest updated_at) that tell whether the cache is stale.
_EVENTS_SQL = """
SELECT e.id, e.camera_id, e.started_at, e.risk_score, e.object_types,
  (SELECT coalesce(json_agg(json_build_array(d.id, d.object_type, d.confidence, d.bbox_x, d.bbox_y,
                                             d.bbox_width, d.bbox_height, d.image_width, d.image_height)), '[]')
     FROM event_detections ed JOIN detections d ON d.id = ed.detection_id
    WHERE ed.event_id = e.id),
  (SELECT coalesce(array_agg(DISTINCT a.rule_id), '{}') FROM alerts a
    WHERE a.event_id = e.id AND a.rule_id IS NOT NULL),
  (SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') FROM alert_rules),
  (SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') FROM camera_zones)
FROM events e WHERE e.id = ANY(%s::integer[])
"""
_FINGERPRINT_SQL = (
    "SELECT (SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') FROM alert_rules),"
    " (SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') FROM camera_zones)"
)
# Does an alert already exist for (event, rule), or for (rule, dedup key) inside the cooldown?
# Both lookups are index-driven: idx_alerts_event_rule_delivered and idx_alerts_dedup_key_created_at.
_EXISTING_SQL = """
SELECT v.i,
  EXISTS(SELECT 1 FROM alerts a WHERE a.event_id = v.event_id AND a.rule_id = v.rule_id),
  CASE WHEN v.cooldown THEN (SELECT max(a.created_at) FROM alerts a
                              WHERE a.dedup_key = v.dedup_key AND a.created_at > v.since AND a.rule_id = v.rule_id)
  END
FROM unnest(%s::integer[], %s::integer[], %s::uuid[], %s::text[], %s::timestamptz[], %s::boolean[])
     AS v(i, event_id, rule_id, dedup_key, since, cooldown)
"""
# Sorted, so that two transactions locking overlapping keys always lock in the same order.
_LOCK_SQL = """
SELECT count(pg_advisory_xact_lock(h))
FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(%s::text[]) AS k ORDER BY 1 OFFSET 0) s
"""
# The new alerts as one JSON document: one parameter whatever the batch size. Django's
# bulk_create sends a text array per column, and quoting every JSON value inside an
# array costs more than the insert itself. A missing "channels" key stores NULL.
_INSERT_SQL = """
INSERT INTO alerts (id, event_id, rule_id, severity, status, created_at, updated_at,
                    channels, dedup_key, metadata, version_id)
SELECT (a->>'id')::uuid, (a->>'event_id')::integer, (a->>'rule_id')::uuid, a->>'severity', a->>'status',
       %s::timestamptz, %s::timestamptz, a->'channels', a->>'dedup_key', a->'metadata', (a->>'version_id')::integer
FROM jsonb_array_elements(%s::jsonb) AS a
"""


_STATEMENTS = {
    "wp_alerting_events": _EVENTS_SQL,
    "wp_alerting_fingerprint": _FINGERPRINT_SQL,
    "wp_alerting_existing": _EXISTING_SQL,
    "wp_alerting_lock": _LOCK_SQL,
    "wp_alerting_insert": _INSERT_SQL,
}
_SQL_NAMES = {sql: name for name, sql in _STATEMENTS.items()}
# (connection object, backend pid) → names PREPAREd in that session. A reconnect has a new pid.
_prepared: dict[tuple[int, int], set[str]] = {}


def _numbered(sql: str) -> str:
    parts = sql.split("%s")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


def _execute(sql: str, params=None) -> list[tuple]:
    """Run one of the engine's fixed statements, PREPAREd once per database session.

    Planning the event query costs several times its execution (≈0.5 ms against
    0.1 ms) and Django turns psycopg's automatic preparation off, so the engine
    prepares its four statements itself. Prepared statements live as long as the
    session (CONN_MAX_AGE keeps it); set ALERTING_PREPARED_STATEMENTS=0 behind a
    transaction-pooling proxy that does not keep sessions.
    """
    params = list(params or [])
    name = _SQL_NAMES.get(sql)
    with connection.cursor() as cur:
        if name is None or not settings.ALERTING_PREPARED_STATEMENTS:
            cur.execute(sql, params)
        else:
            raw = connection.connection
            key = (id(raw), raw.info.backend_pid)
            done = _prepared.setdefault(key, set())
            if name not in done:
                cur.execute("DEALLOCATE ALL" if not done else "SELECT 1")  # a fresh session: forget stale names
                cur.execute(f"PREPARE {name} AS {_numbered(sql)}")
                done.add(name)
            cur.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}", params)
        return cur.fetchall() if cur.description else []


def load_event_views(event_ids) -> tuple[list[EventView], tuple]:
    """The events that exist among `event_ids`, in that order, and the rule/zone fingerprint: one query."""
    event_ids = list(event_ids)
    rows = _execute(_EVENTS_SQL, [event_ids])
    views = []
    fingerprint: tuple = ()
    for eid, cam, started, score, otypes, dets, alerted, rules_fp, zones_fp in rows:
        detections = tuple(detection_view(d) for d in dets) or _fallback_detections(otypes)
        views.append(EventView(eid, cam, started, score, detections, frozenset(alerted or ())))
        fingerprint = (rules_fp, zones_fp)
    if not rows:
        fingerprint = tuple(_execute(_FINGERPRINT_SQL)[0])
    if len(views) > 1:
        # The caller's order decides which event wins a cooldown key (the database returns them in any order).
        order = {eid: i for i, eid in reversed(list(enumerate(event_ids)))}
        views.sort(key=lambda v: order.get(v.id, len(order)))
    return views, fingerprint


# --- Creating alerts -----------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    event_id: int
    created: list = field(default_factory=list)  # Alert instances
    suppressed: list = field(default_factory=list)  # (rule id, dedup key, reason)
    matched_rules: list = field(default_factory=list)


def public_channels(channels: list) -> list[dict]:
    """A rule's channels as stored on an alert: type and target, never the webhook secret."""
    out = []
    for c in channels or []:
        if not isinstance(c, dict):
            continue
        if c.get("type") == "webhook":
            out.append({"type": "webhook", "url": c.get("url", "")})
        elif c.get("type") == "email":
            out.append({"type": "email", "to": list(c.get("to") or [])})
    return out


@dataclass(slots=True)
class _Candidate:
    ev: EventView
    rule: CompiledRule
    key: str
    result: EvaluationResult


# Newest alert time per (rule id, dedup key) that this process has seen. Only ever used to
# *suppress* (an alert that exists stays inside its cooldown), so a stale or missing entry
# can never cause a duplicate; it saves the database round trip for busy keys.
_recent_lock = threading.Lock()
_recent: dict[tuple, dt.datetime] = {}
_RECENT_MAX = 100_000


def _remember(rule_id, key: str, when: dt.datetime) -> None:
    with _recent_lock:
        if len(_recent) >= _RECENT_MAX:
            _recent.clear()
        old = _recent.get((rule_id, key))
        if old is None or when > old:
            _recent[(rule_id, key)] = when


def _existing(cands: list[_Candidate], now: dt.datetime) -> list[tuple[bool, dt.datetime | None]]:
    """(already alerted for this event, newest alert inside the cooldown) per candidate, in one query."""
    rows = _execute(
        _EXISTING_SQL,
        [
            list(range(len(cands))),
            [c.ev.id for c in cands],
            [c.rule.id for c in cands],
            [c.key for c in cands],
            [now - dt.timedelta(seconds=c.rule.cooldown_seconds) for c in cands],
            [c.rule.cooldown_seconds > 0 for c in cands],
        ],
    )
    out: list[tuple[bool, dt.datetime | None]] = [(False, None)] * len(cands)
    for i, same_event, last in rows:
        out[i] = (same_event, last)
    return out


def _suppress(c: _Candidate, why: str) -> None:
    c.result.suppressed.append((c.rule.id, c.key, why))


def _cooldown_reason(c: _Candidate) -> str:
    return f"cooldown of {c.rule.cooldown_seconds} s"


def _screen_in_memory(cands: list[_Candidate], now: dt.datetime, decided: dict | None = None) -> list[_Candidate]:
    """Drop the candidates known to be suppressed without asking the database.

    `decided`: (rule id, dedup key) → newest alert time, as this call's earlier
    transactions found or created them (on top of the process-wide `_recent`).
    """
    keep = []
    since_by_cooldown: dict[int, dt.datetime] = {}
    for c in cands:
        if c.rule.id in c.ev.alerted_rules:
            _suppress(c, "already alerted for this event")
            continue
        cooldown = c.rule.cooldown_seconds
        if cooldown > 0:
            since = since_by_cooldown.get(cooldown)
            if since is None:
                since = since_by_cooldown[cooldown] = now - dt.timedelta(seconds=cooldown)
            token = (c.rule.id, c.key)
            last = _recent.get(token)
            if decided and (mine := decided.get(token)) is not None and (last is None or mine > last):
                last = mine
            if last is not None and last > since:
                _suppress(c, _cooldown_reason(c))
                continue
        keep.append(c)
    return keep


def _create_alerts(cands: list[_Candidate], decided: dict | None = None) -> list:
    """Lock the candidates' (rule, dedup key)s, re-check under the locks, insert the survivors: one transaction.

    The candidates may come from many events, in event order. Under the locks the
    first candidate of a (rule, dedup key) with a cooldown wins it and the later ones
    are suppressed, exactly as if the events had been written one after the other.
    The results (created, suppressed) and `decided` are filled in only once the block
    has succeeded, so a failed attempt can be retried event by event without doubling them.
    """
    suppressed: list[tuple[_Candidate, str]] = []
    created: list[tuple[_Candidate, object]] = []
    with transaction.atomic():
        # One statement, keys sorted: two transactions with overlapping keys lock them in
        # the same order, so batches of any size cannot deadlock each other.
        _execute(_LOCK_SQL, [sorted({f"{c.rule.id}:{c.key}" for c in cands})])
        now = timezone.now()
        seen = set()
        existing = _existing(cands, now)
        for c, (same_event, last) in zip(cands, existing, strict=True):
            if same_event:
                suppressed.append((c, "already alerted for this event"))
                continue
            if last is not None:
                _remember(c.rule.id, c.key, last)
                suppressed.append((c, _cooldown_reason(c)))
                continue
            # Two candidates of one transaction with the same key: the first one wins the cooldown.
            token = (c.rule.id, c.key) if c.rule.cooldown_seconds > 0 else (c.rule.id, c.key, c.ev.id)
            if token in seen:
                suppressed.append((c, _cooldown_reason(c)))
                continue
            seen.add(token)
            created.append((c, _new_alert(c, now)))
        alerts = [alert for _, alert in created]
        if alerts:
            _insert_alerts(alerts, now)
            transaction.on_commit(lambda: _after_create(alerts))
    for c, why in suppressed:
        _suppress(c, why)
    for c, alert in created:
        c.result.created.append(alert)
    if decided is not None:
        for c, (_, last) in zip(cands, existing, strict=True):
            if last is not None:
                decided[(c.rule.id, c.key)] = last
        for c, _ in created:
            decided[(c.rule.id, c.key)] = now
    return alerts


def _insert_alerts(alerts: list, now: dt.datetime) -> None:
    """Insert unsaved Alert instances (all created at `now`) in one statement; they count as saved afterwards."""
    rows = []
    for a in alerts:
        row = {
            "id": str(a.id),
            "event_id": a.event_id,
            "rule_id": str(a.rule_id),
            "severity": a.severity,
            "status": a.status,
            "dedup_key": a.dedup_key,
            "metadata": a.metadata,
            "version_id": a.version_id,
        }
        if a.channels is not None:
            row["channels"] = a.channels
        rows.append(row)
    _execute(_INSERT_SQL, [now, now, json.dumps(rows)])
    for a in alerts:
        a._state.adding = False
        a._state.db = connection.alias


def _new_alert(c: _Candidate, now: dt.datetime):
    from alerting.models import Alert

    match = match_compiled(c.rule, c.ev, explain=True)  # now collect the reasons
    det = match.detection
    return Alert(
        event_id=c.ev.id,
        rule_id=c.rule.id,
        severity=c.rule.severity,
        dedup_key=c.key,
        channels=public_channels(c.rule.channels) or None,
        created_at=now,
        updated_at=now,
        metadata={
            "matched_conditions": match.matched_conditions,
            "reasons": match.reasons,
            "rule_name": c.rule.name,
            "camera_id": c.ev.camera_id,
            "risk_score": c.ev.risk_score,
            "object_type": det.object_type if det else None,
            "confidence": det.confidence if det else None,
            "detection_id": det.id if det else None,
            "zone_id": match.zone_id,
        },
    )


# Candidates written per transaction when events are evaluated in batches. One
# transaction for hundreds of events (one lock statement, one cooldown lookup, one
# INSERT, one commit) is what makes batches fast: per event, those round trips and
# the commit's WAL flush cost ten times the matching. The cap bounds how many
# advisory locks one transaction holds (they share PostgreSQL's lock table,
# max_locks_per_transaction × max_connections entries) and how long it holds them.
WRITE_CHUNK = 500


def _next_chunk(queue: list[_Candidate]) -> tuple[list[_Candidate], list[_Candidate]]:
    """(the next transaction's candidates, the rest), both in event order.

    At most WRITE_CHUNK candidates and one per (rule, dedup key) with a cooldown: a
    later candidate of a key waits until the earlier one is decided, and then is
    mostly suppressed in memory (the earlier one created an alert or met one). That
    is the one-event-at-a-time outcome, with a transaction per few hundred keys
    instead of one per event.
    """
    chunk: list[_Candidate] = []
    rest: list[_Candidate] = []
    taken: set = set()
    for c in queue:
        if len(chunk) >= WRITE_CHUNK:
            rest.append(c)
            continue
        if c.rule.cooldown_seconds > 0:
            token = (c.rule.id, c.key)
            if token in taken:
                rest.append(c)
                continue
            taken.add(token)
        chunk.append(c)
    return chunk, rest


def _by_event(cands: list[_Candidate]) -> list[list[_Candidate]]:
    groups: dict[int, list[_Candidate]] = {}
    for c in cands:
        groups.setdefault(c.ev.id, []).append(c)
    return list(groups.values())


def _write(chunk: list[_Candidate], decided: dict) -> Exception | None:
    """Write one chunk; if its transaction fails, retry event by event so one bad event stays local.

    Returns the first event's error (after the other events were written) for the
    caller to raise once every chunk had its turn. A lost connection or a database
    that refuses work is not any one event's fault: that error propagates at once.
    """
    try:
        _create_alerts(chunk, decided)
        return None
    except Exception as exc:
        groups = _by_event(chunk)
        if len(groups) == 1:
            return _event_failed(chunk, exc)
        logger.warning(
            "rule engine: writing the alerts of %d events in one transaction failed; retrying event by event",
            len(groups),
            exc_info=True,
        )
    first_error = None
    for group in groups:
        try:
            _create_alerts(group, decided)
        except Exception as exc:
            first_error = first_error or _event_failed(group, exc)
    return first_error


def _event_failed(group: list[_Candidate], exc: Exception) -> Exception:
    """`exc` if it is this event's own failure (logged); a database or connection failure is raised on."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        raise exc
    # Typically the event (or the rule) was deleted while being evaluated.
    logger.exception("rule engine: the alerts of event %s were not written", group[0].ev.id)
    return exc


def evaluate_views(views: list[EventView], ruleset: RuleSet) -> list[EvaluationResult]:
    """Match every view against the rule set; create the alerts that dedup and cooldown allow.

    The alerts of many events are written in a few transactions (see _next_chunk).
    Events earlier in `views` win a cooldown key over later ones.
    If one event's alerts cannot be written, the other events' alerts still are and
    its error is raised at the end (re-running is safe: evaluation is idempotent).
    """
    results = []
    cands: list[_Candidate] = []
    for ev in views:
        result = EvaluationResult(ev.id)
        results.append(result)
        for rule in ruleset.candidates(ev.camera_id):
            hit = fast_match(rule, ev)
            if hit is None:
                continue
            best, zone_id = hit
            result.matched_rules.append(rule.id)
            key = rule.dedup_key(ev.camera_id, best.object_type if best else "", zone_id or "")
            cands.append(_Candidate(ev, rule, key, result))
    if not cands:
        return results
    # Without a transaction first: most matches of a busy rule fall in its cooldown.
    queue = _screen_in_memory(cands, timezone.now())
    decided: dict = {}
    errors = []
    while queue:
        chunk, queue = _next_chunk(queue)
        error = _write(chunk, decided)
        if error is not None:
            errors.append(error)
        if queue:
            queue = _screen_in_memory(queue, timezone.now(), decided)
    if errors:
        raise errors[0]
    return results


def _after_create(alerts) -> None:
    from alerting.services.notify import schedule_deliveries

    for alert in alerts:
        _remember(alert.rule_id, alert.dedup_key, alert.created_at)
        if alert.channels:
            schedule_deliveries(alert)


def evaluate_events(event_ids) -> list[EvaluationResult]:
    """Evaluate several events against every enabled rule; creates alerts; safe to run twice."""
    views, fingerprint = load_event_views(event_ids)
    return evaluate_views(views, _ruleset_for(fingerprint))


def evaluate_event(event_id: int) -> EvaluationResult | None:
    results = evaluate_events([event_id])
    return results[0] if results else None


# --- Test rule (preview) -------------------------------------------------------------------------------


def preview_rule(rule, event_ids) -> list[tuple[EventView, Match]]:
    """Evaluate `rule` (saved or not) against events without creating anything."""
    from alerting.models import CameraZone

    views, _ = load_event_views(event_ids)
    zone_ids = [str(z) for z in (rule.zone_ids or [])]
    zones = {z.id: zone_view(z) for z in CameraZone.objects.enabled().filter(id__in=zone_ids)} if zone_ids else {}
    compiled = compile_rule(rule, zones)
    return [(ev, match_compiled(compiled, ev, explain=True)) for ev in views]
