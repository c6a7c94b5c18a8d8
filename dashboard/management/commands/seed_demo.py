"""`python manage.py seed_demo`: a week of plausible, consistent demo data in every table.

Rows are built with the factories in tests/factories.py (factory_boy, installed
with the test extras) and written with bulk_create, so the whole load takes a
few seconds. Everything happens in one transaction: an error leaves nothing
behind. bulk_create also means no post_save signals: the alert engine does not
run over the demo events (the demo alerts are written directly) and nothing is
sent anywhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import random
import secrets
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

# The demo is loaded once: when this camera exists, the command does nothing.
MARKER_CAMERA = "front_door"

CAMERAS = {
    # id: (name, status, object classes seen there with weights)
    "front_door": ("Front door", "online", {"person": 6, "package": 2, "dog": 1, "cat": 1}),
    "driveway": ("Driveway", "online", {"car": 5, "person": 3, "truck": 1, "bicycle": 1}),
    "backyard": ("Backyard", "online", {"person": 3, "cat": 3, "dog": 2, "bird": 2}),
    "garage": ("Garage", "offline", {"car": 3, "person": 3, "bicycle": 1}),
}

ZONES = {
    "front_door": [
        ("front_door_porch", "Porch", "entry_point", "rectangle", [[0.35, 0.45], [0.7, 0.45], [0.7, 0.95], [0.35, 0.95]], "#EF4444", 2),
        ("front_door_walkway", "Walkway", "sidewalk", "polygon", [[0.05, 0.7], [0.35, 0.6], [0.4, 0.98], [0.02, 0.98]], "#3B82F6", 1),
    ],
    "driveway": [
        ("driveway_apron", "Driveway apron", "driveway", "polygon", [[0.2, 0.5], [0.8, 0.45], [0.95, 0.98], [0.05, 0.98]], "#F59E0B", 1),
        ("driveway_sidewalk", "Public sidewalk", "sidewalk", "rectangle", [[0.0, 0.3], [1.0, 0.3], [1.0, 0.42], [0.0, 0.42]], "#6B7280", 0),
    ],
    "backyard": [
        ("backyard_gate", "Back gate", "entry_point", "rectangle", [[0.75, 0.3], [0.95, 0.3], [0.95, 0.8], [0.75, 0.8]], "#EF4444", 3),
        ("backyard_lawn", "Lawn", "yard", "polygon", [[0.05, 0.55], [0.6, 0.5], [0.7, 0.95], [0.1, 0.98]], "#10B981", 0),
    ],
    "garage": [
        ("garage_door", "Garage door", "entry_point", "rectangle", [[0.2, 0.2], [0.8, 0.2], [0.8, 0.9], [0.2, 0.9]], "#8B5CF6", 2),
    ],
}  # fmt: skip

SUMMARIES = {
    "person": [
        "A person walked up to the door, looked around and left.",
        "Unknown person lingered near the entrance for about a minute.",
        "Resident arrived home and entered through the door.",
        "Person checked the handle of the gate at night.",
        "Delivery driver approached carrying a parcel.",
    ],
    "package": ["A package was left on the porch.", "Parcel picked up from the doorstep."],
    "car": ["A car pulled into the driveway.", "Vehicle idled at the end of the driveway, then drove off."],
    "truck": ["Delivery truck stopped in front of the house."],
    "bicycle": ["Cyclist rode past on the sidewalk.", "Bicycle leaned against the garage."],
    "dog": ["A dog crossed the yard.", "Neighbour's dog sniffed around the porch."],
    "cat": ["A cat walked along the fence.", "Cat sat on the lawn."],
    "bird": ["Birds landed on the lawn."],
}

LOG_TEMPLATES = [
    # (level, component, message template, weight)
    ("DEBUG", "detector", "Frame batch from {cam}: {n} frames, {ms} ms per frame", 10),
    ("DEBUG", "enrichment", "Pose keypoints computed for detection {det} in {ms} ms", 6),
    ("INFO", "detector", "Detected {obj} on {cam} with confidence {conf}", 14),
    ("INFO", "llm", "Risk analysis for event {ev}: score {score}, prompt {tokens} tokens", 8),
    ("INFO", "alerting", "Alert delivered via webhook for event {ev} (HTTP 200)", 4),
    ("INFO", "camera", "Camera {cam} stream connected at 1920x1080, 15 fps", 3),
    ("INFO", "jobs", "Nightly cleanup removed {n} expired rows from gpu_stats", 2),
    ("WARNING", "camera", "Camera {cam} stream stalled; reconnecting (attempt {k})", 4),
    ("WARNING", "detector", "Frame queue backlog on {cam}: {n} frames waiting", 3),
    ("WARNING", "gpu", "GPU 0 temperature {temp} C is close to the slowdown threshold", 2),
    ("WARNING", "llm", "LLM response for event {ev} was truncated; retrying with a shorter prompt", 2),
    ("ERROR", "camera", "Camera garage went offline: RTSP connection refused", 2),
    ("ERROR", "detector", "Inference timeout on {cam} after 5000 ms; frame dropped", 2),
    ("ERROR", "alerting", "Webhook delivery failed for event {ev}: read timeout after 10 s", 1),
    ("CRITICAL", "enrichment", "CUDA out of memory while loading the Florence-2 model; enrichment paused", 1),
]

FRONTEND_MESSAGES = [
    ("ERROR", "zone-editor", "Uncaught TypeError: cannot read properties of undefined (reading 'points')"),
    ("WARNING", "live-tail", "Live tail request took 4.2 s; slowing refresh"),
    ("INFO", "events", "Operator opened event {ev} from the alert inbox"),
]

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


class Command(BaseCommand):
    help = (
        "Fill every table with a week of demo data (4 cameras, events with detections and enrichment, "
        "GPU history for two GPUs, logs, audit rows, rules, zones, alerts, baselines, jobs, an export and "
        f"a backup). Idempotent: if the camera '{MARKER_CAMERA}' already exists the command does nothing, "
        "so running it twice never duplicates rows. Needs factory_boy (pip install -e '.[test]')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2024, help="Random seed (default 2024), for repeatable data.")

    def handle(self, *args, **opts):
        try:
            from tests import factories
        except ImportError as exc:
            raise CommandError(
                f"seed_demo builds its rows with factory_boy and tests/factories.py, which could not be imported "
                f"({exc}). Install the test extras: .venv/bin/pip install -e '.[test]'"
            )
        from dashboard.models import Camera

        if Camera.objects.filter(pk=MARKER_CAMERA).exists():
            self.stdout.write(f"Demo data already present (camera '{MARKER_CAMERA}' exists); nothing to do.")
            return
        started = timezone.now()
        with transaction.atomic():
            counts = DemoBuilder(factories, random.Random(opts["seed"]), now=started).build()
        took = (timezone.now() - started).total_seconds()
        summary = ", ".join(f"{n:,} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {took:.1f} s: {summary}."))


class DemoBuilder:
    """Builds the rows; each method fills one area and returns what later areas need."""

    def __init__(self, factories, rng: random.Random, now: dt.datetime):
        self.f = factories
        self.rng = rng
        self.now = now.replace(second=0, microsecond=0)
        self.counts: dict[str, int] = {}

    def _fast(self, factory_cls):
        """Instances with the factory's declared values resolved once, for tables of thousands of rows.

        A factory_boy build costs about half a millisecond; GPU history and logs
        would spend most of the command's time there.
        """
        import factory

        model = factory_cls._meta.model
        base = factory.build(dict, FACTORY_CLASS=factory_cls)
        return lambda **fields: model(**{**base, **fields})

    def _bulk(self, label: str, objs: list) -> list:
        if objs:
            type(objs[0]).objects.bulk_create(objs, batch_size=1000)
        self.counts[label] = self.counts.get(label, 0) + len(objs)
        return objs

    def build(self) -> dict[str, int]:
        cameras = self.cameras()
        events, persons = self.events(cameras)
        self.enrichment(persons)
        self.reviews(events)
        rules = self.rules()
        self.zones(cameras)
        self.alerts(events, rules)
        self.baselines(cameras)
        self.gpu_history()
        self.logs(events)
        self.audit_rows(events, rules)
        self.jobs(events)
        return self.counts

    # --- cameras, events, detections -------------------------------------------------

    def cameras(self):
        cams = {}
        for cam_id, (name, status, _) in CAMERAS.items():
            seen = self.now - (dt.timedelta(hours=5) if status == "offline" else dt.timedelta(seconds=3))
            cams[cam_id] = self.f.CameraFactory.build(
                id=cam_id,
                name=name,
                status=status,
                folder_path=f"/srv/cameras/{cam_id}",
                frame_width=1920,
                frame_height=1080,
                last_seen_at=seen,
                created_at=self.now - dt.timedelta(days=30),
            )
        self._bulk("cameras", list(cams.values()))
        return cams

    def _event_time(self) -> dt.datetime:
        # More activity by day and in the evening than at 3 am.
        while True:
            t = self.now - dt.timedelta(seconds=self.rng.uniform(0, 7 * 86400))
            weight = 0.25 + 0.75 * max(0.0, math.sin(math.pi * (t.hour - 6) / 16)) if 6 <= t.hour <= 22 else 0.2
            if self.rng.random() < weight:
                return t

    def _risk(self, classes: set[str], hour: int) -> int:
        night = hour >= 22 or hour < 6
        if "person" in classes:
            base = self.rng.choice([8, 15, 25, 35, 45, 55, 65]) + (25 if night else 0)
        elif classes & {"car", "truck"}:
            base = self.rng.choice([5, 10, 20, 30]) + (15 if night else 0)
        else:
            base = self.rng.choice([2, 5, 8, 12])
        return max(0, min(100, base + self.rng.randint(-5, 5)))

    def events(self, cameras):
        from dashboard.choices import risk_level_for

        f, rng = self.f, self.rng
        specs = []  # (event, [detection, ...])
        for _ in range(320):
            cam_id = rng.choices(list(CAMERAS), weights=[4, 3, 2, 1])[0]
            classes_w = CAMERAS[cam_id][2]
            start = self._event_time()
            n = rng.choices([1, 2, 3, 4], weights=[5, 3, 2, 1])[0]
            primary = rng.choices(list(classes_w), weights=list(classes_w.values()))[0]
            objs = [primary] + [rng.choices(list(classes_w), weights=list(classes_w.values()))[0] for _ in range(n - 1)]
            dets = []
            for i, obj in enumerate(objs):
                w = (
                    rng.randint(80, 260)
                    if obj in ("person", "dog", "cat", "bird", "package")
                    else rng.randint(300, 700)
                )
                h = int(w * (2.2 if obj == "person" else 0.7))
                dets.append(
                    f.DetectionFactory.build(
                        camera=cameras[cam_id],
                        detected_at=min(self.now, start + dt.timedelta(seconds=i * rng.uniform(1, 6))),
                        object_type=obj,
                        confidence=round(rng.uniform(0.45, 0.98), 3),
                        bbox_x=rng.randint(0, 1920 - w),
                        bbox_y=rng.randint(0, max(1, 1080 - h)),
                        bbox_width=w,
                        bbox_height=min(h, 1080),
                        file_path=f"/srv/cameras/{cam_id}/{start:%Y%m%d}/{start:%H%M%S}_{i}.jpg",
                    )
                )
            classes = set(objs)
            score = self._risk(classes, start.hour)
            summary = rng.choice(SUMMARIES[primary])
            event = f.EventFactory.build(
                camera=cameras[cam_id],
                started_at=start,
                ended_at=min(self.now, start + dt.timedelta(seconds=rng.randint(8, 180))),
                risk_score=score,
                risk_level=risk_level_for(score),
                summary=summary,
                reasoning=(
                    f"{len(objs)} detection(s) of {', '.join(sorted(classes))} on {CAMERAS[cam_id][0]} at "
                    f"{start:%H:%M}. {'Night-time presence raises the risk. ' if start.hour >= 22 or start.hour < 6 else ''}"
                    f"Behaviour consistent with: {summary.lower()}"
                ),
                object_types=",".join(sorted(classes)),
                reviewed=start < self.now - dt.timedelta(days=2) and rng.random() < 0.6,
            )
            specs.append((event, dets))
        specs.sort(key=lambda s: s[0].started_at)
        events = self._bulk("events", [e for e, _ in specs])
        detections = self._bulk("detections", [d for _, ds in specs for d in ds])
        links = [f.EventDetectionFactory.build(event=e, detection=d) for e, ds in specs for d in ds]
        self._bulk("event detections", links)
        persons = [d for d in detections if d.object_type == "person"]
        self.event_detections = {e.pk: ds for e, ds in specs}
        return events, persons

    def enrichment(self, persons):
        from dashboard.choices import ACTIONS, AGE_RANGES, POSE_CLASSES, THREAT_TYPES

        f, rng = self.f, self.rng
        # A handful of recurring people: their re-id vectors stay close across cameras,
        # so "find similar" on one detection turns up the same person elsewhere.
        identities = [[rng.gauss(0, 1) for _ in range(512)] for _ in range(8)]
        poses, demographics, reids, actions, threats = [], [], [], [], []
        for det in persons:
            pose = rng.choices(POSE_CLASSES, weights=[10, 2, 1, 1, 1, 2, 1])[0]
            poses.append(
                f.PoseResultFactory.build(
                    detection=det,
                    keypoints=[
                        [round(rng.random(), 3), round(rng.random(), 3), round(rng.uniform(0.3, 1), 2)]
                        for _ in range(17)
                    ],
                    pose_class=pose,
                    confidence=round(rng.uniform(0.55, 0.97), 3),
                    is_suspicious=pose in ("crouching", "climbing"),
                    created_at=det.detected_at + dt.timedelta(seconds=1),
                )
            )
            demographics.append(
                f.DemographicsResultFactory.build(
                    detection=det,
                    age_range=rng.choices(AGE_RANGES, weights=[1, 2, 4, 4, 3, 2, 1])[0],
                    age_confidence=round(rng.uniform(0.4, 0.9), 3),
                    gender=rng.choice(["male", "female", "unknown"]),
                    gender_confidence=round(rng.uniform(0.5, 0.95), 3),
                    created_at=det.detected_at + dt.timedelta(seconds=1),
                )
            )
            base = rng.choice(identities)
            vec = [b + rng.gauss(0, 0.15) for b in base]
            norm = math.sqrt(sum(v * v for v in vec))
            embedding = [round(v / norm, 6) for v in vec]
            reids.append(
                f.ReidEmbeddingFactory.build(
                    detection=det,
                    embedding=embedding,
                    embedding_hash=hashlib.sha256(json.dumps(embedding, separators=(",", ":")).encode()).hexdigest(),
                    created_at=det.detected_at + dt.timedelta(seconds=2),
                )
            )
            action = rng.choices(ACTIONS, weights=[10, 2, 4, 3, 1, 1, 3])[0]
            scores = {a: round(rng.uniform(0, 0.2), 3) for a in ACTIONS}
            scores[action] = round(rng.uniform(0.5, 0.95), 3)
            actions.append(
                f.ActionResultFactory.build(
                    detection=det,
                    action=action,
                    confidence=scores[action],
                    is_suspicious=action in ("loitering", "fighting", "climbing"),
                    all_scores=scores,
                    created_at=det.detected_at + dt.timedelta(seconds=2),
                )
            )
        # Weapons on a few night-time people only.
        for det in [d for d in persons if d.detected_at.hour >= 22 or d.detected_at.hour < 5][:6]:
            kind = rng.choice(THREAT_TYPES[:2] + ["weapon"])
            threats.append(
                f.ThreatDetectionFactory.build(
                    detection=det,
                    threat_type=kind,
                    confidence=round(rng.uniform(0.35, 0.85), 3),
                    severity="critical" if kind == "gun" else "high",
                    bbox=[det.bbox_x + 20, det.bbox_y + 120, det.bbox_x + 70, det.bbox_y + 190],
                    created_at=det.detected_at + dt.timedelta(seconds=1),
                )
            )
        self._bulk("pose results", poses)
        self._bulk("demographics results", demographics)
        self._bulk("re-id embeddings", reids)
        self._bulk("action results", actions)
        self._bulk("threat detections", threats)

    def reviews(self, events):
        f, rng = self.f, self.rng
        reviewed = [e for e in events if e.reviewed]
        feedback = []
        kinds = ["accurate", "correct", "false_positive", "missed_threat", "severity_wrong"]
        for i, event in enumerate(reviewed[:45]):
            kind = kinds[i % len(kinds)]
            feedback.append(
                f.EventFeedbackFactory.build(
                    event=event,
                    feedback_type=kind,
                    notes={
                        "accurate": "Matches what happened.",
                        "correct": "Right call.",
                        "false_positive": "Only a shadow moving in the wind.",
                        "missed_threat": "The person tried the gate handle; should be higher.",
                        "severity_wrong": "Delivery driver, not a threat.",
                    }[kind],
                    expected_severity=rng.choice(["low", "medium", "high"]) if kind == "severity_wrong" else None,
                    created_at=event.ended_at + dt.timedelta(hours=rng.randint(1, 30)),
                )
            )
        self._bulk("event feedback", feedback)
        audits = []
        for event in rng.sample(events, 60):
            flags = {name: rng.random() < p for name, p in AUDIT_FLAG_ODDS.items()}
            scores = [round(rng.uniform(2.0, 5.0), 1) for _ in range(4)]
            consistency_risk = max(0, min(100, event.risk_score + rng.randint(-15, 15)))
            audits.append(
                self.f.EventAuditFactory.build(
                    event=event,
                    audited_at=min(self.now, event.ended_at + dt.timedelta(minutes=rng.randint(1, 90))),
                    **flags,
                    prompt_length=rng.randint(2500, 9000),
                    prompt_token_estimate=rng.randint(600, 2300),
                    enrichment_utilization=round(sum(flags.values()) / len(flags), 2),
                    context_usage_score=scores[0],
                    reasoning_coherence_score=scores[1],
                    risk_justification_score=scores[2],
                    consistency_score=scores[3],
                    overall_quality_score=round(sum(scores) / 4, 2),
                    consistency_risk_score=consistency_risk,
                    consistency_diff=abs(consistency_risk - event.risk_score),
                    self_eval_critique="The risk score leans on time of day more than on behaviour.",
                    missing_context="No cross-camera track for the same person."
                    if not flags["has_cross_camera"]
                    else None,
                    format_suggestions="Put zone names before the detection list.",
                )
            )
        self._bulk("event audits", audits)

    # --- alerting ------------------------------------------------------------------------

    def rules(self):
        f = self.f
        webhook = {"type": "webhook", "url": "https://hooks.example.com/watchpost"}
        email = {"type": "email", "to": ["security@example.com"]}
        rules = {
            "night_person": f.AlertRuleFactory.build(
                name="Person at night",
                description="Anyone on camera between 22:00 and 06:00.",
                severity="high",
                risk_threshold=40,
                object_types=["person"],
                min_confidence=0.5,
                schedule={"days": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00", "timezone": "UTC"},
                channels=[webhook],
                cooldown_seconds=300,
            ),
            "critical": f.AlertRuleFactory.build(
                name="Critical risk anywhere",
                description="Every event the model scores critical.",
                severity="critical",
                risk_threshold=85,
                object_types=None,
                min_confidence=None,
                channels=[email, webhook],
                cooldown_seconds=0,
            ),
            "vehicle": f.AlertRuleFactory.build(
                name="Vehicle on the driveway apron",
                description="Cars or trucks stopping on the driveway.",
                severity="medium",
                risk_threshold=None,
                object_types=["car", "truck"],
                camera_ids=["driveway"],
                zone_ids=["driveway_apron"],
                min_confidence=0.6,
                dedup_key_template="{camera_id}:{rule_id}:{zone_id}",
                channels=[email],
                cooldown_seconds=900,
            ),
            "package": f.AlertRuleFactory.build(
                name="Package at the front door",
                severity="low",
                risk_threshold=None,
                object_types=["package"],
                camera_ids=["front_door"],
                min_confidence=0.5,
                schedule={"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "timezone": "Europe/London"},
                dedup_key_template="{camera_id}:{rule_id}:{object_type}",
                channels=None,
                cooldown_seconds=3600,
            ),
            "backyard": f.AlertRuleFactory.build(
                name="Backyard motion (paused)",
                description="Too noisy with the neighbour's cat; paused.",
                enabled=False,
                severity="low",
                risk_threshold=20,
                object_types=None,
                camera_ids=["backyard"],
                channels=None,
            ),
        }
        for rule in rules.values():
            rule.created_at = rule.updated_at = self.now - dt.timedelta(days=10)
        self._bulk("alert rules", list(rules.values()))
        return rules

    def zones(self, cameras):
        zones = [
            self.f.CameraZoneFactory.build(
                id=zid,
                camera=cameras[cam],
                name=name,
                zone_type=ztype,
                shape=shape,
                coordinates=coords,
                color=colour,
                priority=priority,
                enabled=zid != "driveway_sidewalk",
            )
            for cam, specs in ZONES.items()
            for zid, name, ztype, shape, coords, colour, priority in specs
        ]
        self._bulk("camera zones", zones)

    def alerts(self, events, rules):
        from alerting.models import NotificationDelivery

        f, rng = self.f, self.rng
        statuses = ["pending", "delivered", "acknowledged", "dismissed"]
        alerts, deliveries = [], []
        candidates = [
            e for e in events if e.risk_score >= 60 or ("package" in e.object_types and e.camera_id == "front_door")
        ]
        for i, event in enumerate(candidates):
            if event.risk_score >= 85:
                rule = rules["critical"]
            elif "package" in event.object_types and event.risk_score < 60:
                rule = rules["package"]
            else:
                rule = rules["night_person"]
            # Recent alerts are still open; older ones have been handled.
            age = self.now - event.started_at
            status = statuses[i % 2] if age < dt.timedelta(days=1) else statuses[1 + i % 3]
            created = event.ended_at + dt.timedelta(seconds=2)
            delivered = created + dt.timedelta(seconds=rng.randint(1, 4)) if status != "pending" else None
            dedup = rule.dedup_key_template.format(camera_id=event.camera_id, rule_id=rule.id, object_type="package")
            metadata = {
                "matched_conditions": ["risk_threshold"] if rule.risk_threshold else ["object_types"],
                "risk_score": event.risk_score,
            }
            if status == "acknowledged":
                metadata["acknowledged_by"] = "olivia_operator"
            if status == "dismissed":
                metadata["dismissed_by"] = "olivia_operator"
                metadata["dismiss_reason"] = "Known visitor"
            alert = f.AlertFactory.build(
                event=event,
                rule=rule,
                severity=rule.severity,
                status=status,
                created_at=created,
                updated_at=delivered or created,
                delivered_at=delivered,
                channels=rule.channels,
                dedup_key=dedup,
                metadata=metadata,
                version_id={"pending": 1, "delivered": 2, "acknowledged": 3, "dismissed": 3}[status],
            )
            alerts.append(alert)
            for channel in rule.channels or []:
                if status == "pending":
                    continue
                target = channel.get("url") or ", ".join(channel["to"])
                failed_first = channel["type"] == "webhook" and i % 5 == 0
                if failed_first:
                    deliveries.append(
                        NotificationDelivery(
                            alert=alert, channel_type=channel["type"], target=target, attempt=1, status="failed",
                            error="Read timeout after 10 s", created_at=created, finished_at=created + dt.timedelta(seconds=10),
                        )
                    )  # fmt: skip
                deliveries.append(
                    NotificationDelivery(
                        alert=alert, channel_type=channel["type"], target=target, attempt=2 if failed_first else 1,
                        status="succeeded", http_status=200 if channel["type"] == "webhook" else None,
                        created_at=delivered, finished_at=delivered,
                    )
                )  # fmt: skip
        self._bulk("alerts", alerts)
        self._bulk("alert deliveries", deliveries)

    def baselines(self, cameras):
        f, rng = self.f, self.rng
        activity, per_class = [], []
        build_activity, build_class = self._fast(f.ActivityBaselineFactory), self._fast(f.ClassBaselineFactory)
        for cam_id, cam in cameras.items():
            scale = {"front_door": 3.0, "driveway": 2.5, "backyard": 1.5, "garage": 0.8}[cam_id]
            for day in range(7):
                for hour in range(24):
                    daytime = max(0.05, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.05
                    weekend = 1.3 if day >= 5 else 1.0
                    activity.append(
                        build_activity(
                            camera=cam, day_of_week=day, hour=hour, avg_count=round(scale * daytime * weekend * rng.uniform(0.8, 1.2), 3),
                            sample_count=rng.randint(3, 12), last_updated=self.now - dt.timedelta(hours=rng.randint(0, 6)),
                        )
                    )  # fmt: skip
            for cls, weight in CAMERAS[cam_id][2].items():
                for hour in range(24):
                    daytime = max(0.05, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.05
                    per_class.append(
                        build_class(
                            camera=cam, detection_class=cls, hour=hour, frequency=round(weight * daytime * rng.uniform(0.2, 0.5), 3),
                            sample_count=rng.randint(5, 40), last_updated=self.now - dt.timedelta(hours=rng.randint(0, 6)),
                        )
                    )  # fmt: skip
        self._bulk("activity baselines", activity)
        self._bulk("class baselines", per_class)

    # --- monitoring ------------------------------------------------------------------------

    def gpu_history(self):
        from monitoring.models import SamplerStatus

        f, rng = self.f, self.rng
        gpus = [
            (0, "NVIDIA RTX A5500", 24564, 230.0, "GPU-3f6a1c2e-0000-4a5b-9c1d-5e6f7a8b9c00"),
            (1, "NVIDIA RTX A2000 12GB", 12282, 70.0, "GPU-7b2d4e6f-1111-4c3d-8e5f-6a7b8c9d0e11"),
        ]
        # Every minute for the last 24 h, every 15 minutes for the six days before.
        times = [self.now - dt.timedelta(minutes=m) for m in range(0, 24 * 60)]
        times += [self.now - dt.timedelta(days=1, minutes=15 * k) for k in range(1, 6 * 96 + 1)]
        samples = []
        build = self._fast(f.GpuStatFactory)
        for index, name, total, limit, gpu_uuid in gpus:
            load = 0.75 if index == 0 else 0.35  # GPU 0 runs detection, GPU 1 enrichment
            for t in times:
                daytime = 0.4 + 0.6 * max(0.0, math.sin(math.pi * (t.hour - 6) / 16)) if 6 <= t.hour <= 22 else 0.35
                util = max(0.0, min(100.0, 100 * load * daytime + rng.gauss(0, 6)))
                temp = 38 + util * 0.45 + rng.gauss(0, 1.5)
                throttled = temp > 80
                samples.append(
                    build(
                        recorded_at=t, host="demo-gpu-host", gpu_index=index, gpu_name=name, gpu_uuid=gpu_uuid,
                        gpu_utilization=round(util, 1), memory_total=total,
                        memory_used=int(total * (0.45 + 0.4 * util / 100) + rng.gauss(0, 150)),
                        temperature=round(temp, 1), power_usage=round(limit * (0.2 + 0.75 * util / 100), 1), power_limit=limit,
                        inference_fps=round(util / 100 * (14 if index == 0 else 6) + rng.uniform(0, 1), 2),
                        fan_speed=int(30 + util * 0.5), sm_clock=int(1200 + util * 8), sm_clock_max=2100,
                        memory_clock=7001, memory_clock_max=8001, memory_bandwidth_utilization=round(util * 0.6, 1),
                        pstate=0 if util > 30 else 2, throttle_reasons=0x20 if throttled else 0,
                        compute_processes_count=3 if index == 0 else 2, temp_slowdown_threshold=88.0,
                        pcie_tx_throughput=int(800 + util * 40), pcie_rx_throughput=int(1500 + util * 90),
                        encoder_utilization=0, decoder_utilization=int(util * 0.3), bar1_used=int(8 + util * 0.2),
                    )
                )  # fmt: skip
        self._bulk("GPU samples", samples)
        SamplerStatus.objects.update_or_create(
            host="demo-gpu-host",
            defaults={
                "available": True,
                "gpu_count": 2,
                "driver_version": "550.54.14",
                "details": {
                    "gpus": [{"index": i, "uuid": u, "processes": [], "unsupported": []} for i, _, _, _, u in gpus]
                },
                "updated_at": self.now,
            },
        )
        self.counts["sampler statuses"] = 1

    def logs(self, events):
        f, rng = self.f, self.rng
        cams = list(CAMERAS)
        weights = [t[3] for t in LOG_TEMPLATES]
        logs = []
        build = self._fast(f.LogFactory)
        for _ in range(1500):
            level, component, template, _ = rng.choices(LOG_TEMPLATES, weights=weights)[0]
            event = rng.choice(events)
            det = rng.choice(self.event_detections[event.pk])
            cam = event.camera_id if "{cam}" in template else None
            message = template.format(
                cam=cam or rng.choice(cams), n=rng.randint(2, 40), ms=rng.randint(8, 90), det=det.pk, obj=det.object_type,
                conf=f"{det.confidence:.2f}", ev=event.pk, score=event.risk_score, tokens=rng.randint(600, 2300),
                k=rng.randint(1, 5), temp=rng.randint(80, 86),
            )  # fmt: skip
            logs.append(
                build(
                    timestamp=self.now - dt.timedelta(seconds=rng.uniform(0, 7 * 86400)),
                    level=level,
                    component=component,
                    message=message,
                    camera_id=cam,
                    event_id=event.pk if "{ev}" in template else None,
                    detection_id=det.pk if "{det}" in template or "{obj}" in template else None,
                    request_id=str(uuid.UUID(int=rng.getrandbits(128))) if component in ("llm", "alerting") else None,
                    duration_ms=rng.randint(8, 5000) if component in ("detector", "llm", "enrichment") else None,
                    extra={"model": "yolo26-m", "batch": rng.randint(1, 8)} if component == "detector" else None,
                    source="backend",
                )
            )
        for _ in range(60):
            level, component, template = rng.choice(FRONTEND_MESSAGES)
            event = rng.choice(events)
            logs.append(
                build(
                    timestamp=self.now - dt.timedelta(seconds=rng.uniform(0, 7 * 86400)),
                    level=level,
                    component=component,
                    message=template.format(ev=event.pk),
                    event_id=event.pk if "{ev}" in template else None,
                    source="frontend",
                    user_agent=USER_AGENT,
                    extra={"url": "/events/", "line": 212} if level == "ERROR" else None,
                )
            )
        logs.sort(key=lambda log: log.timestamp)
        self._bulk("logs", logs)

    def audit_rows(self, events, rules):
        f, rng = self.f, self.rng
        rows = []

        def add(when, action, rtype, rid, actor, details=None, status="success", ip="192.168.1.20"):
            rows.append(
                f.AuditLogFactory.build(
                    timestamp=when, action=action, resource_type=rtype, resource_id=None if rid is None else str(rid),
                    actor=actor, ip_address=ip, user_agent=USER_AGENT if actor != "system" else None, details=details, status=status,
                )
            )  # fmt: skip

        for day in range(7):
            start = self.now - dt.timedelta(days=day, hours=rng.randint(1, 10))
            add(start, "login", "user", 1, "olivia_operator")
            event = rng.choice(events)
            add(
                start + dt.timedelta(minutes=3),
                "review",
                "event",
                event.pk,
                "olivia_operator",
                {"changes": {"reviewed": [False, True]}},
            )
            add(start + dt.timedelta(minutes=40), "logout", "user", 1, "olivia_operator")
        add(
            self.now - dt.timedelta(days=2, hours=3),
            "login_failed",
            "user",
            None,
            "mallory",
            {"username": "admin"},
            "failure",
            "203.0.113.9",
        )
        add(
            self.now - dt.timedelta(days=2, hours=3) + dt.timedelta(seconds=4),
            "login_failed",
            "user",
            None,
            "mallory",
            {"username": "root"},
            "failure",
            "203.0.113.9",
        )
        rule = rules["night_person"]
        add(
            self.now - dt.timedelta(days=6),
            "update",
            "alert_rule",
            rule.id,
            "olivia_operator",
            {"changes": {"risk_threshold": [50, 40]}},
        )
        add(
            self.now - dt.timedelta(days=5),
            "update",
            "alert_rule",
            rules["backyard"].id,
            "olivia_operator",
            {"changes": {"enabled": [True, False]}},
        )
        add(
            self.now - dt.timedelta(days=5, hours=1),
            "create",
            "camera_zone",
            "backyard_gate",
            "olivia_operator",
            {"camera_id": "backyard"},
        )
        add(
            self.now - dt.timedelta(days=1),
            "acknowledge",
            "alert",
            uuid.UUID(int=rng.getrandbits(128)),
            "olivia_operator",
            {"changes": {"status": ["delivered", "acknowledged"]}},
        )
        add(
            self.now - dt.timedelta(hours=20),
            "export_create",
            "export_job",
            None,
            "olivia_operator",
            {"export_type": "events", "format": "csv"},
        )
        add(
            self.now - dt.timedelta(hours=19),
            "export_download",
            "export_job",
            None,
            "olivia_operator",
            {"sensitivity_acknowledged": True},
        )
        add(self.now - dt.timedelta(hours=12), "backup_create", "backup_job", None, "sam_staff")
        add(
            self.now - dt.timedelta(hours=11),
            "restore_upload",
            "restore_job",
            None,
            "sam_staff",
            {"reason": "Checksum mismatch for table logs"},
            "failure",
        )
        add(
            self.now - dt.timedelta(hours=2),
            "cleanup",
            "retention",
            None,
            "system",
            {"deleted": {"gpu_stats": 0, "logs": 0}},
        )
        rows.sort(key=lambda r: r.timestamp)
        self._bulk("audit rows", rows)

    # --- jobs --------------------------------------------------------------------------------

    def _job(
        self,
        job_type,
        status,
        created,
        *,
        duration=None,
        attempts=1,
        max_attempts=3,
        error=None,
        progress=None,
        step=None,
        result=None,
        kwargs=None,
        created_by="olivia_operator",
        logs=(),
    ):
        """A job and the attempts, transitions and logs its life would have left behind."""
        f = self.f
        finished = status in ("completed", "failed", "cancelled")
        started = created + dt.timedelta(seconds=2) if status != "queued" else None
        duration = duration or dt.timedelta(seconds=30)
        job = f.JobFactory.build(
            job_type=job_type, status=status, created_at=created, started_at=started,
            progress_percent=100 if status == "completed" else (progress or 0), current_step=step, result=result,
            error_message=error, error_traceback=f"Traceback (most recent call last):\n  ...\nRuntimeError: {error}" if error else None,
            attempt_number=attempts, max_attempts=max_attempts, kwargs=kwargs or {}, created_by=created_by,
            heartbeat_at=self.now if status == "running" else None,
        )  # fmt: skip
        job_attempts, transitions, job_logs = [], [], []
        t = created
        for n in range(1, attempts + 1):
            if status == "queued" and n == attempts:
                break
            a_start = started if n == 1 else t + dt.timedelta(seconds=30 * 2 ** (n - 1))
            last = n == attempts
            a_status = (
                {"completed": "succeeded", "failed": "failed", "cancelled": "cancelled", "running": "started"}[status]
                if last
                else "failed"
            )
            a_end = (a_start + (duration if last else dt.timedelta(seconds=20))) if a_status != "started" else None
            a_error = (error or "Database connection reset by peer") if a_status == "failed" else None
            transitions.append(
                f.JobTransitionFactory.build(
                    job=job, from_status="queued", to_status="running", triggered_by="worker", transitioned_at=a_start
                )
            )
            job_attempts.append(
                f.JobAttemptFactory.build(
                    job=job, attempt_number=n, started_at=a_start, ended_at=a_end, status=a_status, worker_id="demo-worker:4242",
                    error_message=a_error, result=result if a_status == "succeeded" else None,
                )
            )  # fmt: skip
            job_logs.append(
                f.JobLogFactory.build(
                    job=job,
                    attempt_number=n,
                    timestamp=a_start,
                    level="info",
                    message=f"Attempt {n} started on demo-worker:4242",
                )
            )
            for k, (level, message) in enumerate(logs):
                job_logs.append(
                    f.JobLogFactory.build(
                        job=job,
                        attempt_number=n,
                        timestamp=a_start + dt.timedelta(seconds=k + 1),
                        level=level,
                        message=message,
                    )
                )
            if a_status == "failed":
                job_logs.append(
                    f.JobLogFactory.build(
                        job=job,
                        attempt_number=n,
                        timestamp=a_end,
                        level="error",
                        message=a_error,
                        context={"exception": "RuntimeError"},
                    )
                )
                transitions.append(
                    f.JobTransitionFactory.build(
                        job=job, from_status="running", to_status="failed", triggered_by="worker", transitioned_at=a_end
                    )
                )
                if not last:
                    transitions.append(
                        f.JobTransitionFactory.build(
                            job=job, from_status="failed", to_status="queued", triggered_by="retry", transitioned_at=a_end,
                            metadata_json=json.dumps({"attempt": n + 1, "backoff_seconds": 30 * 2 ** n}),
                        )
                    )  # fmt: skip
            elif a_status in ("succeeded", "cancelled"):
                transitions.append(
                    f.JobTransitionFactory.build(
                        job=job, from_status="running", to_status="completed" if a_status == "succeeded" else "cancelled",
                        triggered_by="worker" if a_status == "succeeded" else "user", transitioned_at=a_end,
                    )
                )  # fmt: skip
            t = a_end or a_start
        if finished:
            job.completed_at = t
        self._pending_jobs.append((job, job_attempts, transitions, job_logs))
        return job

    def jobs(self, events):
        from dashboard.fields import uuid7

        f = self.f
        self._pending_jobs = []
        day = dt.timedelta(days=1)
        export_ids = [uuid7(), uuid7()]
        export_job = self._job(
            "export", "completed", self.now - 20 * dt.timedelta(hours=1), duration=dt.timedelta(seconds=4),
            result={"rows": len(events)}, kwargs={"export_id": str(export_ids[0])}, logs=[("info", f"Exporting {len(events)} events as csv."), ("info", "Ready to download")],
        )  # fmt: skip
        cancelled_export = self._job(
            "export",
            "cancelled",
            self.now - 3 * day,
            duration=dt.timedelta(seconds=9),
            kwargs={"export_id": str(export_ids[1])},
            logs=[("warning", "Cancelled by an operator.")],
        )
        backup_job = self._job(
            "backup", "completed", self.now - 12 * dt.timedelta(hours=1), duration=dt.timedelta(minutes=2), created_by="sam_staff",
            result={"tables": 8}, kwargs={}, logs=[("info", "Wrote table events"), ("info", "Wrote table logs"), ("info", "Manifest written")],
        )  # fmt: skip
        restore_job = self._job(
            "restore", "failed", self.now - 11 * dt.timedelta(hours=1), duration=dt.timedelta(seconds=5), max_attempts=1, created_by="sam_staff",
            error="Checksum mismatch for table logs: the backup file is damaged", kwargs={},
        )  # fmt: skip
        self._job(
            "cleanup",
            "completed",
            self.now - 2 * dt.timedelta(hours=1),
            created_by="system",
            result={"gpu_stats": 0, "logs": 0, "jobs": 0, "exports": 0},
            logs=[("info", "Deleted 0 gpu_stats rows older than 30 days")],
        )
        self._job("cleanup", "queued", self.now - dt.timedelta(minutes=1), created_by="system")
        self._job(
            "baseline_rebuild",
            "running",
            self.now - dt.timedelta(minutes=4),
            progress=45,
            step="Camera driveway: 11 of 24 hours",
            kwargs={"camera_id": "driveway"},
            logs=[("info", "Rebuilding baselines for driveway from 7 days of history")],
        )
        self._job(
            "alert_delivery",
            "failed",
            self.now - 2 * day,
            attempts=3,
            max_attempts=3,
            error="Webhook https://hooks.example.com/watchpost answered HTTP 503",
            created_by="system",
            kwargs={
                "alert_id": str(uuid.UUID(int=0)),
                "channel_type": "webhook",
                "target": "https://hooks.example.com/watchpost",
            },
        )
        self._job(
            "reid_reindex",
            "completed",
            self.now - 4 * day,
            duration=dt.timedelta(seconds=12),
            result={"indexed": self.counts.get("re-id embeddings", 0)},
            created_by="sam_staff",
            logs=[("info", "Indexed re-id embeddings.")],
        )
        self._job(
            "baseline_rebuild",
            "completed",
            self.now - 5 * day,
            attempts=2,
            duration=dt.timedelta(minutes=3),
            error=None,
            result={"slots": 672},
            created_by="system",
        )

        all_jobs = [j for j, *_ in self._pending_jobs]
        self._bulk("jobs", all_jobs)
        self._bulk("job attempts", [a for _, attempts, _, _ in self._pending_jobs for a in attempts])
        self._bulk("job transitions", [t for _, _, ts, _ in self._pending_jobs for t in ts])
        self._bulk("job logs", [entry for *_, entries in self._pending_jobs for entry in entries])

        # The export's file really exists, so the demo's download button works.
        name = f"events-demo-{secrets.token_hex(16)}.csv"
        path = settings.EXPORT_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                ["id", "camera_id", "started_at", "ended_at", "risk_score", "risk_level", "summary", "reviewed"]
            )
            for e in events:
                writer.writerow(
                    [
                        e.pk,
                        e.camera_id,
                        e.started_at.isoformat(),
                        e.ended_at.isoformat(),
                        e.risk_score,
                        e.risk_level,
                        e.summary,
                        e.reviewed,
                    ]
                )
        size = path.stat().st_size
        exports = [
            f.ExportJobFactory.build(
                id=export_ids[0], status="completed", export_type="events", export_format="csv", total_items=len(events), processed_items=len(events),
                progress_percent=100, current_step="Ready to download", created_at=export_job.created_at, started_at=export_job.started_at,
                completed_at=export_job.completed_at, output_path=name, output_size_bytes=size, filter_params=json.dumps({"camera": "", "risk_level": []}),
                expires_at=export_job.created_at + dt.timedelta(days=7), download_count=1, last_downloaded_at=export_job.completed_at + dt.timedelta(hours=1),
                sensitivity_acknowledged=True, acknowledged_at=export_job.completed_at + dt.timedelta(hours=1),
                compliance_metadata={"acknowledged_by": "olivia_operator", "downloads": [{"by": "olivia_operator", "ip": "192.168.1.20"}]},
                job=export_job, created_by="olivia_operator",
            ),
            f.ExportJobFactory.build(
                id=export_ids[1], status="failed", export_type="alerts", export_format="xlsx", processed_items=0, created_at=cancelled_export.created_at,
                started_at=cancelled_export.started_at, completed_at=cancelled_export.completed_at, error_message="Cancelled by an operator.",
                filter_params=json.dumps({"status": ["pending"]}), expires_at=cancelled_export.created_at + dt.timedelta(days=30),
                retention_days=30, legal_hold=True, job=cancelled_export, created_by="olivia_operator",
            ),
        ]  # fmt: skip
        self._bulk("export jobs", exports)
        table_rows = {
            t: self.counts.get(label, 0)
            for t, label in [
                ("cameras", "cameras"),
                ("events", "events"),
                ("detections", "detections"),
                ("alerts", "alerts"),
                ("alert_rules", "alert rules"),
                ("camera_zones", "camera zones"),
                ("logs", "logs"),
                ("audit_logs", "audit rows"),
            ]
        }
        manifest = {
            "format_version": 1,
            "created_at": backup_job.created_at.isoformat(),
            "app_version": "0.1.0",
            "tables": {
                t: {"rows": n, "sha256": hashlib.sha256(f"{t}:{n}".encode()).hexdigest()} for t, n in table_rows.items()
            },
            "demo": True,
        }
        self._bulk(
            "backup jobs",
            [
                f.BackupJobFactory.build(
                    status="completed", total_tables=8, completed_tables=8, progress_percent=100,
                    current_step="Demo record: no backup file was written", created_at=backup_job.created_at,
                    started_at=backup_job.started_at, completed_at=backup_job.completed_at, manifest_json=manifest,
                    job=backup_job, created_by="sam_staff",
                )
            ],
        )  # fmt: skip
        self._bulk(
            "restore jobs",
            [
                f.RestoreJobFactory.build(
                    status="failed", backup_id="demo-backup", backup_created_at=backup_job.created_at, total_tables=8,
                    completed_tables=0, progress_percent=10, current_step="Validating checksums", created_at=restore_job.created_at,
                    started_at=restore_job.started_at, completed_at=restore_job.completed_at,
                    error_message=restore_job.error_message, job=restore_job, created_by="sam_staff",
                )
            ],
        )  # fmt: skip


# Share of audited events whose prompt carried each kind of enrichment.
AUDIT_FLAG_ODDS = {
    "has_yolo26": 1.0, "has_florence": 0.8, "has_clip": 0.7, "has_violence": 0.3, "has_clothing": 0.5, "has_vehicle": 0.4,
    "has_pet": 0.2, "has_weather": 0.6, "has_image_quality": 0.9, "has_zones": 0.7, "has_baseline": 0.5, "has_cross_camera": 0.2,
}  # fmt: skip
