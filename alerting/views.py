"""Alerting pages: alerts inbox, rules, zones, baselines. Views are thin; services do the work."""

from __future__ import annotations

import hashlib
import uuid
import zoneinfo
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousFileOperation
from django.db import connection, transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerting.choices import AlertStatus
from alerting.filters import AlertFilterSet, AlertRuleFilterSet
from alerting.forms import AlertRuleForm, CameraZoneForm, TestRuleForm
from alerting.models import Alert, AlertRule, CameraZone
from alerting.services import alerts as alert_service
from alerting.services import baselines as baseline_service
from alerting.services import engine, notify
from dashboard.models import Camera
from dashboard.permissions import is_operator, operator_required
from dashboard.regions import htmx_target, is_partial
from dashboard.rowurls import RowUrl
from monitoring.services.audit import record

PAGE_SIZE = 50
# Status counts stop at this many: an exact COUNT over millions of old alerts is not worth a second.
COUNT_CAP = 10_000
RULE_AUDIT_FIELDS = [
    "name", "description", "enabled", "severity", "risk_threshold", "object_types", "camera_ids", "zone_ids",
    "min_confidence", "schedule", "dedup_key_template", "cooldown_seconds", "channels",
]  # fmt: skip
ZONE_AUDIT_FIELDS = ["name", "zone_type", "shape", "coordinates", "color", "priority", "enabled"]


def _reverse_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _mask(value):
    """Channels without webhook secrets, for audit rows and pages viewers see."""
    if isinstance(value, list):
        # A short digest shows that a secret changed without revealing it.
        return [
            {**c, "secret": "sha256:" + hashlib.sha256(str(c["secret"]).encode()).hexdigest()[:8]}
            if isinstance(c, dict) and c.get("secret")
            else c
            for c in value
        ]
    return value


def _snapshot(obj, fields) -> dict:
    return {f: _mask(getattr(obj, f)) if f == "channels" else getattr(obj, f) for f in fields}


def _changes(before: dict, after: dict) -> dict:
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


# --- Alerts inbox ------------------------------------------------------------------------------


def _filter_choices():
    cameras = list(Camera.objects.order_by("name").values_list("id", "name"))
    rules = [(str(pk), name) for pk, name in AlertRule.objects.order_by("name").values_list("id", "name")]
    return cameras, rules


def _status_counts(qs) -> dict:
    """Per-status counts of the filtered alerts, each capped at COUNT_CAP, in one query."""
    if qs.query.is_empty():
        return {s: {"count": 0, "capped": False} for s in AlertStatus.values}
    parts, params = [], []
    for status in AlertStatus.values:
        sql, p = qs.filter(status=status).order_by().values("id")[:COUNT_CAP].query.sql_with_params()
        parts.append(f"(SELECT count(*) FROM ({sql}) s)")
        params.extend(p)
    with connection.cursor() as cur:
        cur.execute("SELECT " + ", ".join(parts), params)
        row = cur.fetchone()
    return {s: {"count": n, "capped": n >= COUNT_CAP} for s, n in zip(AlertStatus.values, row, strict=True)}


def _decode_cursor(raw: str):
    try:
        ts, pk = raw.rsplit("_", 1)
        when = parse_datetime(ts)
        return (when, uuid.UUID(pk)) if when else None
    except (ValueError, TypeError):
        return None


def _alert_filter(request, cameras=None, rules=None):
    data = request.GET.copy()
    data.pop("after", None)
    return AlertFilterSet(data, queryset=Alert.objects.all(), cameras=cameras, rules=rules)


@require_GET
def alerts(request):
    cameras, rules = _filter_choices()
    fs = _alert_filter(request, cameras, rules)
    base = fs.qs if fs.is_valid() else Alert.objects.none()
    page_qs = base.select_related("rule", "event").newest_first()
    cursor = _decode_cursor(request.GET.get("after", ""))
    if cursor:
        when, pk = cursor
        page_qs = page_qs.filter(Q(created_at__lt=when) | Q(created_at=when, id__lt=pk))
    rows = list(page_qs[: PAGE_SIZE + 1])
    next_url = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        params = request.GET.copy()
        params["after"] = f"{last.created_at.isoformat()}_{last.pk}"
        next_url = f"{request.path}?{params.urlencode()}"
    query = request.GET.copy()
    query.pop("after", None)
    export_url = _reverse_or_none("jobs:export_create")
    ctx = {
        "title": "Alerts",
        "filter": fs,
        "alerts": _alert_rows(rows),
        "next_url": next_url,
        "first_url": f"{request.path}?{query.urlencode()}" if cursor else None,
        "query": query.urlencode(),
        "counts": _status_counts(_counts_base(fs)),
        "export_url": f"{export_url}?{urlencode({'export_type': 'alerts'})}&{query.urlencode()}"
        if export_url
        else None,
    }
    if htmx_target(request) == "alert-list":
        return render(request, "alerting/_alert_list.html", ctx)
    return render(request, "alerting/alerts.html", ctx)


def _alert_rows(alerts):
    """Alerts with the links each row of _alert_row.html draws (see dashboard.rowurls)."""
    detail, rule_edit = RowUrl("alerting:alert_detail"), RowUrl("alerting:rule_edit")
    actions = {action: RowUrl("alerting:alert_action", action) for action in ("acknowledge", "dismiss")}
    for a in alerts:
        a.urls = {
            "detail": detail(a.pk),
            "rule": rule_edit(a.rule_id) if a.rule_id else None,
            **{action: link(a.pk) for action, link in actions.items()},
        }
    return alerts


def _counts_base(fs):
    """Filtered alerts ignoring the status filter, so every status shows its count."""
    data = fs.data.copy()
    data.pop("status", None)
    inner = AlertFilterSet(data, queryset=Alert.objects.all())
    return inner.qs if inner.is_valid() else Alert.objects.none()


@require_GET
def alert_counts(request):
    fs = _alert_filter(request)
    counts = _status_counts(_counts_base(fs))
    return render(request, "alerting/_alert_counts.html", {"counts": counts, "query": _query_without(request, "after")})


def _query_without(request, *names) -> str:
    q = request.GET.copy()
    for n in names:
        q.pop(n, None)
    return q.urlencode()


def _detail_context(alert) -> dict:
    deliveries = list(alert.deliveries.order_by("created_at", "id"))
    reasons = (alert.metadata or {}).get("reasons") or {}
    conditions = [
        {"name": name, "label": engine.CONDITION_LABELS.get(name, name), "detail": reasons.get(name, "")}
        for name in alert.matched_conditions
    ]
    return {
        "title": f"Alert {str(alert.pk)[:8]}",
        "alert": alert,
        "event": alert.event,
        "conditions": conditions,
        "deliveries": deliveries,
        "anomaly_score": baseline_service.anomaly_score_for_event(alert.event),
        "event_url": _reverse_or_none("dashboard:event_detail", alert.event_id),
    }


@require_GET
def alert_detail(request, pk):
    alert = get_object_or_404(Alert.objects.select_related("rule", "event", "event__camera"), pk=pk)
    ctx = _detail_context(alert)
    if is_partial(request):
        return render(request, "alerting/_alert_detail.html", ctx)
    return render(request, "alerting/alert_detail.html", ctx)


def _refusal(exc: alert_service.AlertActionError) -> HttpResponse:
    return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")


@require_POST
@operator_required
def alert_action(request, pk, action):
    if action not in alert_service.ACTIONS:
        raise Http404("Unknown action.")
    try:
        alert = alert_service.change_status(pk, request.POST.get("version"), action, request=request)
    except alert_service.AlertActionError as exc:
        if is_partial(request):
            return _refusal(exc)
        messages.error(request, exc.message)
        return redirect("alerting:alert_detail", pk=pk)
    if is_partial(request):
        if request.POST.get("region") == "detail":
            resp = render(request, "alerting/_alert_detail.html", _detail_context(alert))
        else:
            resp = render(request, "alerting/_alert_row.html", {"a": _alert_rows([alert])[0]})
        # The status counts follow at once, not at the next poll. Not "alerts-changed": that reloads
        # the list, and under a status filter the row just acted on would vanish under the cursor.
        resp["HX-Trigger"] = "alert-counts-changed"
        return resp
    messages.success(request, alert_service.DONE_MESSAGES[action])
    return redirect("alerting:alert_detail", pk=pk)


def _parse_bulk_items(values) -> list[tuple[str, str]]:
    items = []
    for raw in values:
        pk, _, version = raw.partition(":")
        items.append((pk, version))
    return items


@require_POST
@operator_required
def alerts_bulk(request):
    action = request.POST.get("action")
    if action not in alert_service.ACTIONS:
        return HttpResponse("Choose acknowledge or dismiss.", status=400, content_type="text/plain; charset=utf-8")
    items = _parse_bulk_items(request.POST.getlist("alerts"))
    if not items:
        return HttpResponse("Select at least one alert.", status=400, content_type="text/plain; charset=utf-8")
    if len(items) > 500:
        return HttpResponse("At most 500 alerts at once.", status=400, content_type="text/plain; charset=utf-8")
    results = alert_service.bulk_change(items, action, request=request)
    ok = sum(r.ok for r in results)
    if is_partial(request):
        resp = render(request, "alerting/_bulk_results.html", {"results": results, "ok": ok, "action": action})
        if ok:
            resp["HX-Trigger"] = "alerts-changed"  # the list and its counts reload themselves
        return resp
    for r in results:
        if not r.ok:
            messages.error(request, f"Alert {r.alert_id[:8]}: {r.message}")
    if ok:
        messages.success(request, f"{alert_service.DONE_MESSAGES[action][:-1]}: {ok} alert(s).")
    return redirect(f"{reverse('alerting:alerts')}?{request.POST.get('query', '')}")


# --- Rules ------------------------------------------------------------------------------------------


@require_GET
def rules(request):
    fs = AlertRuleFilterSet(request.GET, queryset=AlertRule.objects.all())
    rows = _rule_rows(list(fs.qs.order_by("name", "id")[:500]) if fs.is_valid() else [])
    ctx = {"title": "Alert rules", "filter": fs, "rules": rows}
    if htmx_target(request) == "rule-list":
        return render(request, "alerting/_rule_list.html", ctx)
    return render(request, "alerting/rules.html", ctx)


def _rule_rows(rules):
    """Rules with their zone names and the links each row of _rule_row.html draws."""
    links = {kind: RowUrl(f"alerting:rule_{kind}") for kind in ("edit", "toggle", "duplicate", "delete", "test")}
    for r in _with_zone_labels(rules):
        r.urls = {kind: link(r.pk) for kind, link in links.items()}
    return rules


def _with_zone_labels(rules):
    """Zone names for the rules' zone ids (one query, only when some rule has zones)."""
    wanted = {z for r in rules for z in (r.zone_ids or [])}
    names = dict(CameraZone.objects.filter(id__in=wanted).values_list("id", "name")) if wanted else {}
    for r in rules:
        r.zone_labels = [names.get(z, f"{z} (missing)") for z in (r.zone_ids or [])]
    return rules


def _rule_form_context(form, rule=None):
    return {
        "form": form,
        "rule": rule,
        "title": f"Edit rule {rule.name}" if rule else "New alert rule",
        "timezones": sorted(zoneinfo.available_timezones()),
        "zone_rows": _zone_rows(form),
        "channels": rule.channel_list if rule else [],
    }


def _zone_rows(form):
    """Zone checkboxes, limited to the chosen cameras (all zones when none is chosen)."""
    selected = set(form.selected_cameras)
    chosen = set(form["zone_ids"].value() or [])
    rows = []
    for zid, name, cam in form.zone_rows:
        if selected and cam not in selected and zid not in chosen:
            continue
        rows.append({"id": zid, "name": name, "camera": cam, "checked": zid in chosen})
    for zid in chosen - {z for z, _, _ in form.zone_rows}:
        rows.append({"id": zid, "name": zid, "camera": "missing", "checked": True})
    return rows


@require_http_methods(["GET", "POST"])
@operator_required
def rule_create(request):
    form = AlertRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        rule = form.save()
        record("rule.create", "alert_rule", rule.pk, request=request,
               details={"changes": {f: [None, v] for f, v in _snapshot(rule, RULE_AUDIT_FIELDS).items()}})  # fmt: skip
        messages.success(request, f"Rule “{rule.name}” created.")
        return redirect("alerting:rule_edit", pk=rule.pk)
    return render(request, "alerting/rule_form.html", _rule_form_context(form), status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def rule_edit(request, pk):
    rule = get_object_or_404(AlertRule, pk=pk)
    if request.method == "POST":
        return _rule_update(request, rule)
    # Only operators (who may change the rule) see webhook secrets.
    form = AlertRuleForm(instance=rule, hide_secrets=not is_operator(request.user))
    return render(request, "alerting/rule_form.html", _rule_form_context(form, rule))


@operator_required
def _rule_update(request, rule):
    before = _snapshot(rule, RULE_AUDIT_FIELDS)
    form = AlertRuleForm(request.POST, instance=rule)
    if form.is_valid():
        rule = form.save()
        changes = _changes(before, _snapshot(rule, RULE_AUDIT_FIELDS))
        record("rule.update", "alert_rule", rule.pk, request=request, details={"changes": changes})
        messages.success(request, f"Rule “{rule.name}” saved.")
        return redirect("alerting:rule_edit", pk=rule.pk)
    rule.refresh_from_db()
    return render(request, "alerting/rule_form.html", _rule_form_context(form, rule), status=400)


@require_POST
@operator_required
def rule_validate(request, pk=None):
    """Validation as you type: OOB-swapped error lists for the fields the user has touched."""
    rule = get_object_or_404(AlertRule, pk=pk) if pk else AlertRule()
    form = AlertRuleForm(request.POST, instance=rule)
    form.is_valid()
    touched = {t for t in request.POST.get("_touched", "").split(",") if t}
    fields = []
    for name in form.fields:
        errs = form.errors.get(name, []) if name in touched or request.POST.get("_all") else []
        fields.append({"name": name, "errors": errs})
    return render(request, "alerting/_rule_errors.html", {"fields": fields, "form": form})


@require_GET
def rule_zone_options(request):
    form = AlertRuleForm(request.GET)
    return render(request, "alerting/_rule_zone_options.html", {"zone_rows": _zone_rows(form), "form": form})


@require_POST
@operator_required
def rule_toggle(request, pk):
    with transaction.atomic():
        rule = get_object_or_404(AlertRule.objects.select_for_update(), pk=pk)
        rule.enabled = not rule.enabled
        rule.save(update_fields=["enabled"])
        record("rule.update", "alert_rule", rule.pk, request=request,
               details={"changes": {"enabled": [not rule.enabled, rule.enabled]}})  # fmt: skip
    if is_partial(request):
        return render(request, "alerting/_rule_row.html", {"r": _rule_rows([rule])[0]})
    messages.success(request, f"Rule “{rule.name}” {'enabled' if rule.enabled else 'disabled'}.")
    return redirect("alerting:rules")


@require_POST
@operator_required
def rule_duplicate(request, pk):
    rule = get_object_or_404(AlertRule, pk=pk)
    source = rule.pk
    rule.pk = None
    rule.id = uuid.uuid4()
    rule._state.adding = True
    rule.name = f"Copy of {rule.name}"[:255]
    # A copy that fires at once would double every alert of the original.
    rule.enabled = False
    rule.created_at = timezone.now()
    rule.save()
    record("rule.duplicate", "alert_rule", rule.pk, request=request, details={"source": str(source)})
    messages.success(request, f"Created “{rule.name}” (disabled until you enable it).")
    return redirect("alerting:rule_edit", pk=rule.pk)


@require_http_methods(["GET", "POST"])
def rule_delete(request, pk):
    rule = get_object_or_404(AlertRule, pk=pk)
    if request.method == "POST":
        return _rule_delete(request, rule)
    alert_count = Alert.objects.filter(rule=rule)[:10_001].count()
    return render(
        request, "alerting/rule_confirm_delete.html", {"title": "Delete rule", "rule": rule, "alert_count": alert_count}
    )


@operator_required
def _rule_delete(request, rule):
    snapshot = _snapshot(rule, RULE_AUDIT_FIELDS)
    pk = rule.pk
    rule.delete()
    record("rule.delete", "alert_rule", pk, request=request, details={"deleted": snapshot})
    messages.success(request, f"Rule “{snapshot['name']}” deleted; its alerts remain without a rule.")
    return redirect("alerting:rules")


@require_GET
def rule_test(request, pk):
    """Preview: which recent events would match, and why, without creating alerts."""
    rule = get_object_or_404(AlertRule, pk=pk)
    form = TestRuleForm(request.GET if "mode" in request.GET else None, initial={"mode": "last", "last_n": 50})
    results, truncated = None, False
    if form.is_bound and form.is_valid():
        ids, truncated = form.event_ids()
        results = engine.preview_rule(rule, ids)
    ctx = {
        "title": f"Test rule {rule.name}",
        "rule": rule,
        "form": form,
        "results": results,
        "truncated": truncated,
        "match_count": sum(1 for _, m in results if m.matched) if results else 0,
    }
    if is_partial(request):
        return render(request, "alerting/_rule_test_results.html", ctx)
    return render(request, "alerting/rule_test.html", ctx, status=400 if form.errors else 200)


@require_POST
@operator_required
def channel_test(request, pk, index):
    rule = get_object_or_404(AlertRule, pk=pk)
    channels = rule.channel_list
    if not 0 <= index < len(channels):
        raise Http404("This rule has no such channel.")
    channel = channels[index]
    ok, message = notify.send_test(channel, actor=request.user.get_username())
    record("channel.test", "alert_rule", rule.pk, request=request, status="success" if ok else "failure",
           details={"channel": " ".join(notify.channel_key(channel)), "result": message})  # fmt: skip
    if is_partial(request):
        return render(request, "alerting/_channel_test_result.html", {"ok": ok, "message": message})
    (messages.success if ok else messages.error)(request, message)
    return redirect("alerting:rule_edit", pk=rule.pk)


# --- Zones --------------------------------------------------------------------------------------------


@require_GET
def zones(request):
    cameras = Camera.objects.order_by("name").annotate(
        zone_count=Count("zones"), enabled_zone_count=Count("zones", filter=Q(zones__enabled=True))
    )
    return render(request, "alerting/zones.html", {"title": "Camera zones", "cameras": cameras})


def _frame_size(camera) -> tuple[int, int]:
    if camera.frame_path and camera.frame_width and camera.frame_height:
        return camera.frame_width, camera.frame_height
    return 1600, 900  # the neutral 16:9 placeholder


def _svg_points(coords, width, height) -> str:
    try:
        return " ".join(f"{float(x) * width:.1f},{float(y) * height:.1f}" for x, y in coords)
    except (TypeError, ValueError):
        return ""


def _zone_page(request, camera, form, editing=None, status=200):
    camera_zones = list(CameraZone.objects.for_camera(camera.pk))
    rules_by_zone: dict[str, list] = {}
    for r in AlertRule.objects.filter(zone_ids__isnull=False).only("id", "name", "zone_ids", "enabled"):
        for zid in r.zone_ids or []:
            rules_by_zone.setdefault(zid, []).append(r)
    width, height = _frame_size(camera)
    ctx = {
        "title": f"Zones of {camera.name}",
        "camera": camera,
        "zones": [
            {"zone": z, "rules": rules_by_zone.get(z.id, []), "svg_points": _svg_points(z.coordinates, width, height)}
            for z in camera_zones
        ],
        "form": form,
        "editing": editing,
        "frame_width": width,
        "frame_height": height,
        "frame_url": reverse("alerting:camera_frame", args=[camera.pk]),
    }
    if is_partial(request):
        return render(request, "alerting/_zone_editor.html", ctx, status=status)
    return render(request, "alerting/zone_editor.html", ctx, status=status)


@require_GET
def camera_zones(request, camera_id):
    camera = get_object_or_404(Camera, pk=camera_id)
    editing = None
    if request.GET.get("zone"):
        editing = get_object_or_404(CameraZone, pk=request.GET["zone"], camera=camera)
    form = CameraZoneForm(instance=editing, camera=camera) if editing else CameraZoneForm(camera=camera)
    return _zone_page(request, camera, form, editing)


def _zone_saved_response(request, camera, zone):
    url = f"{reverse('alerting:camera_zones', args=[camera.pk])}?zone={zone.pk}"
    if request.htmx:
        resp = HttpResponse(status=204)
        resp["HX-Redirect"] = url
        return resp
    return redirect(url)


@require_POST
@operator_required
def zone_create(request, camera_id):
    camera = get_object_or_404(Camera, pk=camera_id)
    form = CameraZoneForm(request.POST, camera=camera)
    if form.is_valid():
        zone = form.save()
        record("zone.create", "camera_zone", zone.pk, request=request,
               details={"camera_id": camera.pk, "changes": {f: [None, v] for f, v in _snapshot(zone, ZONE_AUDIT_FIELDS).items()}})  # fmt: skip
        messages.success(request, f"Zone “{zone.name}” created.")
        return _zone_saved_response(request, camera, zone)
    return _zone_page(request, camera, form, None, status=400)


@require_POST
@operator_required
def zone_update(request, camera_id, zone_id):
    camera = get_object_or_404(Camera, pk=camera_id)
    zone = get_object_or_404(CameraZone, pk=zone_id, camera=camera)
    before = _snapshot(zone, ZONE_AUDIT_FIELDS)
    form = CameraZoneForm(request.POST, instance=zone, camera=camera)
    if form.is_valid():
        zone = form.save()
        record("zone.update", "camera_zone", zone.pk, request=request,
               details={"camera_id": camera.pk, "changes": _changes(before, _snapshot(zone, ZONE_AUDIT_FIELDS))})  # fmt: skip
        messages.success(request, f"Zone “{zone.name}” saved.")
        return _zone_saved_response(request, camera, zone)
    zone.refresh_from_db()
    return _zone_page(request, camera, form, zone, status=400)


@require_POST
@operator_required
def zone_delete(request, camera_id, zone_id):
    camera = get_object_or_404(Camera, pk=camera_id)
    zone = get_object_or_404(CameraZone, pk=zone_id, camera=camera)
    users = list(AlertRule.objects.using_zone(zone.pk).values_list("name", flat=True))
    if users:
        # Deleting it would silently widen (or break) those rules; make the operator decide.
        msg = f"Zone “{zone.name}” is used by rule(s): {', '.join(users)}. Remove it from them first."
        record("zone.delete", "camera_zone", zone.pk, request=request, status="failure", details={"reason": msg})
        if request.htmx:
            return HttpResponse(msg, status=409, content_type="text/plain; charset=utf-8")
        messages.error(request, msg)
        return redirect(f"{reverse('alerting:camera_zones', args=[camera.pk])}?zone={zone.pk}")
    snapshot = _snapshot(zone, ZONE_AUDIT_FIELDS)
    zone.delete()
    record(
        "zone.delete", "camera_zone", zone_id, request=request, details={"camera_id": camera.pk, "deleted": snapshot}
    )
    messages.success(request, f"Zone “{snapshot['name']}” deleted.")
    url = reverse("alerting:camera_zones", args=[camera.pk])
    if request.htmx:
        resp = HttpResponse(status=204)
        resp["HX-Redirect"] = url
        return resp
    return redirect(url)


PLACEHOLDER_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1600 900" width="1600" height="900">'
    '<rect width="1600" height="900" fill="#1f2937"/>'
    '<path d="M0 0L1600 900M1600 0L0 900" stroke="#374151" stroke-width="2"/>'
    '<text x="800" y="460" font-family="sans-serif" font-size="40" fill="#9ca3af" text-anchor="middle">'
    "No frame from this camera yet</text></svg>"
)


@require_GET
def camera_frame(request, camera_id):
    """The camera's latest frame (a file under MEDIA_ROOT) or a neutral 16:9 placeholder."""
    from dashboard.files import ensure_under

    camera = get_object_or_404(Camera, pk=camera_id)
    if camera.frame_path:
        try:
            path = ensure_under(settings.MEDIA_ROOT, camera.frame_path)
            if path.is_file():
                return FileResponse(path.open("rb"))
        except (SuspiciousFileOperation, OSError):
            pass
    resp = HttpResponse(PLACEHOLDER_SVG, content_type="image/svg+xml")
    resp["Cache-Control"] = "max-age=300"
    return resp


# --- Baselines ------------------------------------------------------------------------------------------


@require_GET
def baselines(request):
    cameras = list(Camera.objects.order_by("name").values("id", "name"))
    wanted = request.GET.get("camera")
    if wanted and any(c["id"] == wanted for c in cameras):
        return redirect("alerting:camera_baselines", camera_id=wanted)
    error = "Unknown camera; pick one from the list." if wanted else None
    return render(
        request,
        "alerting/baselines.html",
        {"title": "Baselines", "cameras": cameras, "error": error},
        status=400 if error else 200,
    )


@require_GET
def camera_baselines(request, camera_id):
    camera = get_object_or_404(Camera, pk=camera_id)
    data = baseline_service.heatmap(camera.pk)
    min_samples = baseline_service.min_samples()
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    grid = [
        {
            "day": days[d],
            "cells": [
                {
                    "hour": h,
                    "slot": slot,
                    "level": baseline_service.heat_level(slot["avg_count"] if slot else None, data["peak"]),
                    "ready": bool(slot and slot["sample_count"] >= min_samples),
                }  # fmt: skip
                for h, slot in enumerate(row)
            ],
        }
        for d, row in enumerate(data["grid"])
    ]
    classes = [
        {
            "name": name,
            "cells": [
                {
                    "hour": h,
                    "slot": slot,
                    "level": baseline_service.heat_level(slot["frequency"] if slot else None, data["class_peak"]),
                }  # fmt: skip
                for h, slot in enumerate(row)
            ],
        }
        for name, row in data["classes"].items()
    ]
    from jobs.models import Job

    recent_jobs = list(Job.objects.filter(job_type="baseline_rebuild").order_by("-created_at")[:5])
    return render(
        request,
        "alerting/camera_baselines.html",
        {
            "title": f"Baselines of {camera.name}",
            "camera": camera,
            "grid": grid,
            "classes": classes,
            "hours": range(24),
            "min_samples": min_samples,
            "peak": data["peak"],
            "timezone": settings.TIME_ZONE,
            "recent_jobs": recent_jobs,
            "job_url_name": "jobs:detail" if _reverse_or_none("jobs:detail", uuid.uuid4()) else None,
        },
    )


@require_POST
@operator_required
def baselines_rebuild(request):
    from jobs.services.tracked import enqueue

    camera_id = request.POST.get("camera") or None
    if camera_id and not Camera.objects.filter(pk=camera_id).exists():
        return HttpResponse("Unknown camera.", status=400, content_type="text/plain; charset=utf-8")
    job = enqueue(
        "baseline_rebuild",
        kwargs={"camera_id": camera_id},
        priority=3,
        max_attempts=2,
        created_by=request.user.get_username(),
    )
    record("baseline.rebuild", "job", job.pk, request=request, details={"camera_id": camera_id})
    messages.success(request, "Rebuilding baselines from history; the job's progress is on the Jobs page.")
    if camera_id:
        return redirect("alerting:camera_baselines", camera_id=camera_id)
    return redirect("alerting:baselines")
