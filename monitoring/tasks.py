"""django-q2 entry points of the monitoring app (plain functions, safe to run twice)."""

from __future__ import annotations


def sample_gpus() -> dict:
    """One minute of GPU sampling on this host (the per-minute schedule runs it).

    A second concurrent run finds the host's advisory lock taken and returns at once.
    """
    from monitoring.services.sampler import run_sampler

    return run_sampler()
