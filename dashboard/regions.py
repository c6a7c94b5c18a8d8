"""Helpers every app's views share: which page region an HTMX request asks for, and
the links that keep a list's filters while changing one of them."""

from __future__ import annotations

from urllib.parse import urlencode


def htmx_target(request) -> str | None:
    """The id of the region an HTMX request asks for ("" for none named), None for a full page.

    A boosted request (hx-boost navigation) wants the whole page, like a plain one.
    """
    if request.htmx and not request.htmx.boosted:
        return request.htmx.target or ""
    return None


def is_partial(request) -> bool:
    """Whether an HTMX request asks for a region rather than the whole page."""
    return htmx_target(request) is not None


def querystring(params, **changes) -> str:
    """The current filters with `changes` applied, as "?a=b" (lists kept, empty values dropped)."""
    items = []
    for key in params:
        if key in changes:
            continue
        for value in params.getlist(key):
            if value != "":
                items.append((key, value))
    for key, value in changes.items():
        if value not in (None, ""):
            items.append((key, value))
    return "?" + urlencode(items) if items else "?"
