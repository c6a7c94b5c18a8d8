"""Small builders shared by the alerting tests."""

from __future__ import annotations

from tests import factories


def make_event(camera=None, risk=70, detections=(("person", 0.9, (800, 400, 200, 400)),), **kw):
    """An event with linked detections given as (object_type, confidence, (x, y, w, h)) in a 1920×1080 frame."""
    camera = camera or factories.CameraFactory()
    event = factories.EventFactory(camera=camera, risk_score=risk, **kw)
    for otype, conf, (x, y, w, h) in detections:
        det = factories.DetectionFactory(
            camera=camera, object_type=otype, confidence=conf, bbox_x=x, bbox_y=y, bbox_width=w, bbox_height=h
        )
        factories.EventDetectionFactory(event=event, detection=det)
    return event
