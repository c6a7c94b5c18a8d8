"""Side by side, in the same run: the way Watchpost does something vs the obvious way (or the physical limit)."""

from __future__ import annotations

import datetime as dt
import statistics
from contextlib import contextmanager

from django.core.paginator import Paginator
from django.db import connection, transaction

from tests.benchmarks import dataset as ds_mod
from tests.benchmarks import pages
from tests.benchmarks.harness import NotMeasured, Result, failed, measured, not_measured, time_runs

SECTION = "Side by side"
# A slow baseline (exact COUNT over 10M rows, a full JSONB scan) stops after 3 runs once it has used this much.
BASELINE_BUDGET_S = 20.0


def ratio_row(name: str, slow_name: str, slow: list[float], fast_name: str, fast: list[float], *,
              target: str = "", limit: float | None = None, note: str = "", **extra) -> Result:  # fmt: skip
    """A ratio line: median(slow) / median(fast), both medians shown in the note."""
    r_fast, r_slow = measured(SECTION, fast_name, fast), measured(SECTION, slow_name, slow)
    ratio = r_slow.median / r_fast.median if r_fast.median else float("inf")
    # p95 of the ratio is not meaningful run by run; show the ratio of the p95s.
    ratio_p95 = r_slow.p95 / r_fast.p95 if r_fast.p95 else float("inf")
    text = (
        f"{slow_name}: {r_slow.median:,.1f} ms (p95 {r_slow.p95:,.1f}, {r_slow.runs} runs); "
        f"{fast_name}: {r_fast.median:,.1f} ms (p95 {r_fast.p95:,.1f}, {r_fast.runs} runs)"
    )
    if note:
        text += f". {note}"
    met = None if limit is None else ratio >= limit
    return Result(
        section=SECTION, name=name, median=ratio, p95=ratio_p95, unit="x", target=target, met=met, note=text,
        runs=min(r_fast.runs, r_slow.runs),
        extra={"slow_ms": r_slow.samples, "fast_ms": r_fast.samples, **extra},
    )  # fmt: skip


# --- admin changelists ------------------------------------------------------------------


@contextmanager
def django_default_counting(model):
    """The stock ModelAdmin's counting for one changelist: exact COUNT(*) paginator plus the full-result count."""
    from django.contrib import admin

    ma = admin.site._registry.get(model)
    if ma is None:
        raise NotMeasured(f"{model._meta.label} has no admin")
    saved = ma.paginator, ma.show_full_result_count
    ma.paginator, ma.show_full_result_count = Paginator, True
    try:
        yield
    finally:
        ma.paginator, ma.show_full_result_count = saved


def admin_changelists(runs: int) -> list[Result]:
    from django.apps import apps

    client = pages.operator_client()
    out = []
    for app, model_name, label in pages.ADMIN_CHANGELISTS:
        name = f"Admin {label}: Django default (exact counts) ÷ ours"
        try:
            model = apps.get_model(app, model_name)
            spec = pages.PageSpec(label, f"admin:{app}_{model_name}_changelist")
            url = pages.resolve(spec)
            pages.check_response(pages.fetch(client, url, {}), url)
            ours = time_runs(lambda url=url: pages.fetch(client, url, {}), runs)
            with django_default_counting(model):
                stock = time_runs(lambda url=url: pages.fetch(client, url, {}), runs, budget_s=BASELINE_BUDGET_S)
            out.append(ratio_row(name, "Django default", stock, "ours (planner estimate)", ours))
        except Exception as exc:
            out.append(failed(SECTION, name, exc))
    return out


# --- GPU chart ------------------------------------------------------------------------------

CHART_FIELDS = [
    "recorded_at", "gpu_utilization", "memory_bandwidth_utilization", "memory_used", "memory_total", "temperature",
    "power_usage", "power_limit", "sm_clock", "memory_clock", "fan_speed", "inference_fps", "pcie_tx_throughput",
    "pcie_rx_throughput", "encoder_utilization", "decoder_utilization",
]  # fmt: skip


def gpu_chart(ds, runs: int) -> list[Result]:
    name = "GPU 24 h chart: raw rows ÷ SQL buckets (date_bin over gpu_stats)"
    name_rollup = "GPU 24 h chart: raw rows ÷ per-minute rollup (what the GPU page reads)"
    try:
        from monitoring.forms import GPU_RANGES
        from monitoring.models import GpuStat

        if not hasattr(GpuStat.objects.all(), "bucketed"):
            raise NotMeasured("GpuStat.objects.bucketed() does not exist yet")
        width = GPU_RANGES["24h"][2]
        origin = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        end = ds.anchor + dt.timedelta(seconds=1)
        # Aligned to the bucket width, as the page aligns it (the rollup needs whole buckets).
        end = origin + -(-(end - origin) // width) * width
        start = end - dt.timedelta(hours=24)
        qs = GpuStat.objects.for_gpu("bench-host", 0).between(start, end)

        def raw():
            return list(qs.order_by("recorded_at").values_list(*CHART_FIELDS))

        def buckets():
            return list(qs.bucketed(width))

        n_raw, n_buckets = len(raw()), len(buckets())
        fast = time_runs(buckets, runs)
        slow = time_runs(raw, runs, budget_s=BASELINE_BUDGET_S)
        out = [
            ratio_row(
                name,
                "raw rows to Python",
                slow,
                f"date_bin buckets ({width})",
                fast,
                note=f"{n_raw:,} raw rows vs {n_buckets} buckets for one GPU",
            )  # fmt: skip
        ]
        try:
            from monitoring.services import rollup
        except ImportError:
            return out
        if not rollup.serves(width):
            return out

        def from_rollup():
            return rollup.chart("bench-host", 0, start, end, width)

        n_rollup = len(from_rollup())
        if n_rollup != n_buckets:
            raise RuntimeError(f"the rollup gives {n_rollup} buckets where date_bin gives {n_buckets}")
        quick = time_runs(from_rollup, runs)
        out.append(ratio_row(name_rollup, "raw rows to Python", slow, "rollup", quick,
                             note=f"same {n_rollup} buckets; date_bin over gpu_stats takes "
                                  f"{statistics.median(fast):.1f} ms"))  # fmt: skip
        return out
    except Exception as exc:
        return [failed(SECTION, name, exc)]


# --- log search -----------------------------------------------------------------------------


def log_search(runs: int) -> list[Result]:
    out = []
    from monitoring.models import Log

    for term in (ds_mod.RARE_TERM, ds_mod.COMMON_TERM):
        name = f"Log search {term!r}, newest 50: ILIKE '%{term}%' ÷ GIN full-text"
        try:
            if not hasattr(Log.objects.all(), "search"):
                raise NotMeasured("Log.objects.search() does not exist yet")

            def gin(term=term):
                return list(Log.objects.search(term).order_by("-timestamp", "-id")[:50])

            def ilike(term=term):
                return list(Log.objects.filter(message__icontains=term).order_by("-timestamp", "-id")[:50])

            hits = Log.objects.search(term).count()
            fast = time_runs(gin, runs)
            slow = time_runs(ilike, runs, budget_s=BASELINE_BUDGET_S)
            out.append(ratio_row(name, "ILIKE", slow, "GIN", fast, note=f"{hits:,} matching rows"))
        except Exception as exc:
            out.append(failed(SECTION, name, exc))
    return out


# --- find similar -------------------------------------------------------------------------


# The JSONB fallback path reads every embedding (≈1.5 ms per row measured); above this many rows it
# would take minutes per query, so it is timed once and only up to this size.
JSONB_EXACT_MAX_ROWS = 20_000


def find_similar(ds, runs: int) -> list[Result]:
    name_fast = "Find similar (re-id, 20 nearest on other cameras), HNSW index"
    name_ratio = "Find similar: exact scan (pgvector, no index) ÷ HNSW index"
    name_jsonb = "Find similar: JSONB exact fallback ÷ HNSW index"
    try:
        from dashboard.services import reid
    except ImportError:
        return [pages_not_measured(name_fast, "dashboard.services.reid missing", "< 50 ms")]
    try:
        if not ds.counts.get("reid_embeddings"):
            raise NotMeasured("no embeddings in the dataset")
        if not reid.vector_index_available():
            raise NotMeasured("pgvector is not installed on this database (reid_vectors missing)")
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM reid_vectors")
            indexed = cur.fetchone()[0]
        if not indexed:
            raise NotMeasured("reid_vectors is empty")
        # Several query detections, so one lucky graph entry point does not decide the number.
        n_emb = ds.counts["reid_embeddings"]
        stride = max(1, ds.counts["detections"] // max(1, n_emb))
        probes = [1 + (k * (n_emb // 7)) * stride for k in range(7)]
        it = iter(probes * (runs + 10))

        def vector():
            return reid.find_similar(next(it), limit=20, method="vector")

        def brute(pk=None):
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute("SET LOCAL enable_indexscan = off")
                return reid.find_similar(pk or probes[0], limit=20, method="vector")

        recall = sum(_overlap(reid.find_similar(p, 20, "vector"), brute(p)) for p in probes) / len(probes)
        fast = time_runs(vector, runs)
        results = [
            measured("Throughput", name_fast, fast, target="< 50 ms", limit=50,
                     note=f"{indexed:,} vectors; recall@20 vs the exact answer {recall:.0%}")
        ]  # fmt: skip
        slow = time_runs(brute, runs, budget_s=BASELINE_BUDGET_S)
        results.append(ratio_row(name_ratio, "exact scan", slow, "HNSW", fast))
        if n_emb <= JSONB_EXACT_MAX_ROWS:
            jsonb = time_runs(lambda: reid.find_similar(probes[0], 20, "exact"), 1, warmup=0)
            results.append(ratio_row(name_jsonb, "JSONB exact (fallback without pgvector)", jsonb, "HNSW", fast,
                                     note="one run"))  # fmt: skip
        else:
            results.append(
                not_measured(SECTION, name_jsonb, f"{n_emb:,} embeddings: the JSONB scan would take minutes per "
                             f"query; timed only up to {JSONB_EXACT_MAX_ROWS:,} rows (see a SCALE=0.01 run)")
            )  # fmt: skip
        return results
    except Exception as exc:
        return [failed("Throughput", name_fast, exc, "< 50 ms"), failed(SECTION, name_ratio, exc)]


def _overlap(a, b) -> float:
    ids_a = {s.detection.pk for s in a}
    ids_b = {s.detection.pk for s in b}
    return len(ids_a & ids_b) / max(1, len(ids_b))


def pages_not_measured(name, reason, target=""):
    from tests.benchmarks.harness import not_measured

    return not_measured("Throughput", name, reason, target)


def run(ds, runs: int) -> list[Result]:
    results: list[Result] = []
    results += admin_changelists(runs)
    results += gpu_chart(ds, runs)
    results += log_search(runs)
    results += find_similar(ds, runs)
    return results
