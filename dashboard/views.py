from __future__ import annotations

import datetime as dt
import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import FileResponse, Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from dashboard.filters import EventFilterSet
from dashboard.forms import BulkReviewForm, FeedbackForm, ReviewForm, WindowForm
from dashboard.models import Detection, Event, EventDetection
from dashboard.permissions import operator_required
from dashboard.regions import is_partial
from dashboard.services import events as event_service
from dashboard.services import overview, reid, stats
from dashboard.services.health import worker_heartbeat_age


def placeholder(request, title: str, issue: str):
    """Areas that later issues build: say so plainly instead of pretending."""
    return render(request, "placeholder.html", {"title": title, "issue": issue})


@require_GET
def home(request):
    """The overview: each widget loads itself lazily (and refreshes) from overview_widget."""
    widgets = [
        {"key": key, "title": title, "area_url": reverse(area), "src": reverse("dashboard:overview_widget", args=[key])}
        for key, title, area in overview.WIDGETS
    ]
    return render(request, "dashboard/home.html", {"title": "Overview", "widgets": widgets})


@login_not_required
@require_safe
def favicon(request):
    # Browsers ask /favicon.ico on pages that name no icon (the admin's); the console's pages link the SVG.
    return redirect(static("favicon.svg"))


@login_not_required
@never_cache
@require_GET
def healthz(request):
    body: dict = {"database": "ok"}
    status = 200
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception as exc:  # the point of this endpoint is to report it, not to 500
        body["database"] = f"unreachable: {exc.__class__.__name__}"
        status = 503
    age = None
    if status == 200:
        try:
            age = worker_heartbeat_age()
        except Exception:
            age = None
    body["worker_heartbeat_age_seconds"] = None if age is None else round(age, 1)
    body["worker"] = "unknown" if age is None else ("ok" if age < dt.timedelta(minutes=3).total_seconds() else "stale")
    body["status"] = "ok" if status == 200 else "error"
    return JsonResponse(body, status=status)


# --- Event review (issue 6) ------------------------------------------------------------------


def _export_url(request) -> str | None:
    """The jobs app's export form for these filters, once that app offers one."""
    try:
        url = reverse("jobs:export_create")
    except NoReverseMatch:
        return None
    params = request.GET.copy()
    params.pop("cursor", None)
    params.pop("export_type", None)
    query = params.urlencode()
    return f"{url}?export_type=events" + (f"&{query}" if query else "")


def _export_ignored(filterset) -> list[str]:
    """Labels of active filters the exporter does not apply, so the link does not over-promise."""
    try:
        from jobs.services.exports import EVENT_FILTERS
    except ImportError:
        return []
    data = filterset.form.cleaned_data if filterset.is_bound else {}
    return [
        str(filterset.filters[name].label)
        for name, value in data.items()
        if value not in (None, "", [], ()) and name not in EVENT_FILTERS
    ]


@require_GET
def events(request):
    filterset = EventFilterSet(request.GET or None, queryset=event_service.list_queryset())
    notice = None
    valid = not filterset.is_bound or filterset.is_valid()
    if valid:
        try:
            page = event_service.keyset_page(filterset.qs, request.GET.get("cursor"))
        except event_service.InvalidCursor as exc:
            notice = str(exc)
            page = event_service.keyset_page(filterset.qs, None)
    else:
        page = event_service.KeysetPage([])
    event_service.add_flags(page.items)
    context = {
        "title": "Events",
        "filter": filterset,
        "form": filterset.form,
        "page": page,
        "valid": valid,
        "notice": notice,
        "export_url": _export_url(request) if valid else None,
        "export_ignored": _export_ignored(filterset) if valid else [],
        "bulk_max": event_service.BULK_REVIEW_MAX,
    }
    template = "dashboard/_events_results.html" if is_partial(request) else "dashboard/events_list.html"
    return render(request, template, context)


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


@require_POST
@operator_required
def events_bulk_review(request):
    back = _safe_next(request, reverse("dashboard:events"))
    form = BulkReviewForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    changed = event_service.mark_reviewed([e.pk for e in form.cleaned_data["event_ids"]], request=request)
    selected = len(form.cleaned_data["event_ids"])
    already = selected - len(changed)
    text = f"Marked {len(changed)} event(s) as reviewed."
    if already:
        text += f" {already} were already reviewed."
    messages.success(request, text)
    return redirect(back)


def _detail_context(request, event, *, feedback_form=None, review_form=None, saved=None) -> dict:
    feedback = next(iter(event.feedback.all()), None)
    if feedback_form is None:
        feedback_form = FeedbackForm(
            initial={
                "feedback_type": feedback.feedback_type,
                "expected_severity": feedback.expected_severity or "",
                "notes": feedback.notes or "",
            }
            if feedback
            else None
        )
    if review_form is None:
        review_form = ReviewForm(initial={"reviewed": event.reviewed, "notes": event.notes or ""})
    return {
        "title": f"Event {event.pk}",
        "event": event,
        "detections": event_service.detection_views(event),
        "alerts": list(event.alerts.all()),
        "audits": list(event.audits.all()),
        "feedback": feedback,
        "feedback_form": feedback_form,
        "review_form": review_form,
        "anomaly": event_service.anomaly_score(event),
        "skeleton_min_confidence": event_service.KEYPOINT_MIN_CONFIDENCE,
        "saved": saved,
    }


@require_GET
def event_detail(request, pk: int):
    event = event_service.load_event(pk)
    return render(request, "dashboard/event_detail.html", _detail_context(request, event))


@require_POST
@operator_required
def event_review(request, pk: int):
    form = ReviewForm(request.POST)
    if form.is_valid():
        event, changes = event_service.set_review(
            pk, reviewed=form.cleaned_data["reviewed"], notes=form.cleaned_data["notes"], request=request
        )
        saved = "Review saved." if changes else "Nothing changed."
        if is_partial(request):
            fresh = ReviewForm(initial={"reviewed": event.reviewed, "notes": event.notes or ""})
            return render(
                request, "dashboard/_event_review.html", {"event": event, "review_form": fresh, "saved": saved}
            )
        messages.success(request, saved)
        return redirect("dashboard:event_detail", pk=pk)
    if is_partial(request):
        event = get_object_or_404(Event, pk=pk)
        return render(request, "dashboard/_event_review.html", {"event": event, "review_form": form})
    event = event_service.load_event(pk)
    return render(request, "dashboard/event_detail.html", _detail_context(request, event, review_form=form))


@require_POST
@operator_required
def event_feedback(request, pk: int):
    form = FeedbackForm(request.POST)
    if form.is_valid():
        feedback, created = event_service.save_feedback(pk, request=request, **form.cleaned_data)
        saved = "Feedback recorded." if created else "Feedback updated."
        if is_partial(request):
            return render(
                request,
                "dashboard/_event_feedback.html",
                {"event": feedback.event, "feedback": feedback, "feedback_form": form, "saved": saved},
            )
        messages.success(request, saved)
        return redirect("dashboard:event_detail", pk=pk)
    if is_partial(request):
        event = get_object_or_404(Event, pk=pk)
        feedback = event.feedback.first()
        return render(
            request, "dashboard/_event_feedback.html", {"event": event, "feedback": feedback, "feedback_form": form}
        )
    event = event_service.load_event(pk)
    return render(request, "dashboard/event_detail.html", _detail_context(request, event, feedback_form=form))


@require_GET
def detection_frame(request, pk: int):
    """The detection's frame image, only when it is a file inside MEDIA_ROOT."""
    path = event_service.media_file(Detection.objects.filter(pk=pk).values_list("file_path", flat=True).first())
    if path is None:
        raise Http404("This detection has no stored frame.")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not content_type.startswith("image/"):
        raise Http404("This detection's file is not an image.")
    return FileResponse(path.open("rb"), content_type=content_type)


@require_GET
def detection_similar(request, pk: int):
    detection = get_object_or_404(Detection.objects.select_related("camera"), pk=pk)
    method = request.GET.get("method", "auto")
    if method not in reid.METHODS:
        return HttpResponseBadRequest(
            f"Unknown search method {method!r}; use one of {', '.join(reid.METHODS)}.", content_type="text/plain"
        )
    error = None
    results = []
    try:
        results = reid.find_similar(pk, limit=20, method=method)
    except reid.ReidError as exc:
        error = str(exc)
    # Link each result (and the source) to an event it belongs to.
    ids = [r.detection.pk for r in results] + [pk]
    event_of = {}
    for det_id, event_id in EventDetection.objects.filter(detection_id__in=ids).values_list("detection_id", "event_id"):
        event_of.setdefault(det_id, event_id)
    context = {
        "title": f"Similar to detection {pk}",
        "detection": detection,
        "method": method,
        "results": [(r, event_of.get(r.detection.pk)) for r in results],
        "error": error,
        "source_event": event_of.get(pk),
    }
    template = "dashboard/_similar.html" if is_partial(request) else "dashboard/similar.html"
    return render(request, template, context)


# --- Feedback and audit statistics (issue 6) -------------------------------------------------


@require_GET
def feedback_stats(request):
    form = WindowForm(request.GET or None)
    weeks = 12
    if form.is_bound and form.is_valid() and form.cleaned_data.get("weeks"):
        weeks = form.cleaned_data["weeks"]
    data = stats.feedback_stats(weeks)
    return render(
        request, "dashboard/feedback_stats.html", {"title": "Feedback statistics", "form": form, "weeks": weeks, **data}
    )


@require_GET
def audits(request):
    form = WindowForm(request.GET or None)
    days = 30
    if form.is_bound and form.is_valid() and form.cleaned_data.get("days"):
        days = form.cleaned_data["days"]
    data = stats.audit_stats(days)
    return render(request, "dashboard/audits.html", {"title": "Event audits", "form": form, "days": days, **data})


# --- Overview widgets (issue 6) ---------------------------------------------------------------


@require_GET
def overview_widget(request, widget: str):
    builder = overview.BUILDERS.get(widget)
    if builder is None:
        raise Http404("No such overview widget.")
    title, area = next((t, a) for k, t, a in overview.WIDGETS if k == widget)
    context = {"title": title, "widget": widget, "area_url": reverse(area), "now": timezone.now(), **builder()}
    template = f"dashboard/_widget_{widget}.html"
    if is_partial(request):
        return render(request, template, context)
    return render(request, "dashboard/widget_page.html", {**context, "widget_template": template})
