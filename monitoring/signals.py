"""Login, logout and failed login → audit rows (connected in MonitoringConfig.ready)."""

from __future__ import annotations

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from monitoring.choices import AuditStatus
from monitoring.services import audit

logger = logging.getLogger(__name__)


def _safe_record(*args, **kwargs) -> None:
    # Signing in must not fail because the audit row could not be written; say so loudly instead.
    try:
        audit.record(*args, **kwargs)
    except Exception:
        logger.exception("Could not write the audit row for %s", args[0] if args else "?")


@receiver(user_logged_in, dispatch_uid="monitoring.audit.login")
def audit_login(sender, request, user, **kwargs):
    _safe_record("login", "user", user.pk, request=request, actor=user.get_username())


@receiver(user_logged_out, dispatch_uid="monitoring.audit.logout")
def audit_logout(sender, request, user, **kwargs):
    if user is None:
        return  # logging out without a session changes nothing
    _safe_record("logout", "user", user.pk, request=request, actor=user.get_username())


@receiver(user_login_failed, dispatch_uid="monitoring.audit.login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; keep only the name tried.
    username = str(credentials.get("username") or "")[:100]
    _safe_record(
        "login_failed",
        "user",
        None,
        request=request,
        actor=username or "anonymous",
        details={"username": username},
        status=AuditStatus.FAILURE,
    )
