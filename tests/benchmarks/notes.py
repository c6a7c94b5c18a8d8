"""The "targets not met, limits and notes" section: every miss explained with its numbers."""

from __future__ import annotations

import math

from tests.benchmarks import dataset as ds_mod


def _extrapolate(seconds: float, n: int, target: int) -> float:
    """HNSW and sort-based builds grow roughly as n·log n."""
    if n <= 1:
        return seconds * target
    return seconds * (target / n) * (math.log(target) / math.log(n))


def embeddings_note(ds) -> str | None:
    n = ds.counts.get("reid_embeddings") or 0
    spec = int(ds_mod.BASE_COUNTS["reid_embeddings"] * ds.scale)
    gen = ds.steps.get("reid_embeddings")
    hnsw = ds.steps.get("reid vectors + HNSW index")
    if not n or n >= spec or gen is None:
        return None
    text = (
        f"the dataset holds {n:,} re-id embeddings where SCALE={ds.scale:g} would mean {spec:,} "
        f"(BENCH_EMBEDDINGS overrides the cap of {ds_mod.EMBEDDINGS_CAP:,}). Generating them took {gen:,.0f} s"
    )
    if hnsw is not None:
        est = _extrapolate(hnsw, n, spec)
        text += (
            f" and copying them into reid_vectors plus building the HNSW index {hnsw:,.0f} s; at {spec:,} that is "
            f"≈{spec / n * gen / 60:,.0f} min of generation and ≈{est / 60:,.0f} min of index build (n·log n) on this "
            "machine"
        )
    text += (
        ", and every restore of the backed-up tables re-inserts each embedding into the HNSW graph row by row "
        "(see the restore line). That does not fit `make bench`'s one-hour budget on 2 cores, so the count is capped; "
        "find-similar's cost follows the HNSW graph's depth (log n), not the row count."
    )
    return text


def load_note(info) -> str | None:
    load = info.get("load_start") or (0, 0, 0)
    end = (info.get("load_end") or (0,))[0]
    cores = info.get("cores") or 1
    if max(load[0], end) <= cores * 0.5:
        return None
    return (
        f"other work shared the machine during this run (load average {load[0]:.1f} on {cores} cores at the start, "
        f"{end:.1f} at the end): CPU-bound work (template rendering, index builds, compression) got a share of the "
        "cores, so timings, and their p95 especially, are higher than on an idle machine of the same kind."
    )


def explain(ds, info, results) -> list[str]:
    lines = []
    load = load_note(info)
    if load:
        lines.append(f"- **Machine load**: {load}")
    for r in results:
        if r.met is not False:
            continue
        why = r.extra.get("explanation")
        if not why and r.seq_scans:
            why = f"the plan scans {', '.join(r.seq_scans)} sequentially: {r.plan}."
        hierarchy = [q for q in r.extra.get("all_sql", []) if "SELECT DISTINCT DATE_TRUNC" in q]
        if not why and hierarchy:
            why = (
                "the changelist's `date_hierarchy` runs `SELECT DISTINCT date_trunc(...)` over every row of the table "
                f"to draw its links ({hierarchy[0].split(':', 1)[0]} of the page's {r.median:.0f} ms here, and it grows "
                "with the table); the `recent_filter()` of dashboard/admin_base.py costs nothing to draw."
            )
        if not why and r.section in ("Pages", "Admin changelists"):
            main = r.extra.get("main_ms")
            why = (
                f"{r.extra.get('queries', '?')} queries; the slowest (main) query took "
                f"{main:.1f} ms of the page's {r.median:.1f} ms (plan: {r.plan or '—'})"
                if main is not None
                else f"{r.extra.get('queries', '?')} queries"
            )
            why += "; the rest is Python: middleware, view, template rendering."
        lines.append(f"- **{r.name}**: {why or r.note}")
    emb = embeddings_note(ds)
    if emb:
        lines.append(f"- **Re-id embeddings**: {emb}")
    return lines
