"""Login throttling hooks for django-axes: the client address and the lockout page."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.shortcuts import render


def client_ip(request) -> str | None:
    """The address a lockout is keyed on: the same one the audit trail records.

    X-Forwarded-For is believed only from TRUSTED_PROXIES, read from the right, so a
    client cannot rotate addresses it wrote into the header to dodge the lockout.
    """
    from monitoring.services.audit import client_ip as audited_client_ip

    return audited_client_ip(request)


def lockout_minutes() -> int:
    cool_off = settings.AXES_COOLOFF_TIME
    return max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else 0


def lockout_response(request, original_response=None, credentials=None):
    """django-axes AXES_LOCKOUT_CALLABLE: a friendly 429 page instead of a bare text body."""
    context = {"title": "Too many failed logins", "minutes": lockout_minutes()}
    response = render(request, "registration/lockout.html", context, status=429)
    if context["minutes"]:
        response["Retry-After"] = str(context["minutes"] * 60)
    return response


class RejectNulBytesMiddleware:
    """400 for a NUL character in the path, query string or form fields.

    PostgreSQL text cannot hold NUL, so one "%00" reaching any ORM filter is a
    DataError (a 500) in whichever view it lands; refusing it here covers every
    view at once. It runs as a view hook, after the login middleware, so an
    anonymous request never makes us parse its body.
    """

    message = "Request parameters may not contain NUL characters."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    @staticmethod
    def _has_nul(querydict) -> bool:
        return any("\x00" in key or any("\x00" in v for v in values) for key, values in querydict.lists())

    def process_view(self, request, view_func, view_args, view_kwargs):
        from django.http import HttpResponseBadRequest

        if "\x00" in request.path_info or self._has_nul(request.GET):
            return HttpResponseBadRequest(self.message, content_type="text/plain; charset=utf-8")
        if request.method == "POST" and self._has_nul(request.POST):
            return HttpResponseBadRequest(self.message, content_type="text/plain; charset=utf-8")
        return None


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Django's, except that a public view (login_not_required) never loads the session.

    Django asks `request.user.is_authenticated` first, which reads the session from the
    database; during a database outage /healthz then failed with a 500 for any client that
    carried a session cookie (a browser, a load balancer replaying cookies) instead of
    answering 503 with the reason.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
