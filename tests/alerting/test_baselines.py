import datetime as dt
import zoneinfo

import pytest
from django.urls import reverse
from django_q.models import Schedule

from alerting.models import ActivityBaseline, ClassBaseline
from alerting.schedules import BASELINE_SCHEDULE, ensure_schedules
from alerting.services import baselines
from jobs.models import Job
from tests import factories

pytestmark = pytest.mark.django_db
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
# Monday 2026-03-02, 14:00 local.
MON_14 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.BASELINE_ALPHA = 0.1
    settings.BASELINE_MIN_SAMPLES = 7


def events_at(camera, start, n, minute_step=5):
    return [
        factories.EventFactory(camera=camera, started_at=start + dt.timedelta(minutes=i * minute_step))
        for i in range(n)
    ]


def detections_at(camera, start, **counts):
    for cls, n in counts.items():
        for i in range(n):
            factories.DetectionFactory(camera=camera, object_type=cls, detected_at=start + dt.timedelta(minutes=i))


def test_ewma_first_sample_sets_the_average_and_then_converges_to_real_counts():
    assert baselines.ewma(0.0, 0, 7) == 7.0
    avg, n = 1.0, 10  # upstream's stuck value
    for _ in range(60):
        avg, n = baselines.ewma(avg, n, 6), n + 1
    assert avg == pytest.approx(6, abs=0.02)
    assert baselines.ewma(4.0, 3, 14) == pytest.approx(0.1 * 14 + 0.9 * 4)


def test_hourly_update_counts_events_per_camera_including_zero():
    busy = factories.CameraFactory(id="busy")
    factories.CameraFactory(id="quiet")
    events_at(busy, MON_14, 3)
    factories.EventFactory(camera=busy, started_at=MON_14 + dt.timedelta(hours=1))  # next hour: not counted
    result = baselines.update_hour(MON_14, now=MON_14 + dt.timedelta(hours=1, minutes=2))
    assert result["activity_slots"] == 2
    rows = {r.camera_id: r for r in ActivityBaseline.objects.all()}
    assert (rows["busy"].day_of_week, rows["busy"].hour) == (0, 14)
    assert (rows["busy"].avg_count, rows["busy"].sample_count) == (3.0, 1)
    assert (rows["quiet"].avg_count, rows["quiet"].sample_count) == (0.0, 1)


def test_hourly_update_is_idempotent_and_applies_the_ewma_a_week_later():
    cam = factories.CameraFactory()
    events_at(cam, MON_14, 3)
    baselines.update_hour(MON_14, now=MON_14 + dt.timedelta(hours=1))
    baselines.update_hour(MON_14, now=MON_14 + dt.timedelta(hours=2))  # ran twice: no double count
    row = ActivityBaseline.objects.get(camera=cam)
    assert (row.avg_count, row.sample_count) == (3.0, 1)
    next_week = MON_14 + dt.timedelta(days=7)
    events_at(cam, next_week, 5)
    baselines.update_hour(next_week, now=next_week + dt.timedelta(hours=1))
    row.refresh_from_db()
    assert row.avg_count == pytest.approx(0.1 * 5 + 0.9 * 3) and row.sample_count == 2


def test_hourly_update_of_class_baselines_keeps_known_classes_with_zero():
    cam = factories.CameraFactory()
    detections_at(cam, MON_14, person=2, car=1)
    baselines.update_hour(MON_14, now=MON_14 + dt.timedelta(hours=1))
    tue = MON_14 + dt.timedelta(days=1)
    detections_at(cam, tue, car=3)
    baselines.update_hour(tue, now=tue + dt.timedelta(hours=1))
    rows = {r.detection_class: r for r in ClassBaseline.objects.filter(camera=cam, hour=14)}
    assert rows["person"].frequency == pytest.approx(0.9 * 2) and rows["person"].sample_count == 2
    assert rows["car"].frequency == pytest.approx(0.1 * 3 + 0.9 * 1) and rows["car"].sample_count == 2


def test_hourly_update_refuses_an_incomplete_hour():
    with pytest.raises(ValueError):
        baselines.update_hour(MON_14, now=MON_14 + dt.timedelta(minutes=30))


def test_default_hour_is_the_previous_complete_local_hour():
    now = dt.datetime(2026, 3, 2, 15, 2, tzinfo=BERLIN)
    assert baselines.previous_complete_hour(now) == MON_14


def test_rebuild_matches_the_hourly_updates_it_replaces():
    cam = factories.CameraFactory()
    start = MON_14 - dt.timedelta(hours=2)
    for h, n in [(0, 2), (1, 0), (2, 4), (5, 1), (26, 3), (50, 2)]:
        events_at(cam, start + dt.timedelta(hours=h), n)
    detections_at(cam, start + dt.timedelta(hours=3), person=2)
    detections_at(cam, start + dt.timedelta(hours=27), person=1, dog=2)
    end = start + dt.timedelta(hours=60)
    h = start
    while h < end:
        baselines.update_hour(h, now=h + dt.timedelta(hours=1))
        h += dt.timedelta(hours=1)
    hourly_a = {
        (r.day_of_week, r.hour): (round(r.avg_count, 9), r.sample_count) for r in ActivityBaseline.objects.all()
    }
    hourly_c = {
        (r.detection_class, r.hour): (round(r.frequency, 9), r.sample_count) for r in ClassBaseline.objects.all()
    }
    totals = baselines.rebuild(now=end + dt.timedelta(minutes=1))
    rebuilt_a = {
        (r.day_of_week, r.hour): (round(r.avg_count, 9), r.sample_count) for r in ActivityBaseline.objects.all()
    }
    rebuilt_c = {
        (r.detection_class, r.hour): (round(r.frequency, 9), r.sample_count) for r in ClassBaseline.objects.all()
    }
    assert rebuilt_a == hourly_a
    assert rebuilt_c == hourly_c
    assert totals["hours"] == 60 and totals["cameras"] == 1


def test_rebuild_of_an_unknown_camera_fails_clearly():
    with pytest.raises(ValueError, match="Unknown camera"):
        baselines.rebuild(camera_id="nope")


def test_anomaly_score_needs_enough_samples():
    cam = factories.CameraFactory()
    events = events_at(cam, MON_14, 8)
    assert baselines.anomaly_score_for_event(events[0]) is None  # no baseline
    factories.ActivityBaselineFactory(camera=cam, day_of_week=0, hour=14, avg_count=4.0, sample_count=6)
    assert baselines.anomaly_score_for_event(events[0]) is None  # 6 < 7 samples
    ActivityBaseline.objects.update(sample_count=7)
    assert baselines.anomaly_score_for_event(events[0]) == 2.0  # (8 - 4) / sqrt(4)
    assert baselines.anomaly_score(0, 0.2) == -0.2  # quiet slots: divided by 1, not sqrt(0.2)


def test_rebuild_runs_as_a_tracked_job(operator_client, django_capture_on_commit_callbacks):
    cam = factories.CameraFactory(id="porch")
    hour = baselines.previous_complete_hour()
    events_at(cam, hour, 2)
    with django_capture_on_commit_callbacks(execute=True):
        resp = operator_client.post(reverse("alerting:baselines_rebuild"), {"camera": "porch"})
    assert resp.status_code == 302
    job = Job.objects.get(job_type="baseline_rebuild")
    assert job.status == "completed" and job.kwargs == {"camera_id": "porch"}
    assert job.result["cameras"] == 1 and job.created_by == "olivia_operator"
    dow, h = baselines.slot_of(hour)
    row = ActivityBaseline.objects.get(camera=cam, day_of_week=dow, hour=h)
    assert (row.avg_count, row.sample_count) == (2.0, 1)


def test_rebuild_of_an_unknown_camera_is_400(operator_client):
    assert operator_client.post(reverse("alerting:baselines_rebuild"), {"camera": "nope"}).status_code == 400
    assert not Job.objects.exists()


def test_viewer_cannot_rebuild(viewer_client):
    assert viewer_client.post(reverse("alerting:baselines_rebuild")).status_code == 403
    assert not Job.objects.exists()


def test_baselines_pages(viewer_client):
    cam = factories.CameraFactory(id="porch", name="Porch")
    factories.ActivityBaselineFactory(camera=cam, day_of_week=2, hour=9, avg_count=5.0, sample_count=10)
    factories.ActivityBaselineFactory(camera=cam, day_of_week=2, hour=10, avg_count=1.0, sample_count=2)
    factories.ClassBaselineFactory(camera=cam, detection_class="dog", hour=7, frequency=0.5, sample_count=3)
    assert "Porch" in viewer_client.get(reverse("alerting:baselines")).content.decode()
    assert viewer_client.get(reverse("alerting:baselines"), {"camera": "porch"})["Location"].endswith(
        "/baselines/porch/"
    )
    resp = viewer_client.get(reverse("alerting:camera_baselines", args=["porch"]))
    body = resp.content.decode()
    assert resp.status_code == 200
    wed = resp.context["grid"][2]["cells"]
    assert wed[9]["level"] == 9 and wed[9]["ready"] and not wed[10]["ready"]
    assert "heat-9" in body and "dog" in body
    assert "Rebuild this camera" not in body  # viewers get no button


def test_ensure_schedules_is_idempotent():
    ensure_schedules()
    ensure_schedules()
    sched = Schedule.objects.get(name=BASELINE_SCHEDULE)
    assert sched.func == "alerting.tasks.update_baselines" and sched.schedule_type == Schedule.HOURLY


def test_update_baselines_task_runs():
    from alerting.tasks import update_baselines

    factories.CameraFactory()
    assert update_baselines()["activity_slots"] == 1
