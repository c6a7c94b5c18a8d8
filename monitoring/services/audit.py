"""The audit recorder: one `audit_logs` row per mutating action.

Minimal version from the foundation; the monitoring issue extends it (trusted
proxies, admin and login hooks). Callers use only `record()`.
"""

from __future__ import annotations

import logging

from django.conf import settings

from monitoring.choices import AuditStatus

logger = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    """REMOTE_ADDR, or the first X-Forwarded-For hop when the peer is a trusted proxy."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded and remote in getattr(settings, "TRUSTED_PROXIES", []):
        return forwarded.split(",")[0].strip()[:45] or remote
    return remote


def actor_of(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()[:100]
    return "anonymous"


def record(
    action: str,
    resource_type: str,
    resource_id=None,
    *,
    request=None,
    actor: str | None = None,
    details: dict | None = None,
    status: str = AuditStatus.SUCCESS,
):
    from monitoring.models import AuditLog

    return AuditLog.objects.create(
        action=action[:50],
        resource_type=resource_type[:50],
        resource_id=None if resource_id is None else str(resource_id)[:255],
        actor=(actor or (actor_of(request) if request is not None else "system"))[:100],
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT") if request is not None else None,
        details=details,
        status=status,
    )
