"""Roles: Operators change things, Viewers only read; superusers count as operators.

Every mutating view is wrapped in `operator_required`; reads only need a login
(the LoginRequiredMiddleware guards every page but the login page and /healthz).
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

OPERATORS = "Operators"
VIEWERS = "Viewers"


def is_operator(user) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_watchpost_is_operator", None)
    if cached is None:
        cached = user.groups.filter(name=OPERATORS).exists()
        user._watchpost_is_operator = cached
    return cached


def operator_required(view):
    """403 for anyone who is not an operator (the login middleware handles anonymous users)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_operator(request.user):
            raise PermissionDenied("Only operators may change this. Ask an administrator for the Operators role.")
        return view(request, *args, **kwargs)

    return wrapper


class OperatorRequiredMixin:
    def dispatch(self, request, *args, **kwargs):
        if request.method not in ("GET", "HEAD", "OPTIONS") and not is_operator(request.user):
            raise PermissionDenied("Only operators may change this. Ask an administrator for the Operators role.")
        return super().dispatch(request, *args, **kwargs)
