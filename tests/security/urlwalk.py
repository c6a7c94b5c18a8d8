"""Walk every URL pattern of the project and build a concrete URL for each.

Used by test_url_walk.py and test_malformed_posts.py. Written generically: routes
are read from the resolver when the tests are collected, so pages that other
apps add later are covered without touching this file. Path arguments are filled
with real rows made by tests/factories.py (see `World` and `value_for`).
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RegexPattern

from tests import factories

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)

# Routes that are not part of the walk, and why (shown in the test report as skips).
SKIPPED_NAMES = {
    "login": "the login page is public by design (covered by test_lockout.py)",
    "logout": "logging out is allowed for everyone",
    "healthz": "public health probe for load balancers",
    "favicon": "a redirect to the public static icon (tests/test_shell.py)",
}
# Apps whose data the walk watches for unwanted changes. Logs and audit rows are
# excluded: a refused request may legitimately write a warning or an audit row.
WATCHED_APPS = ("dashboard", "alerting", "jobs", "monitoring", "auth", "django_q")
UNWATCHED_MODELS = {"monitoring.log", "monitoring.auditlog", "monitoring.samplerstatus"}


@dataclass
class Route:
    pattern: str  # the full route as written, e.g. "rules/<uuid:pk>/edit/"
    name: str | None  # namespaced name, e.g. "alerting:rule_edit"
    callback: object
    converters: dict = field(default_factory=dict)  # kwarg name -> converter instance
    regex_kwargs: tuple[str, ...] = ()
    is_regex: bool = False
    default_args: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name or '-'} [{self.pattern}]"

    @property
    def kwarg_names(self) -> list[str]:
        return [*self.converters, *self.regex_kwargs]

    @property
    def view_class(self):
        return getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)

    @property
    def is_json_endpoint(self) -> bool:
        return self.pattern.startswith("api/")

    def skip_reason(self) -> str | None:
        if self.pattern.startswith("admin/"):
            return "Django admin: guarded by staff status and model permissions (see test_roles.py)"
        if self.name in SKIPPED_NAMES:
            return SKIPPED_NAMES[self.name]
        if self.pattern.startswith(("static/", "media/", "__debug__/")) or "serve" in getattr(
            self.callback, "__name__", ""
        ):
            return "static files"
        return None


def _join(prefix: str, pattern) -> str:
    text = str(pattern)
    if isinstance(pattern, RegexPattern):
        text = text.lstrip("^").rstrip("$")
    return prefix + text


def iter_routes(patterns=None, prefix: str = "", namespace: str | None = None, converters=None, regex=False):
    """Every URLPattern under the root resolver, with its full route and namespaced name."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    converters = dict(converters or {})
    for entry in patterns:
        conv = {**converters, **getattr(entry.pattern, "converters", {})}
        is_regex = regex or isinstance(entry.pattern, RegexPattern)
        full = _join(prefix, entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from iter_routes(entry.url_patterns, full, ns, conv, is_regex)
        elif isinstance(entry, URLPattern):
            name = entry.name and (f"{namespace}:{entry.name}" if namespace else entry.name)
            regex_kwargs = ()
            if is_regex:
                regex_kwargs = tuple(n for n in re.compile(full).groupindex if n not in conv)
            yield Route(
                pattern=full,
                name=name,
                callback=entry.callback,
                converters=conv,
                regex_kwargs=regex_kwargs,
                is_regex=is_regex,
                default_args=dict(entry.default_args or {}),
            )


def walk_routes() -> list[Route]:
    """Routes to test (no admin, login, logout, health probe or static files)."""
    return [r for r in iter_routes() if r.skip_reason() is None]


def skipped_routes() -> list[tuple[Route, str]]:
    return [(r, r.skip_reason()) for r in iter_routes() if r.skip_reason() is not None]


# --- Objects for path arguments --------------------------------------------------------

# Words that name a thing in kwarg names ("camera_id") and URL names ("export_download").
ALIASES = {
    "camera": "camera",
    "cam": "camera",
    "event": "event",
    "events": "event",
    "detection": "detection",
    "alert": "alert",
    "alerts": "alert",
    "rule": "rule",
    "rules": "rule",
    "alertrule": "rule",
    "zone": "zone",
    "zones": "zone",
    "camerazone": "zone",
    "baseline": "activity_baseline",
    "baselines": "activity_baseline",
    "activitybaseline": "activity_baseline",
    "classbaseline": "class_baseline",
    "job": "job",
    "jobs": "job",
    "export": "export",
    "exports": "export",
    "exportjob": "export",
    "backup": "backup",
    "backups": "backup",
    "backupjob": "backup",
    "restore": "restore",
    "restores": "restore",
    "restorejob": "restore",
    "log": "log",
    "logs": "log",
    "audit": "audit",
    "auditlog": "audit",
    "gpu": "gpu",
    "gpustat": "gpu",
    "feedback": "feedback",
    "eventfeedback": "feedback",
    "delivery": "delivery",
    "notificationdelivery": "delivery",
    "attempt": "attempt",
    "jobattempt": "attempt",
    "user": "user",
}


class World:
    """One consistent set of rows (the zone belongs to the camera, the alert to the event...)."""

    @cached_property
    def camera(self):
        return factories.CameraFactory(id="walk_cam")

    @cached_property
    def event(self):
        return factories.EventFactory(camera=self.camera)

    @cached_property
    def detection(self):
        # A real (1x1 PNG) frame under MEDIA_ROOT, so the frame view has something to serve.
        frames = Path(settings.MEDIA_ROOT) / "frames"
        frames.mkdir(parents=True, exist_ok=True)
        (frames / "walk.png").write_bytes(PNG_1X1)
        detection = factories.EventDetectionFactory(event=self.event).detection
        type(detection).objects.filter(pk=detection.pk).update(file_path="frames/walk.png")
        detection.file_path = "frames/walk.png"
        return detection

    @cached_property
    def rule(self):
        return factories.AlertRuleFactory(
            camera_ids=[self.camera.id], channels=[{"type": "email", "to": ["ops@example.com"]}]
        )

    @cached_property
    def alert(self):
        return factories.AlertFactory(event=self.event, rule=self.rule)

    @cached_property
    def zone(self):
        return factories.CameraZoneFactory(id="walk_zone", camera=self.camera)

    @cached_property
    def activity_baseline(self):
        return factories.ActivityBaselineFactory(camera=self.camera)

    @cached_property
    def class_baseline(self):
        return factories.ClassBaselineFactory(camera=self.camera)

    @cached_property
    def job(self):
        return factories.JobFactory()

    @cached_property
    def attempt(self):
        return factories.JobAttemptFactory(job=self.job)

    @cached_property
    def export(self):
        # Completed, with its file in EXPORT_DIR, so the download pages have something to serve.
        path = Path(settings.EXPORT_DIR) / "walk-export.csv"
        path.write_text("id,camera\n1,walk_cam\n")
        return factories.ExportJobFactory(
            job=factories.JobFactory(job_type="export", status="completed"),
            status="completed",
            output_path=str(path),
            output_size_bytes=path.stat().st_size,
            total_items=1,
            processed_items=1,
            progress_percent=100,
        )

    @cached_property
    def backup(self):
        path = Path(settings.BACKUP_DIR) / "walk-backup.zip"
        path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip archive
        return factories.BackupJobFactory(
            job=factories.JobFactory(job_type="backup", status="completed"),
            status="completed",
            file_path=str(path),
            file_size_bytes=path.stat().st_size,
        )

    @cached_property
    def restore(self):
        return factories.RestoreJobFactory(job=factories.JobFactory(job_type="restore"))

    @cached_property
    def log(self):
        return factories.LogFactory()

    @cached_property
    def audit(self):
        return factories.AuditLogFactory()

    @cached_property
    def gpu(self):
        return factories.GpuStatFactory()

    @cached_property
    def feedback(self):
        return factories.EventFeedbackFactory(event=self.event)

    @cached_property
    def delivery(self):
        factory = getattr(factories, "NotificationDeliveryFactory", None)
        return factory(alert=self.alert) if factory else None

    @cached_property
    def user(self):
        return factories.UserFactory(username="walk_user", role="viewer")

    def populate(self) -> World:
        """Create every row, so list pages render real rows too."""
        for thing in sorted(set(ALIASES.values())):
            self.get(thing)
        return self

    def get(self, thing: str):
        return getattr(self, thing, None)

    def for_model(self, model):
        label = model._meta.model_name
        thing = ALIASES.get(label)
        return self.get(thing) if thing else None


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z]+", text.lower()) if w]


def _fits(converter, value) -> bool:
    if converter is None:
        return value is not None
    if isinstance(converter, IntConverter):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if isinstance(converter, UUIDConverter):
        return isinstance(value, uuid.UUID)
    try:
        text = converter.to_url(value)
        return re.fullmatch(converter.regex, str(text)) is not None
    except Exception:
        return False


def _view_model(route: Route):
    cls = route.view_class
    model = getattr(cls, "model", None)
    if model is None and getattr(cls, "queryset", None) is not None:
        model = cls.queryset.model
    if model is None:
        form = getattr(cls, "form_class", None)
        model = getattr(getattr(form, "_meta", None), "model", None)
    return model


PK_NAMES = ("pk", "id", "object_id", "uuid")
# Arguments that are not rows: a channel's position in a rule, an hour of the week...
LITERALS = {"index": 0, "channel": 0, "hour": 12, "day": 0, "weekday": 0, "day_of_week": 0, "host": "localhost"}


def _candidates(route: Route, kwarg: str, world: World):
    """Objects that could stand for `kwarg`, best guess first."""
    base = re.sub(r"_(id|pk|uuid|slug)$", "", kwarg.lower())
    if base != kwarg.lower() or kwarg.lower() not in ("pk", "id", "object_id", "uuid"):
        thing = ALIASES.get(base.replace("_", ""))
        if thing:
            yield world.get(thing)
    model = _view_model(route)
    if model is not None:
        yield world.for_model(model)
    # "alerting:rule_edit" -> rule; the last word that names a thing usually is the object.
    for word in reversed(_words(route.name or "") + _words(route.pattern)):
        if word in ALIASES:
            yield world.get(ALIASES[word])


def value_for(route: Route, kwarg: str, world: World):
    """A real value for one path argument, or None when nothing sensible fits."""
    converter = route.converters.get(kwarg)
    lowered = kwarg.lower()
    pk_like = lowered in PK_NAMES or re.search(r"_(id|pk|uuid)$", lowered) is not None
    for obj in _candidates(route, kwarg, world):
        if obj is None:
            continue
        if lowered not in PK_NAMES and hasattr(obj, lowered) and not hasattr(getattr(obj, lowered), "_meta"):
            value = getattr(obj, lowered)
        elif pk_like:
            value = obj.pk
        else:
            continue  # e.g. "action" in alerts/<pk>/<action>/: a pk would be a wrong guess
        if _fits(converter, value):
            return value
    if lowered in LITERALS and _fits(converter, LITERALS[lowered]):
        return LITERALS[lowered]
    # Plain attributes of a few well-known rows (gpu_index, host, gpu_uuid, camera slug...).
    for obj in (world.gpu, world.camera):
        if hasattr(obj, lowered):
            value = getattr(obj, lowered)
            if _fits(converter, value):
                return value
    return None


def build_url(route: Route, world: World) -> tuple[str | None, str | None]:
    """(url, None) or (None, reason it could not be built)."""
    kwargs = {}
    for name in route.kwarg_names:
        value = value_for(route, name, world)
        if value is None:
            return None, f"no fixture object for path argument {name!r}"
        kwargs[name] = value
    if route.name:
        try:
            return reverse(route.name, kwargs=kwargs or None), None
        except Exception as exc:  # a pattern whose reverse needs more than kwargs
            if route.is_regex:
                return None, f"cannot reverse {route.name}: {exc}"
    if route.is_regex:
        if route.kwarg_names or re.search(r"[\\()\[\]*+?]", route.pattern):
            return None, "unnamed regular-expression route"
        return "/" + route.pattern, None

    def replace(match):
        return str(route.converters[match.group(2)].to_url(kwargs[match.group(2)]))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", replace, route.pattern), None


def _watched_tables() -> list[str]:
    tables = []
    for label in WATCHED_APPS:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models(include_auto_created=True):
            if model._meta.label_lower in UNWATCHED_MODELS or not model._meta.managed or model._meta.proxy:
                continue
            tables.append(model._meta.db_table)
    return sorted(set(tables))


def data_snapshot() -> dict[str, str]:
    """A digest of every row of the watched tables (one query), compared before and after a request."""
    from django.db import connection

    tables = _watched_tables()
    parts = [
        f"SELECT %s, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {connection.ops.quote_name(t)} t"
        for t in tables
    ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), tables)
        return dict(cursor.fetchall())


def diff_snapshot(before: dict, after: dict) -> list[str]:
    return [label for label in before if before[label] != after.get(label)]


# --- Links found on the pages ------------------------------------------------------------

_LINK_ATTR = re.compile(
    r"""(?:href|src|action|hx-get|hx-post|hx-put|hx-patch|hx-delete|data-url)\s*=\s*["']([^"'#]+)"""
)


def harvest_url(route: Route, client, world: World | None = None) -> str | None:
    """A link to `route` found on the argument-free pages, for arguments no factory can guess
    (e.g. a widget slug). `client` must be logged in as an operator."""
    from django.urls import Resolver404, resolve

    seen: set[str] = set()
    world = world or World()
    for page in walk_routes():
        if page is route or page.pattern == route.pattern:
            continue
        url, _ = build_url(page, world)
        if url is None:
            continue
        try:
            response = client.get(url)
        except Exception:
            continue
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            continue
        for link in _LINK_ATTR.findall(response.content.decode(errors="replace")):
            path = link.split("?", 1)[0]
            if not path.startswith("/") or path in seen:
                continue
            seen.add(path)
            try:
                match = resolve(path)
            except Resolver404:
                continue
            if match.route == route.pattern:
                return path
    return None
