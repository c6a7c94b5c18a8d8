import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from alerting.models import Alert, NotificationDelivery
from alerting.services import notify
from alerting.services.engine import evaluate_event
from jobs.models import Job
from jobs.services.tracked import dispatch_due_jobs
from monitoring.models import AuditLog
from tests import factories
from tests.alerting.helpers import make_event

HTMX = {"HTTP_HX_REQUEST": "true"}


def webhook_rule(url, secret="s3cret", **kw):
    channel = {"type": "webhook", "url": url}
    if secret:
        channel["secret"] = secret
    return factories.AlertRuleFactory(
        risk_threshold=None, object_types=None, min_confidence=None, cooldown_seconds=0, channels=[channel], **kw
    )


def run_due_retries():
    """Run every queued retry now (the per-minute dispatcher, fast-forwarded)."""
    return dispatch_due_jobs(now=timezone.now() + dt.timedelta(days=1))


# --- Senders ------------------------------------------------------------------------------------


def test_webhook_signature_verifies_at_the_receiver(webhook_receiver):
    code = notify.send_webhook(webhook_receiver.url, {"type": "alert", "alert_id": "a1"}, "s3cret")
    assert code == 200
    req = webhook_receiver.requests[0]
    assert req["signature_ok"] and req["signature"].startswith("sha256=")
    assert req["body"]["alert_id"] == "a1"
    assert req["headers"]["Content-Type"] == "application/json"
    assert int(req["headers"]["X-Watchpost-Timestamp"]) == req["body"]["sent_at"]


def test_wrong_secret_does_not_verify(webhook_receiver):
    notify.send_webhook(webhook_receiver.url, {"x": 1}, "other-secret")
    assert webhook_receiver.requests[0]["signature_ok"] is False


def test_webhook_without_secret_is_unsigned(webhook_receiver):
    notify.send_webhook(webhook_receiver.url, {"x": 1}, "")
    assert "X-Watchpost-Signature" not in webhook_receiver.requests[0]["headers"]


def test_webhook_500_is_a_failure_with_the_status(webhook_receiver):
    webhook_receiver.behaviour = ["500"]
    with pytest.raises(notify.DeliveryFailed) as exc:
        notify.send_webhook(webhook_receiver.url, {"x": 1}, "s3cret")
    assert exc.value.http_status == 500 and "HTTP 500" in str(exc.value)


def test_webhook_timeout_is_a_failure(webhook_receiver, fast_webhooks):
    webhook_receiver.behaviour = ["sleep"]
    webhook_receiver.sleep_seconds = 1.5
    with pytest.raises(notify.DeliveryFailed, match="timed out"):
        notify.send_webhook(webhook_receiver.url, {"x": 1}, "s3cret")


def test_webhook_connection_refused():
    with pytest.raises(notify.DeliveryFailed, match="Could not connect"):
        notify.send_webhook("http://127.0.0.1:9/hook", {"x": 1}, "", timeout=2)


@pytest.mark.parametrize(
    "channels, message",
    [
        ([{"type": "webhook", "url": "ftp://example.com/x"}], "http:// or https://"),
        ([{"type": "webhook", "url": "https://"}], "http:// or https://"),
        ([{"type": "email", "to": ["not-an-email"]}], "not a valid email"),
        ([{"type": "email", "to": []}], "at least one recipient"),
        ([{"type": "sms", "to": "123"}], "email or webhook"),
        ("x", "must be a list"),
    ],
)
def test_channel_validation(channels, message):
    with pytest.raises(ValidationError, match=message):
        notify.validate_channels(channels)


def test_channel_validation_normalises():
    assert notify.validate_channels(
        [{"type": "email", "to": " a@b.example "}, {"type": "webhook", "url": "https://h.example/x", "secret": ""}]
    ) == [{"type": "email", "to": ["a@b.example"]}, {"type": "webhook", "url": "https://h.example/x"}]


# --- Delivery jobs (real tracked jobs, run inline by django-q2 in tests) --------------------------------


@pytest.mark.django_db(transaction=True)
def test_webhook_delivery_marks_alert_delivered(webhook_receiver):
    event = make_event(risk=90)
    rule = webhook_rule(webhook_receiver.url)
    result = evaluate_event(event.pk)
    alert = Alert.objects.get(pk=result.created[0].pk)
    assert alert.status == "delivered" and alert.delivered_at is not None and alert.version_id == 2
    assert alert.channels == [{"type": "webhook", "url": webhook_receiver.url}]  # no secret on the alert
    req = webhook_receiver.requests[0]
    assert req["signature_ok"]
    assert req["body"]["alert_id"] == str(alert.pk) and req["body"]["rule_name"] == rule.name
    assert req["body"]["event"]["id"] == event.pk
    delivery = NotificationDelivery.objects.get()
    assert (delivery.attempt, delivery.status, delivery.http_status) == (1, "succeeded", 200)
    assert Job.objects.get(job_type="alert_delivery").status == "completed"


@pytest.mark.django_db(transaction=True)
def test_webhook_500_is_retried_then_fails_with_the_reason(webhook_receiver):
    webhook_receiver.behaviour = ["500"] * 10
    event = make_event(risk=90)
    webhook_rule(webhook_receiver.url)
    alert = evaluate_event(event.pk).created[0]
    job = Job.objects.get(job_type="alert_delivery")
    assert job.status == "queued" and job.attempt_number == 2 and job.next_retry_at > timezone.now()
    for _ in range(4):
        run_due_retries()
    job.refresh_from_db()
    assert job.status == "failed" and job.attempt_number == 5
    assert "HTTP 500" in job.error_message
    rows = list(NotificationDelivery.objects.filter(alert_id=alert.pk).order_by("attempt"))
    assert [(r.attempt, r.status, r.http_status) for r in rows] == [(n, "failed", 500) for n in range(1, 6)]
    assert rows[-1].error.startswith("HTTP 500")
    alert = Alert.objects.get(pk=alert.pk)
    assert alert.status == "pending" and alert.delivered_at is None  # still in the inbox
    assert len(webhook_receiver.requests) == 5


@pytest.mark.django_db(transaction=True)
def test_webhook_timeout_then_success(webhook_receiver, fast_webhooks):
    webhook_receiver.behaviour = ["sleep"]
    webhook_receiver.sleep_seconds = 1.2
    event = make_event(risk=90)
    webhook_rule(webhook_receiver.url)
    alert = evaluate_event(event.pk).created[0]
    first = NotificationDelivery.objects.get(alert_id=alert.pk)
    assert first.status == "failed" and "timed out" in first.error and first.http_status is None
    run_due_retries()
    assert Alert.objects.get(pk=alert.pk).status == "delivered"
    assert list(
        NotificationDelivery.objects.filter(alert_id=alert.pk).order_by("attempt").values_list("status", flat=True)
    ) == [
        "failed",
        "succeeded",
    ]


@pytest.mark.django_db(transaction=True)
def test_alert_is_delivered_only_when_every_channel_succeeded(webhook_receiver, mailoutbox):
    webhook_receiver.behaviour = ["500"]
    event = make_event(risk=90)
    factories.AlertRuleFactory(
        risk_threshold=None, object_types=None, min_confidence=None, name="Porch watch",
        channels=[{"type": "email", "to": ["ops@example.com"]}, {"type": "webhook", "url": webhook_receiver.url, "secret": "s3cret"}],
    )  # fmt: skip
    alert = evaluate_event(event.pk).created[0]
    assert len(mailoutbox) == 1 and "Porch watch" in mailoutbox[0].subject and mailoutbox[0].to == ["ops@example.com"]
    assert Alert.objects.get(pk=alert.pk).status == "pending"  # the webhook failed once
    run_due_retries()
    assert Alert.objects.get(pk=alert.pk).status == "delivered"
    assert len(mailoutbox) == 1  # the email was not sent twice


@pytest.mark.django_db
def test_deliver_when_the_channel_was_removed_from_the_rule():
    rule = factories.AlertRuleFactory(channels=None)
    alert = factories.AlertFactory(rule=rule, channels=[{"type": "webhook", "url": "https://h.example/x"}])
    with pytest.raises(notify.DeliveryFailed, match="no longer has this channel"):
        notify.deliver(alert.pk, "webhook", "https://h.example/x")
    row = NotificationDelivery.objects.get()
    assert row.status == "failed" and "no longer has this channel" in row.error


@pytest.mark.django_db
def test_deliver_after_success_is_a_no_op(mailoutbox):
    rule = factories.AlertRuleFactory(channels=[{"type": "email", "to": ["a@example.com"]}])
    alert = factories.AlertFactory(rule=rule, channels=[{"type": "email", "to": ["a@example.com"]}])
    assert notify.deliver(alert.pk, "email", "a@example.com").status == "succeeded"
    assert notify.deliver(alert.pk, "email", "a@example.com") is None
    assert len(mailoutbox) == 1 and NotificationDelivery.objects.count() == 1
    alert.refresh_from_db()
    assert alert.status == "delivered"


@pytest.mark.django_db
def test_delivery_keeps_an_acknowledged_alert_acknowledged(mailoutbox):
    rule = factories.AlertRuleFactory(channels=[{"type": "email", "to": ["a@example.com"]}])
    alert = factories.AlertFactory(
        rule=rule, status="acknowledged", channels=[{"type": "email", "to": ["a@example.com"]}]
    )
    notify.deliver(alert.pk, "email", "a@example.com")
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.delivered_at is not None and alert.version_id == 2


# --- Test notifications -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_test_notification_button(operator_client, webhook_receiver, mailoutbox):
    rule = factories.AlertRuleFactory(
        channels=[
            {"type": "email", "to": ["ops@example.com"]},
            {"type": "webhook", "url": webhook_receiver.url, "secret": "s3cret"},
        ]
    )
    resp = operator_client.post(reverse("alerting:channel_test", args=[rule.pk, 0]), **HTMX)
    assert resp.status_code == 200 and "Test email sent" in resp.content.decode()
    assert mailoutbox[0].subject == "[Watchpost] Test notification"
    resp = operator_client.post(reverse("alerting:channel_test", args=[rule.pk, 1]), **HTMX)
    assert "HTTP 200" in resp.content.decode()
    req = webhook_receiver.requests[0]
    assert req["signature_ok"] and req["body"]["type"] == "test" and req["body"]["requested_by"] == "olivia_operator"
    audit = AuditLog.objects.filter(action="channel.test").order_by("timestamp")
    assert [a.status for a in audit] == ["success", "success"]
    assert "s3cret" not in json.dumps([a.details for a in audit])
    assert operator_client.post(reverse("alerting:channel_test", args=[rule.pk, 5])).status_code == 404


@pytest.mark.django_db
def test_send_test_notification_failure_is_reported(operator_client, webhook_receiver):
    webhook_receiver.behaviour = ["500"]
    rule = factories.AlertRuleFactory(channels=[{"type": "webhook", "url": webhook_receiver.url}])
    resp = operator_client.post(reverse("alerting:channel_test", args=[rule.pk, 0]), **HTMX)
    assert resp.status_code == 200 and "HTTP 500" in resp.content.decode()
    assert AuditLog.objects.get(action="channel.test").status == "failure"


@pytest.mark.django_db
def test_viewer_cannot_send_test_notifications(viewer_client, mailoutbox):
    rule = factories.AlertRuleFactory(channels=[{"type": "email", "to": ["ops@example.com"]}])
    assert viewer_client.post(reverse("alerting:channel_test", args=[rule.pk, 0])).status_code == 403
    assert mailoutbox == []
