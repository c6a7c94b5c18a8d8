"""django-q2 entry points of the monitoring app (plain functions, safe to run twice)."""

from __future__ import annotations


def sample_gpus() -> dict:
    """GPU sampling on this host until the next scheduled run takes over (the per-minute schedule).

    Each run waits at most one sampling interval for the running one to hand the
    host's advisory lock over, then samples; see monitoring.services.sampler.
    """
    from monitoring.services.sampler import handover_wait, run_sampler

    return run_sampler(wait=handover_wait())
