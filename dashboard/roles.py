"""The two roles as Django groups with model permissions, so staff who are operators
or viewers see the right admin pages.

Views check roles through dashboard.permissions (group membership); these model
permissions only drive the Django admin. `ensure_roles()` is the single source of
truth and is idempotent: it creates the groups and makes their permissions exactly
the declared set (a permission someone added by hand in the admin is removed again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, router, transaction

from dashboard.permissions import OPERATORS, VIEWERS

# Apps whose data the console shows; both roles may read all of it.
DOMAIN_APPS = ("dashboard", "monitoring", "alerting", "jobs")
# Operators manage these apps' records (rules, zones, alerts, baselines, jobs, exports, backups, restores)...
OPERATOR_MANAGED_APPS = ("alerting", "jobs")
# ...except history, which only the code that makes it writes (edits would falsify it).
HISTORY_MODELS = {"jobs.jobattempt", "jobs.joblog", "jobs.jobtransition", "alerting.notificationdelivery"}
# Event review: operators mark events reviewed and leave feedback; the detections themselves are sensor data.
OPERATOR_EXTRA = {"dashboard.change_event", "dashboard.add_eventfeedback", "dashboard.change_eventfeedback"}


def _models(app_labels):
    for label in app_labels:
        yield from apps.get_app_config(label).get_models()


def declared_permissions() -> dict[str, set[str]]:
    """{group name: {"app_label.codename", ...}} for both roles."""
    view = {f"{m._meta.app_label}.view_{m._meta.model_name}" for m in _models(DOMAIN_APPS)}
    manage = set()
    for m in _models(OPERATOR_MANAGED_APPS):
        if m._meta.label_lower in HISTORY_MODELS:
            continue
        manage |= {f"{m._meta.app_label}.{action}_{m._meta.model_name}" for action in ("add", "change", "delete")}
    return {OPERATORS: view | manage | OPERATOR_EXTRA, VIEWERS: set(view)}


@dataclass
class RoleChange:
    group: str
    created: bool = False
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@transaction.atomic
def ensure_roles() -> list[RoleChange]:
    # Permissions are created after `migrate`; make sure they exist even when this runs
    # right after a fresh migration in the same process.
    for config in apps.get_app_configs():
        create_permissions(config, verbosity=0)
    changes = []
    for name, wanted in declared_permissions().items():
        group, created = Group.objects.get_or_create(name=name)
        change = RoleChange(group=name, created=created)
        by_key = {
            f"{p.content_type.app_label}.{p.codename}": p
            for p in Permission.objects.select_related("content_type").filter(
                content_type__app_label__in={key.split(".", 1)[0] for key in wanted}
            )
        }
        missing = sorted(wanted - by_key.keys())
        if missing:
            raise LookupError(f"Unknown permissions for {name}: {', '.join(missing)}")
        current = {
            f"{p.content_type.app_label}.{p.codename}": p for p in group.permissions.select_related("content_type")
        }
        change.added = sorted(wanted - current.keys())
        change.removed = sorted(current.keys() - wanted)
        if change.added:
            group.permissions.add(*(by_key[key] for key in change.added))
        if change.removed:
            group.permissions.remove(*(current[key] for key in change.removed))
        changes.append(change)
    return changes


def sync_roles_after_migrate(sender=None, using=DEFAULT_DB_ALIAS, **kwargs):
    """post_migrate receiver: every `migrate` (and so `make run` and each test database)
    leaves both groups with exactly their declared permissions.

    Connect once, in DashboardConfig.ready():
        post_migrate.connect(sync_roles_after_migrate, sender=self, dispatch_uid="dashboard.roles")
    """
    if using != DEFAULT_DB_ALIAS or not router.allow_migrate_model(using, Group):
        return
    ensure_roles()
