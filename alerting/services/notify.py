"""Notification channels: email and signed webhooks, one tracked job per alert × channel.

A rule's channels live in ``AlertRule.channels``::

    [{"type": "email", "to": ["a@example.com"]},
     {"type": "webhook", "url": "https://hooks.example.com/x", "secret": "s3cret"}]

The alert keeps a copy without secrets (``Alert.channels``). Each delivery is a
tracked job ``alert_delivery`` (jobs/services/tracked.py) with up to
ALERT_DELIVERY_MAX_ATTEMPTS attempts and exponential backoff with jitter; every
attempt is a ``NotificationDelivery`` row. The alert becomes ``delivered`` once
every one of its channels has a succeeded attempt.

Webhooks: JSON POST; ``X-Watchpost-Signature: sha256=<hex HMAC-SHA256 of the body
with the secret>`` when the channel has a secret, and ``X-Watchpost-Timestamp``
(Unix seconds, also inside the signed body as ``sent_at`` so it cannot be
altered); WEBHOOK_TIMEOUT_SECONDS per attempt; redirects are not followed and any
non-2xx answer is a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from alerting.choices import AlertStatus, ChannelType, DeliveryStatus

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Watchpost-Signature"
TIMESTAMP_HEADER = "X-Watchpost-Timestamp"
DELIVERY_JOB = "alert_delivery"


class DeliveryFailed(Exception):
    """One attempt failed; the message is the reason shown to operators."""

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


# --- Channel configuration ------------------------------------------------------------------


def validate_webhook_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
        raise ValidationError(f"Webhook URL {url!r} must start with http:// or https:// and name a host.")
    if len(url) > 1000:
        raise ValidationError("Webhook URLs are limited to 1000 characters.")
    return url


def validate_channels(raw) -> list[dict]:
    """Normalise and validate a channel list; raises ValidationError naming the bad entry."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValidationError("Channels must be a list.")
    out: list[dict] = []
    for i, ch in enumerate(raw, start=1):
        if not isinstance(ch, dict) or ch.get("type") not in ChannelType.values:
            raise ValidationError(f"Channel {i}: type must be email or webhook.")
        if ch["type"] == ChannelType.EMAIL:
            to = ch.get("to")
            if isinstance(to, str):
                to = [to]
            if not isinstance(to, list) or not to:
                raise ValidationError(f"Channel {i}: an email channel needs at least one recipient.")
            clean = []
            for addr in to:
                addr = str(addr).strip()
                try:
                    validate_email(addr)
                except ValidationError:
                    raise ValidationError(f"{addr!r} is not a valid email address.")
                clean.append(addr)
            out.append({"type": "email", "to": clean})
        else:
            url = validate_webhook_url(ch.get("url", ""))
            secret = str(ch.get("secret") or "")
            if len(secret) > 500:
                raise ValidationError(f"Channel {i}: the webhook secret is limited to 500 characters.")
            entry = {"type": "webhook", "url": url}
            if secret:
                entry["secret"] = secret
            out.append(entry)
    return out


def channel_target(channel: dict) -> str:
    if channel.get("type") == ChannelType.EMAIL:
        return ", ".join(channel.get("to") or [])
    return channel.get("url", "")


def channel_key(channel: dict) -> tuple[str, str]:
    return channel.get("type", ""), channel_target(channel)


def resolve_channel(rule, channel_type: str, target: str) -> dict | None:
    """The rule's current config (with secret) for a channel an alert names."""
    if rule is None:
        return None
    for ch in rule.channels or []:
        if isinstance(ch, dict) and channel_key(ch) == (channel_type, target):
            return ch
    return None


# --- Payloads and senders ---------------------------------------------------------------------------


def alert_payload(alert) -> dict:
    event = alert.event
    return {
        "type": "alert",
        "alert_id": str(alert.pk),
        "rule_id": str(alert.rule_id) if alert.rule_id else None,
        "rule_name": (alert.metadata or {}).get("rule_name") or (alert.rule.name if alert.rule else None),
        "severity": alert.severity,
        "status": alert.status,
        "created_at": alert.created_at.isoformat(),
        "dedup_key": alert.dedup_key,
        "matched_conditions": alert.matched_conditions,
        "event": {
            "id": event.pk,
            "camera_id": event.camera_id,
            "started_at": event.started_at.isoformat(),
            "risk_score": event.risk_score,
            "risk_level": event.risk_level,
            "summary": event.summary,
        },
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx then surfaces as HTTPError: not delivered


_opener = urllib.request.build_opener(_NoRedirect)


def send_webhook(url: str, payload: dict, secret: str = "", timeout: float | None = None) -> int:
    """POST `payload`; returns the HTTP status or raises DeliveryFailed with the reason."""
    timeout = float(timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS)
    sent_at = int(time.time())
    body = json.dumps({**payload, "sent_at": sent_at}, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Watchpost-Webhook/1",
        TIMESTAMP_HEADER: str(sent_at),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(req, timeout=timeout) as resp:
            resp.read(65536)
            return resp.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}".strip(), http_status=exc.code)
    except TimeoutError:
        raise DeliveryFailed(f"No answer within {timeout:g} s (timed out).")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DeliveryFailed(f"No answer within {timeout:g} s (timed out).")
        raise DeliveryFailed(f"Could not connect: {reason}")
    except (OSError, ValueError) as exc:
        raise DeliveryFailed(f"Could not send: {exc}")


def send_email(to: list[str], subject: str, body: str) -> None:
    try:
        sent = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, list(to)).send(fail_silently=False)
    except Exception as exc:  # smtplib, socket and header errors all mean "not delivered"
        raise DeliveryFailed(f"Email not sent: {type(exc).__name__}: {exc}")
    if not sent:
        raise DeliveryFailed("Email not sent: the mail backend accepted no message.")


def alert_email(alert) -> tuple[str, str]:
    p = alert_payload(alert)
    ev = p["event"]
    subject = f"[Watchpost] {alert.get_severity_display()} alert: {p['rule_name'] or 'rule'} on {ev['camera_id']}"
    lines = [
        f"Rule: {p['rule_name']}",
        f"Severity: {alert.severity}",
        f"Camera: {ev['camera_id']}",
        f"Event: {ev['id']} at {ev['started_at']} (risk {ev['risk_score']}, {ev['risk_level']})",
        f"Matched: {', '.join(p['matched_conditions']) or 'every event'}",
        "",
        ev["summary"] or "",
        "",
        f"Alert {p['alert_id']} (dedup key {p['dedup_key']})",
    ]
    return subject, "\n".join(lines)


def send(channel: dict, alert) -> int | None:
    """Deliver `alert` through `channel` once; returns the HTTP status (webhooks)."""
    if channel["type"] == ChannelType.EMAIL:
        subject, body = alert_email(alert)
        send_email(channel["to"], subject, body)
        return None
    return send_webhook(channel["url"], alert_payload(alert), channel.get("secret", ""))


def send_test(channel: dict, actor: str = "") -> tuple[bool, str]:
    """The "send test notification" button: one synchronous attempt, no alert, no retry."""
    now = timezone.now()
    payload = {
        "type": "test",
        "message": "Test notification from Watchpost.",
        "requested_by": actor,
        "created_at": now.isoformat(),
    }
    try:
        if channel["type"] == ChannelType.EMAIL:
            send_email(
                channel["to"],
                "[Watchpost] Test notification",
                f"This is a test notification sent by {actor or 'Watchpost'} at {now:%Y-%m-%d %H:%M:%S %Z}.",
            )
            return True, f"Test email sent to {channel_target(channel)}."
        code = send_webhook(channel["url"], payload, channel.get("secret", ""))
        return True, f"Webhook answered HTTP {code}."
    except DeliveryFailed as exc:
        return False, str(exc)


# --- Delivery jobs -----------------------------------------------------------------------------------


def schedule_deliveries(alert) -> list:
    """Enqueue one tracked delivery job per channel of a new alert (called after commit)."""
    from jobs.services.tracked import enqueue

    jobs = []
    for ch in alert.channels or []:
        ctype, target = channel_key(ch)
        if not ctype or not target:
            continue
        jobs.append(
            enqueue(
                DELIVERY_JOB,
                kwargs={"alert_id": str(alert.pk), "channel_type": ctype, "target": target},
                priority=1,
                max_attempts=settings.ALERT_DELIVERY_MAX_ATTEMPTS,
                created_by="alerting",
            )
        )
    return jobs


def deliver(alert_id: str, channel_type: str, target: str, job_id=None):
    """One delivery attempt, recorded; raises DeliveryFailed so the tracked job retries."""
    from alerting.models import Alert, NotificationDelivery

    alert = Alert.objects.select_related("event", "rule").filter(pk=alert_id).first()
    if alert is None:
        return None  # the alert was deleted: nothing to deliver, nothing to retry
    done = NotificationDelivery.objects.filter(alert=alert).for_channel(channel_type, target)
    if done.succeeded().exists():
        return None  # a duplicate job (or a manual retry) after success: safe no-op
    attempt = (done.order_by("-attempt").values_list("attempt", flat=True).first() or 0) + 1
    row = NotificationDelivery.objects.create(
        alert=alert, channel_type=channel_type, target=target, attempt=attempt, job_id=job_id
    )
    channel = resolve_channel(alert.rule, channel_type, target)
    try:
        if channel is None:
            raise DeliveryFailed("The rule no longer has this channel (it was removed or the rule was deleted).")
        code = send(channel, alert)
    except DeliveryFailed as exc:
        row.status, row.http_status, row.error = DeliveryStatus.FAILED, exc.http_status, str(exc)[:2000]
        row.finished_at = timezone.now()
        row.save(update_fields=["status", "http_status", "error", "finished_at"])
        raise
    row.status, row.http_status, row.finished_at = DeliveryStatus.SUCCEEDED, code, timezone.now()
    row.save(update_fields=["status", "http_status", "finished_at"])
    mark_delivered_if_complete(alert.pk)
    return row


def mark_delivered_if_complete(alert_id) -> bool:
    """pending → delivered once every channel has a succeeded attempt (bumps version_id)."""
    from alerting.models import Alert, NotificationDelivery

    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None or alert.delivered_at is not None or not alert.channels:
            return False
        wanted = {channel_key(c) for c in alert.channels}
        ok = set(
            NotificationDelivery.objects.filter(alert=alert)
            .succeeded()
            .values_list("channel_type", "target")
            .distinct()
        )
        if not wanted <= ok:
            return False
        now = timezone.now()
        fields = {"delivered_at": now, "updated_at": now, "version_id": alert.version_id + 1}
        if alert.status == AlertStatus.PENDING:
            fields["status"] = AlertStatus.DELIVERED
        Alert.objects.filter(pk=alert.pk).update(**fields)
    return True
