"""Job types used only by the tests, and fixtures that point file folders at tmp paths."""

from __future__ import annotations

import pytest

from jobs.services.tracked import JobCancelled, register

CALLS: list[dict] = []


@register("test_ok", timeout=60)
def _ok(ctx, **kwargs):
    ctx.progress(50, step="Halfway")
    ctx.log("working", level="info", n=1)
    CALLS.append(kwargs)
    return {"echo": kwargs}


@register("test_fail", timeout=60, retry_base=10, retry_max=100)
def _fail(ctx, **kwargs):
    ctx.log("about to fail", level="warning")
    raise RuntimeError("disk on fire")


@register("test_cancel", timeout=60)
def _cancel(ctx, **kwargs):
    raise JobCancelled("stopped on request")


@register("test_slow", timeout=120)
def _slow(ctx, **kwargs):
    return {}


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    yield


@pytest.fixture(autouse=True)
def file_dirs(settings, tmp_path):
    """Every test writes exports, backups and uploads under its own tmp folder."""
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return tmp_path
