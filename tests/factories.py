"""factory-boy factories for every model. Apps append their own below their heading."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone
from factory.django import DjangoModelFactory

from alerting import models as am
from alerting.choices import AlertStatus, ZoneShape, ZoneType
from dashboard import models as dm
from dashboard.choices import FeedbackType, Severity, risk_level_for
from jobs import models as jm
from jobs.choices import AttemptStatus, ExportFormat, ExportType, JobStatus, TriggeredBy
from monitoring import models as mm
from monitoring.choices import LogLevel

# --- Users -----------------------------------------------------------------------------


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct-horse-battery")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        role = kwargs.pop("role", "operator")
        user = super()._create(model_class, *args, **kwargs)
        if role:
            group, _ = Group.objects.get_or_create(name={"operator": "Operators", "viewer": "Viewers"}[role])
            user.groups.add(group)
        return user


# --- dashboard ---------------------------------------------------------------------------


class CameraFactory(DjangoModelFactory):
    class Meta:
        model = dm.Camera
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"camera_{n}")
    name = factory.LazyAttribute(lambda o: o.id.replace("_", " ").title())
    status = "online"
    last_seen_at = factory.LazyFunction(timezone.now)


class EventFactory(DjangoModelFactory):
    class Meta:
        model = dm.Event

    camera = factory.SubFactory(CameraFactory)
    started_at = factory.LazyFunction(timezone.now)
    ended_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(seconds=30))
    risk_score = factory.Faker("random_int", min=0, max=100)
    risk_level = factory.LazyAttribute(lambda o: risk_level_for(o.risk_score))
    summary = factory.Faker("sentence")
    reasoning = factory.Faker("paragraph")
    object_types = "person"
    reviewed = False


class DetectionFactory(DjangoModelFactory):
    class Meta:
        model = dm.Detection

    camera = factory.SubFactory(CameraFactory)
    detected_at = factory.LazyFunction(timezone.now)
    object_type = "person"
    confidence = factory.Faker("pyfloat", min_value=0.5, max_value=0.99)
    bbox_x = 800
    bbox_y = 400
    bbox_width = 200
    bbox_height = 400
    image_width = 1920
    image_height = 1080


class EventDetectionFactory(DjangoModelFactory):
    class Meta:
        model = dm.EventDetection

    event = factory.SubFactory(EventFactory)
    detection = factory.SubFactory(DetectionFactory, camera=factory.SelfAttribute("..event.camera"))


class PoseResultFactory(DjangoModelFactory):
    class Meta:
        model = dm.PoseResult

    detection = factory.SubFactory(DetectionFactory)
    keypoints = factory.LazyFunction(
        lambda: [[round(random.random(), 3), round(random.random(), 3), 0.9] for _ in range(17)]
    )
    pose_class = "standing"
    confidence = 0.9
    is_suspicious = False


class ThreatDetectionFactory(DjangoModelFactory):
    class Meta:
        model = dm.ThreatDetection

    detection = factory.SubFactory(DetectionFactory)
    threat_type = "knife"
    confidence = 0.8
    severity = Severity.HIGH
    bbox = [10, 10, 50, 50]


class DemographicsResultFactory(DjangoModelFactory):
    class Meta:
        model = dm.DemographicsResult

    detection = factory.SubFactory(DetectionFactory)
    age_range = "21-30"
    age_confidence = 0.7
    gender = "unknown"
    gender_confidence = 0.6


def _embedding(seed: int | None = None) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(-1, 1), 6) for _ in range(512)]


class ReidEmbeddingFactory(DjangoModelFactory):
    class Meta:
        model = dm.ReidEmbedding

    detection = factory.SubFactory(DetectionFactory)
    embedding = factory.Sequence(lambda n: _embedding(n))
    embedding_hash = factory.LazyAttribute(
        lambda o: hashlib.sha256(json.dumps(o.embedding, separators=(",", ":")).encode()).hexdigest()
    )


class ActionResultFactory(DjangoModelFactory):
    class Meta:
        model = dm.ActionResult

    detection = factory.SubFactory(DetectionFactory)
    action = "walking"
    confidence = 0.8
    is_suspicious = False
    all_scores = {"walking": 0.8, "running": 0.1, "loitering": 0.1}


class EventFeedbackFactory(DjangoModelFactory):
    class Meta:
        model = dm.EventFeedback

    event = factory.SubFactory(EventFactory)
    feedback_type = FeedbackType.ACCURATE
    notes = "Looks right."


class EventAuditFactory(DjangoModelFactory):
    class Meta:
        model = dm.EventAudit

    event = factory.SubFactory(EventFactory)
    has_yolo26 = True
    has_florence = True
    has_clip = True
    prompt_length = 4200
    prompt_token_estimate = 1050
    enrichment_utilization = 0.6
    context_usage_score = 4.0
    reasoning_coherence_score = 4.0
    risk_justification_score = 3.5
    consistency_score = 4.0
    overall_quality_score = 3.9


# --- monitoring ------------------------------------------------------------------------------


class GpuStatFactory(DjangoModelFactory):
    class Meta:
        model = mm.GpuStat

    recorded_at = factory.LazyFunction(timezone.now)
    gpu_name = "NVIDIA RTX A5500"
    gpu_index = 0
    gpu_uuid = factory.LazyAttribute(lambda o: f"GPU-0000000{o.gpu_index}-aaaa-bbbb-cccc-000000000000")
    host = "localhost"
    gpu_utilization = 42.0
    memory_used = 8000
    memory_total = 24576
    temperature = 61.0
    power_usage = 120.0
    power_limit = 230.0
    inference_fps = 12.5
    fan_speed = 40
    sm_clock = 1500
    sm_clock_max = 2100
    memory_clock = 7000
    memory_clock_max = 8000
    memory_bandwidth_utilization = 30.0
    pstate = 2
    throttle_reasons = 0
    compute_processes_count = 2
    pcie_replay_counter = 0
    temp_slowdown_threshold = 90.0
    pcie_link_gen = 4
    pcie_link_width = 16
    pcie_tx_throughput = 1000
    pcie_rx_throughput = 2000
    encoder_utilization = 0
    decoder_utilization = 10
    bar1_used = 10


class LogFactory(DjangoModelFactory):
    class Meta:
        model = mm.Log

    timestamp = factory.LazyFunction(timezone.now)
    level = LogLevel.INFO
    component = "detector"
    message = factory.Faker("sentence")
    source = "backend"


class AuditLogFactory(DjangoModelFactory):
    class Meta:
        model = mm.AuditLog

    timestamp = factory.LazyFunction(timezone.now)
    action = "update"
    resource_type = "alert_rule"
    resource_id = factory.Sequence(str)
    actor = "olivia_operator"
    ip_address = "127.0.0.1"
    details = {"changes": {"enabled": [True, False]}}
    status = "success"


# --- alerting ----------------------------------------------------------------------------------


class AlertRuleFactory(DjangoModelFactory):
    class Meta:
        model = am.AlertRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    description = "Person at night"
    enabled = True
    severity = Severity.HIGH
    risk_threshold = 50
    object_types = ["person"]
    camera_ids = None
    zone_ids = None
    min_confidence = 0.5
    schedule = None
    dedup_key_template = "{camera_id}:{rule_id}"
    cooldown_seconds = 300
    channels = None


class AlertFactory(DjangoModelFactory):
    class Meta:
        model = am.Alert

    event = factory.SubFactory(EventFactory)
    rule = factory.SubFactory(AlertRuleFactory)
    severity = Severity.HIGH
    status = AlertStatus.PENDING
    dedup_key = factory.LazyAttribute(lambda o: f"{o.event.camera_id}:{o.rule.id if o.rule else 'none'}")
    metadata = factory.LazyFunction(lambda: {"matched_conditions": ["risk_threshold"]})


class CameraZoneFactory(DjangoModelFactory):
    class Meta:
        model = am.CameraZone

    id = factory.Sequence(lambda n: f"zone_{n}")
    camera = factory.SubFactory(CameraFactory)
    name = factory.Sequence(lambda n: f"Zone {n}")
    zone_type = ZoneType.ENTRY_POINT
    coordinates = [[0.1, 0.1], [0.6, 0.1], [0.6, 0.9], [0.1, 0.9]]
    shape = ZoneShape.RECTANGLE
    color = "#3B82F6"
    enabled = True
    priority = 0


class ActivityBaselineFactory(DjangoModelFactory):
    class Meta:
        model = am.ActivityBaseline
        django_get_or_create = ("camera", "hour", "day_of_week")

    camera = factory.SubFactory(CameraFactory)
    hour = 12
    day_of_week = 0
    avg_count = 3.0
    sample_count = 10


class ClassBaselineFactory(DjangoModelFactory):
    class Meta:
        model = am.ClassBaseline
        django_get_or_create = ("camera", "detection_class", "hour")

    camera = factory.SubFactory(CameraFactory)
    detection_class = "person"
    hour = 12
    frequency = 2.0
    sample_count = 10


# --- jobs ----------------------------------------------------------------------------------------


class JobFactory(DjangoModelFactory):
    class Meta:
        model = jm.Job

    job_type = "cleanup"
    status = JobStatus.QUEUED
    priority = 2
    created_at = factory.LazyFunction(timezone.now)
    max_attempts = 3
    kwargs = factory.LazyFunction(dict)


class JobAttemptFactory(DjangoModelFactory):
    class Meta:
        model = jm.JobAttempt

    job = factory.SubFactory(JobFactory)
    attempt_number = 1
    started_at = factory.LazyAttribute(lambda o: o.job.created_at)
    status = AttemptStatus.STARTED
    worker_id = "worker-1"


class JobLogFactory(DjangoModelFactory):
    class Meta:
        model = jm.JobLog

    job = factory.SubFactory(JobFactory)
    attempt_number = 1
    level = "info"
    message = factory.Faker("sentence")


class JobTransitionFactory(DjangoModelFactory):
    class Meta:
        model = jm.JobTransition

    job = factory.SubFactory(JobFactory)
    from_status = JobStatus.QUEUED
    to_status = JobStatus.RUNNING
    triggered_by = TriggeredBy.WORKER


class ExportJobFactory(DjangoModelFactory):
    class Meta:
        model = jm.ExportJob

    export_type = ExportType.EVENTS
    export_format = ExportFormat.CSV
    status = "pending"


class BackupJobFactory(DjangoModelFactory):
    class Meta:
        model = jm.BackupJob

    status = "pending"


class RestoreJobFactory(DjangoModelFactory):
    class Meta:
        model = jm.RestoreJob

    status = "pending"
