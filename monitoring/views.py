"""GPU page, log explorer, frontend log ingestion and audit explorer.

Every list here pages by keyset on (timestamp, id) — `?before=<timestamp>,<id>` —
and never counts: both stay index-driven at tens of millions of rows.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_not_required
from django.contrib.postgres.search import SearchHeadline, SearchQuery
from django.db.models import Case, F, Func, Q, Value, When
from django.db.models.functions import Length
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from dashboard.regions import htmx_target, querystring
from monitoring import logging as db_logging
from monitoring.filters import AuditFilter, LogFilter
from monitoring.forms import GPU_RANGES, GpuHistoryForm, make_cursor
from monitoring.models import AuditLog, Log
from monitoring.services import audit as audit_service
from monitoring.services import ingest
from monitoring.services.charts import charts_for, history, history_csv
from monitoring.services.sampler import gpu_status

PAGE_SIZE = 50
TAIL_LIMIT = 200
# Columns the log list never shows: the tsvector alone can be larger than the message.
LIST_DEFERRED = ("search_vector", "extra", "user_agent")


# --- GPU -----------------------------------------------------------------------------------------------


def _gpu_context(request):
    status = gpu_status()
    choices = [(g["key"], f"{g['host']} · GPU {g['index']} · {g['name'] or 'unknown'}") for g in status["known_gpus"]]
    form = GpuHistoryForm(request.GET, gpus=choices)
    context = {"title": "GPU", "status": status, "form": form, "ranges": GPU_RANGES, "interval": None}
    if form.is_valid() and form.cleaned_data["gpu"]:
        host, _, index = form.cleaned_data["gpu"].rpartition(":")
        hist = history(host, int(index), form.cleaned_data["range"])
        context.update(
            history=hist,
            charts=charts_for(hist),
            selected_gpu=form.cleaned_data["gpu"],
            selected_range=form.cleaned_data["range"],
            csv_query=urlencode({"gpu": form.cleaned_data["gpu"], "range": form.cleaned_data["range"]}),
            range_links=[
                (key, label, querystring(request.GET, range=key)) for key, (label, _, _) in GPU_RANGES.items()
            ],
        )
    return context


@require_GET
def gpu(request):
    context = _gpu_context(request)
    target = htmx_target(request)
    if target == "gpu-cards":
        return render(request, "monitoring/_gpu_cards.html", context)
    if target == "gpu-history":
        return render(request, "monitoring/_gpu_history.html", context)
    return render(request, "monitoring/gpu.html", context)


@require_GET
def gpu_csv(request):
    context = _gpu_context(request)
    form = context["form"]
    if not form.is_valid() or "history" not in context:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()) or "no GPU has been sampled yet"
        return HttpResponse(f"Cannot export: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    hist = context["history"]
    stamp = timezone.localtime(hist.end).strftime("%Y%m%d-%H%M")
    safe_host = re.sub(r"[^A-Za-z0-9._-]", "_", hist.host) or "host"
    response = HttpResponse(history_csv(hist), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="gpu-{safe_host}-{hist.gpu_index}-{hist.range_key}-{stamp}.csv"'
    )
    return response


# --- Logs ------------------------------------------------------------------------------------------------

# Private-use characters: ts_headline wraps matches in the first two; the other two
# stand in for < and > while it runs, because its parser drops anything that looks
# like an HTML tag and a log line "<script>…" must be shown as written.
HIGHLIGHT_START, HIGHLIGHT_STOP, LT, GT = "\ue000", "\ue001", "\ue002", "\ue003"
_HIGHLIGHT = re.compile(f"{HIGHLIGHT_START}([^{HIGHLIGHT_START}{HIGHLIGHT_STOP}]*){HIGHLIGHT_STOP}")


def highlight_html(headline: str) -> str:
    """ts_headline output → safe HTML: escape everything, then turn only our markers into <mark>."""
    escaped = str(escape(headline))
    marked = _HIGHLIGHT.sub(r"<mark>\1</mark>", escaped)
    marked = marked.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_STOP, "")
    return mark_safe(marked.replace(LT, "&lt;").replace(GT, "&gt;"))


HIGHLIGHT_ALL_UP_TO = 2000


def _headlines(rows: list, text: str) -> None:
    """Attach `headline` (safe HTML) to each row: one query over the shown ids only.

    Messages up to HIGHLIGHT_ALL_UP_TO characters are shown whole with every match
    marked; longer ones (tracebacks) as the fragments around the matches.
    """
    if not rows or not text:
        return
    query = SearchQuery(text, search_type="websearch", config="english")
    document = Func(F("message"), Value("<>"), Value(LT + GT), function="translate")
    marks = {"config": "english", "start_sel": HIGHLIGHT_START, "stop_sel": HIGHLIGHT_STOP}
    found = dict(
        Log.objects.filter(id__in=[r.id for r in rows])
        .annotate(message_length=Length("message"))
        .annotate(
            headline=Case(
                When(
                    Q(message_length__lte=HIGHLIGHT_ALL_UP_TO),
                    then=SearchHeadline(document, query, highlight_all=True, **marks),
                ),
                default=SearchHeadline(
                    document, query, max_words=40, min_words=15, max_fragments=3, fragment_delimiter=" … ", **marks
                ),
            )
        )
        .values_list("id", "headline")
    )
    for row in rows:
        if found.get(row.id):
            row.headline = highlight_html(found[row.id])


@require_GET
def logs(request):
    filterset = LogFilter(request.GET, queryset=Log.objects.defer(*LIST_DEFERRED))
    valid = filterset.is_valid()
    tail_on = request.GET.get("tail") == "1"
    context = {"title": "Logs", "filter": filterset, "tail_on": tail_on, "dropped": db_logging.dropped_count()}
    target = htmx_target(request)

    if target == "log-tail":
        return _log_tail(request, filterset if valid else None)

    rows, next_query = [], None
    before = filterset.form.cleaned_data.get("before") if valid else None
    if valid:
        qs = filterset.qs.newest_first()
        rows = list(qs[: PAGE_SIZE + 1])
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            last = rows[-1]
            next_query = querystring(request.GET, before=make_cursor(last.timestamp, last.id), tail=None)
        _headlines(rows, (filterset.form.cleaned_data.get("q") or "").strip())
        if tail_on and not before:
            # The tail follows ids (insertion order): a record whose timestamp is a
            # little older than the newest shown (queued by the log handler) still appears.
            newest = max((r.id for r in rows), default=None)
            if newest is None:
                newest = Log.objects.order_by("-id").values_list("id", flat=True).first() or 0
            context["tail_query"] = querystring(request.GET, after=newest, tail="1", before=None)
    context.update(
        rows=rows,
        next_query=next_query,
        first_query=querystring(request.GET, before=None) if before else None,
        tail_toggle_query=querystring(request.GET, tail=None if tail_on else "1", before=None),
    )
    if target == "log-results":
        return render(request, "monitoring/_log_results.html", context)
    return render(request, "monitoring/logs.html", context)


def _log_tail(request, filterset):
    try:
        after = int(request.GET.get("after", ""))
    except ValueError:
        after = None
    if filterset is None or after is None:
        # Bad filters or a broken cursor: stop polling rather than fail every 5 s.
        return HttpResponse(
            '<tr id="log-tail"><td colspan="6" class="muted">Live tail stopped: reload the page.</td></tr>'
        )
    qs = filterset.qs.filter(id__gt=after)
    rows = list(qs.order_by("-id")[: TAIL_LIMIT + 1])
    skipped = len(rows) > TAIL_LIMIT
    rows = sorted(rows[:TAIL_LIMIT], key=lambda r: (r.timestamp, r.id), reverse=True)
    _headlines(rows, (filterset.form.cleaned_data.get("q") or "").strip())
    newest = max([after, *(r.id for r in rows)])
    context = {
        "rows": rows,
        "skipped": skipped,
        "tail_query": querystring(request.GET, after=newest, tail="1", before=None),
    }
    return render(request, "monitoring/_log_tail.html", context)


@require_GET
def log_detail(request, pk: int):
    entry = get_object_or_404(Log.objects.defer("search_vector"), pk=pk)
    extra = json.dumps(entry.extra, indent=2, sort_keys=True, ensure_ascii=False) if entry.extra is not None else None
    return render(request, "monitoring/log_detail.html", {"title": f"Log #{entry.pk}", "entry": entry, "extra": extra})


def _json_error(message: str, status: int, errors=None) -> JsonResponse:
    body = {"error": message}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def _csrf_failure(request) -> str | None:
    """The reason CSRF protection rejects `request`, or None (checked after authentication)."""
    check = CsrfViewMiddleware(lambda req: None)
    check.process_request(request)
    response = check.process_view(request, None, (), {})
    if response is None:
        return None
    return "CSRF verification failed: send the X-CSRFToken header."


@csrf_exempt  # checked inside, after the 401 for anonymous callers
@login_not_required  # answers 401 JSON itself instead of redirecting to the login page
@require_POST
def ingest_logs(request):
    """Frontend log entries: one JSON object or a list (≤100 entries, ≤64 KiB), source='frontend'."""
    if not request.user.is_authenticated:
        return _json_error("Authentication required.", 401)
    reason = _csrf_failure(request)
    if reason:
        return _json_error(reason, 403)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > ingest.MAX_BODY_BYTES:
        return _json_error(f"The request body is larger than {ingest.MAX_BODY_BYTES // 1024} KiB.", 413)
    content_type = request.content_type or ""
    if content_type not in ("application/json", "text/plain"):
        return _json_error("Send the entries as application/json.", 415)
    try:
        body = request.body
        if len(body) > ingest.MAX_BODY_BYTES:
            return _json_error(f"The request body is larger than {ingest.MAX_BODY_BYTES // 1024} KiB.", 413)
        entries = ingest.parse_body(body)
        rows = ingest.validate(entries, user_agent=request.META.get("HTTP_USER_AGENT"))
    except ingest.IngestError as exc:
        return JsonResponse(exc.as_json(), status=400)
    accepted = ingest.store(rows)
    return JsonResponse({"accepted": accepted}, status=201)


# --- Audit -----------------------------------------------------------------------------------------------


@require_GET
def audit(request):
    filterset = AuditFilter(request.GET, queryset=AuditLog.objects.all())
    valid = filterset.is_valid()
    rows, next_query = [], None
    before = filterset.form.cleaned_data.get("before") if valid else None
    if valid:
        qs = filterset.qs.newest_first()
        rows = list(qs[: PAGE_SIZE + 1])
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            next_query = querystring(request.GET, before=make_cursor(rows[-1].timestamp, rows[-1].id))
    context = {
        "title": "Audit trail",
        "filter": filterset,
        "rows": rows,
        "next_query": next_query,
        "first_query": querystring(request.GET, before=None) if before else None,
    }
    if htmx_target(request) == "audit-results":
        return render(request, "monitoring/_audit_results.html", context)
    return render(request, "monitoring/audit.html", context)


@require_GET
def audit_summary(request):
    """Top actions and actors and the failures of the last 7 days (the audit page loads it after itself)."""
    context = {"title": "Audit trail: summary", "summary": audit_service.summary(days=7)}
    if htmx_target(request) is not None:
        return render(request, "monitoring/_audit_summary.html", context)
    return render(request, "monitoring/audit_summary.html", context)


@require_GET
def audit_detail(request, pk: int):
    entry = get_object_or_404(AuditLog, pk=pk)
    details = entry.details if isinstance(entry.details, dict) else None
    changes = []
    if details and isinstance(details.get("changes"), dict):
        for field, pair in details["changes"].items():
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                changes.append({"field": field, "old": _show(pair[0]), "new": _show(pair[1])})
            else:
                changes.append({"field": field, "old": "", "new": _show(pair)})
    pretty = (
        json.dumps(entry.details, indent=2, sort_keys=True, ensure_ascii=False) if entry.details is not None else None
    )
    return render(
        request,
        "monitoring/audit_detail.html",
        {"title": f"Audit #{entry.pk}", "entry": entry, "changes": changes, "details": pretty},
    )


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
