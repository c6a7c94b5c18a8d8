"""Server time of every page through the real URL stack (middleware, auth, views, templates) as a logged-in operator.

`django.test.Client` calls the WSGI handler in-process: what is timed is the
server's work for one request, without a network or a browser. Each page is
requested once untimed (warm caches, compiled templates), once with its SQL
captured (main-query plan, sequential scans of big tables, query count), then
`runs` times on the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from tests.benchmarks import dataset as ds_mod
from tests.benchmarks.harness import NotMeasured, Result, failed, inspect_queries, measured, table_rows, time_runs

LIST_TARGET_MS = 100  # lists and charts
PAGE_TARGET_MS = 150  # every other page
PLACEHOLDER_MARK = b"This area is not built yet"
SEQ_SCAN_ROWS = 50_000


@dataclass
class PageSpec:
    name: str
    url_name: str
    args: list = field(default_factory=list)
    query: dict = field(default_factory=dict)
    target_ms: int = LIST_TARGET_MS
    section: str = "Pages"
    headers: dict = field(default_factory=dict)
    # Several URLs fetched one after the other and timed together (a page and the widgets it loads).
    then: list = field(default_factory=list)
    # Empty the cache before each fetch: what the first visitor after a cache expiry waits for.
    cold: bool = False


def _latest_event_with_everything(ds) -> int:
    """An event with detections, enrichment results, feedback, an LLM audit and (likely) an alert."""
    n = ds.counts.get("events") or 1
    pk = (n // 100) * 100
    return max(pk, 1)


def page_specs(ds) -> list[PageSpec]:
    event_id = _latest_event_with_everything(ds)
    detection_id = (event_id - 1) * ds_mod.DETECTIONS_PER_EVENT + 1  # first detection: has an embedding
    P = PAGE_TARGET_MS
    widgets = overview_widgets()
    specs = [
        PageSpec("Overview (page only)", "home", target_ms=P),
        *[
            PageSpec(f"Overview widget: {w}", "dashboard:overview_widget", args=[w], target_ms=P, headers=HTMX)
            for w in widgets
        ],
        PageSpec(
            f"Overview, page + its {len(widgets)} widgets (HTMX) one after another",
            "home",
            target_ms=P,
            then=[("dashboard:overview_widget", [w]) for w in widgets],
        ),
        PageSpec("Events list", "dashboard:events"),
        PageSpec(
            "Events list, camera + high/critical",
            "dashboard:events",
            query={"camera": "front_door", "risk_level": ["high", "critical"]},
        ),
        PageSpec(
            "Events list, unreviewed with alert", "dashboard:events", query={"reviewed": "false", "has_alert": "true"}
        ),
        PageSpec("Event detail", "dashboard:event_detail", args=[event_id], target_ms=P),
        PageSpec("Find similar (page)", "dashboard:detection_similar", args=[detection_id], target_ms=P),
        PageSpec("Event audits (LLM)", "dashboard:audits"),
        PageSpec("Feedback stats", "dashboard:feedback_stats", target_ms=P),
        PageSpec("GPU, 24 h chart", "monitoring:gpu", query={"range": "24h"}),
        PageSpec("GPU, 30 d chart", "monitoring:gpu", query={"range": "30d"}),
        PageSpec("Logs", "monitoring:logs"),
        PageSpec("Logs, level ERROR", "monitoring:logs", query={"level": "ERROR"}),
        PageSpec(f"Logs, search rare term ({ds_mod.RARE_TERM!r})", "monitoring:logs", query={"q": ds_mod.RARE_TERM}),
        PageSpec(
            f"Logs, search common term ({ds_mod.COMMON_TERM!r})", "monitoring:logs", query={"q": ds_mod.COMMON_TERM}
        ),
        PageSpec("Audit trail", "monitoring:audit"),
        # Loaded by the audit page after itself (hx-trigger="load"): a widget, like the overview's.
        PageSpec(
            "Audit trail: 7-day summary (HTMX, after the page)",
            "monitoring:audit_summary",
            target_ms=P,
            headers={**HTMX, "HX-Target": "audit-summary"},
        ),
        PageSpec("Alerts", "alerting:alerts"),
        PageSpec("Alerts, open", "alerting:alerts", query={"status": ["pending", "delivered"]}),
        PageSpec("Rules", "alerting:rules"),
        PageSpec("Zones", "alerting:zones"),
        PageSpec("Baselines", "alerting:baselines"),
        PageSpec("Jobs", "jobs:list"),
        PageSpec("Exports", "jobs:exports"),
        PageSpec("Backups", "jobs:backups"),
    ]
    for app, model, label in ADMIN_CHANGELISTS:
        specs.append(PageSpec(f"Admin: {label}", f"admin:{app}_{model}_changelist", section="Admin changelists"))
    return specs


HTMX = {"HX-Request": "true"}


def overview_widgets() -> list[str]:
    try:
        from dashboard.services.overview import WIDGETS
    except ImportError:
        return []
    return [w[0] for w in WIDGETS]


# (app label, model name, label) of the changelists over big tables.
ADMIN_CHANGELISTS = [
    ("monitoring", "gpustat", "gpu_stats"),
    ("monitoring", "log", "logs"),
    ("monitoring", "auditlog", "audit_logs"),
    ("dashboard", "event", "events"),
    ("dashboard", "detection", "detections"),
    ("dashboard", "reidembedding", "reid_embeddings"),
    ("alerting", "alert", "alerts"),
    ("jobs", "job", "jobs"),
    ("jobs", "joblog", "job_logs"),
    ("jobs", "jobattempt", "job_attempts"),
    ("jobs", "jobtransition", "job_transitions"),
]


def operator_client() -> Client:
    client = Client()
    client.force_login(User.objects.get(username=ds_mod.BENCH_USER))
    return client


def resolve(spec: PageSpec) -> str:
    try:
        return reverse(spec.url_name, args=spec.args)
    except NoReverseMatch:
        raise NotMeasured(f"no URL named {spec.url_name!r} yet") from None


def fetch(client: Client, url: str, query: dict, headers: dict | None = None):
    response = client.get(url, query, headers=headers or {})
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response


def fetch_all(client: Client, spec: PageSpec, url: str, extra: list[str]):
    if spec.cold:
        from django.core.cache import cache

        cache.clear()
    first = fetch(client, url, spec.query, spec.headers)
    for other in extra:
        check_response(fetch(client, other, {}, HTMX), other)
    return first


def check_response(response, url: str) -> None:
    if response.status_code != 200:
        raise NotMeasured(f"GET {url} answered {response.status_code}")
    if not getattr(response, "streaming", False) and PLACEHOLDER_MARK in response.content:
        raise NotMeasured("page not built yet (placeholder)")


def measure_page(client: Client, spec: PageSpec, runs: int) -> Result:
    target = f"< {spec.target_ms} ms"
    try:
        url = resolve(spec)
        extra = [reverse(name, args=args) for name, args in spec.then]
        first = fetch_all(client, spec, url, extra)
        check_response(first, url)
        with CaptureQueriesContext(connection) as ctx:
            fetch_all(client, spec, url, extra)
        plan, scans, details = inspect_queries(ctx.captured_queries)
        samples = time_runs(lambda: fetch_all(client, spec, url, extra), runs, warmup=0)
        result = measured(spec.section, spec.name, samples, target=target, limit=spec.target_ms, url=url, **details)
        result.plan = plan
        result.seq_scans = scans
        if scans:
            sizes = {t: table_rows(t) for t in scans}
            # A few thousand rows are scanned faster than an index is walked; from 50k on it is a bug.
            if any(n >= SEQ_SCAN_ROWS for n in sizes.values()):
                result.met = False
            result.note = "sequential scan of " + ", ".join(f"{t} ({n:,} rows)" for t, n in sizes.items())
        result.extra["query"] = spec.query
        return result
    except Exception as exc:
        return failed(spec.section, spec.name, exc, target)


def run(ds, runs: int) -> list[Result]:
    client = operator_client()
    return [measure_page(client, spec, runs) for spec in page_specs(ds)]
