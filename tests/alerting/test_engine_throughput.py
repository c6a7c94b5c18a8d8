"""Engine throughput: 100 enabled rules and 50 zones (target ≥ 2,000 events/s on one worker).

Marked slow; run with `pytest tests/alerting/test_engine_throughput.py -s` to see the rate.
The assertion is a floor far under the target (it catches per-rule queries, not slow machines).
"""

import random
import time

import pytest
from django.db import connection

from alerting.models import Alert, AlertRule, CameraZone
from alerting.services import engine
from dashboard.models import Camera, Detection, Event, EventDetection

N_EVENTS = 1000


def build_world(seed=7):
    rng = random.Random(seed)
    cams = Camera.objects.bulk_create(Camera(id=f"cam{i}", name=f"Cam {i}") for i in range(10))
    zones = []
    for cam in cams:
        for j in range(5):
            x, y = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
            w, h = rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.4)
            zones.append(
                CameraZone(
                    id=f"{cam.id}_z{j}",
                    camera=cam,
                    name=f"Z{j}",
                    shape="rectangle",
                    coordinates=[[x, y], [x + w, y], [x + w, y + h], [x, y + h]],
                )  # fmt: skip
            )
    CameraZone.objects.bulk_create(zones)
    types = ["person", "car", "dog", "cat", "truck", "bicycle"]
    rules = []
    for i in range(100):
        cam = rng.choice(cams).id
        rules.append(
            AlertRule(
                name=f"rule {i:03d}",
                risk_threshold=rng.choice([None, 60, 70, 80, 90, 95]),
                camera_ids=rng.choice([None, [cam]]),
                object_types=rng.choice([None, [rng.choice(types)], [rng.choice(types), rng.choice(types)]]),
                zone_ids=rng.choice([None, None, [f"{cam}_z{rng.randrange(5)}"]]),
                min_confidence=rng.choice([None, 0.5, 0.8]),
                schedule=rng.choice(
                    [None, {"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"}]
                ),
                cooldown_seconds=300,
            )
        )
    AlertRule.objects.bulk_create(rules)
    events = Event.objects.bulk_create(
        Event(camera=rng.choice(cams), risk_score=rng.randint(0, 100), object_types="") for _ in range(N_EVENTS)
    )
    dets, links = [], []
    for ev in events:
        for _ in range(rng.randint(1, 3)):
            dets.append(
                Detection(
                    camera_id=ev.camera_id,
                    object_type=rng.choice(types),
                    confidence=rng.uniform(0.3, 0.99),
                    bbox_x=rng.randint(0, 1700),
                    bbox_y=rng.randint(0, 900),
                    bbox_width=rng.randint(20, 200),
                    bbox_height=rng.randint(20, 200),
                )  # fmt: skip
            )
    Detection.objects.bulk_create(dets)
    # Link detections to events in creation order.
    k = 0
    rng2 = random.Random(seed)
    for ev in events:
        n = rng2.randint(1, 3)
        for d in dets[k : k + n]:
            links.append(EventDetection(event=ev, detection=d))
        k += n
    EventDetection.objects.bulk_create(links[: len(dets)])
    return [e.pk for e in events]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # real commits, as on a worker
def test_engine_throughput_with_100_rules_and_50_zones():
    ids = build_world()
    with connection.cursor() as cur:
        cur.execute("ANALYZE events; ANALYZE event_detections; ANALYZE detections; ANALYZE alerts")
    engine.evaluate_event(ids[0])  # warm the rule cache and the prepared statements

    def rate(fn):
        t0 = time.perf_counter()
        fn()
        return len(ids) / (time.perf_counter() - t0)

    first = rate(lambda: [engine.evaluate_event(pk) for pk in ids])
    alerts = Alert.objects.count()
    again = rate(lambda: [engine.evaluate_event(pk) for pk in ids])
    Alert.objects.all().delete()
    engine.clear_cache()
    batched = rate(lambda: [engine.evaluate_events(ids[i : i + 200]) for i in range(0, len(ids), 200)])
    print(
        f"\nengine, {len(ids)} events: {first:.0f}/s one by one creating {alerts} alerts, "
        f"{again:.0f}/s re-evaluating, {batched:.0f}/s in batches of 200"
    )
    assert alerts > 0 and Alert.objects.count() == alerts
    # A floor that only a per-rule query (≈100 round trips per event) would break; the shared
    # 2-core test machine swings 4x with load, so the 2,000/s target is measured separately.
    assert min(first, again, batched) > 50
