"""django-q2 entry points of the dashboard app (tracked job types it registers).

Each handler takes JSON-able arguments, calls one service and is safe to run twice.
"""

from __future__ import annotations

from jobs.services.tracked import register


@register("reid_reindex", timeout=3600, label="Rebuild the re-id vector index")
def reid_reindex(ctx) -> dict:
    """Rebuild `reid_vectors` from the JSONB embeddings (idempotent: truncate + copy)."""
    from dashboard.services.reid import rebuild_vectors

    def progress(percent, step):
        ctx.check_cancelled()
        ctx.progress(percent, step=step)

    count = rebuild_vectors(progress=progress)
    ctx.log(f"Indexed {count} re-id embeddings.")
    return {"indexed": count}
