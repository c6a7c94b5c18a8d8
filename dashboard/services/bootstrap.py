"""First-run set-up shared by `make run` and scripts: operator account and schedules."""

from __future__ import annotations

import importlib
import secrets

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import transaction

from dashboard.permissions import OPERATORS, VIEWERS


def ensure_groups() -> None:
    for name in (OPERATORS, VIEWERS):
        Group.objects.get_or_create(name=name)


@transaction.atomic
def ensure_first_operator(username: str = "operator") -> tuple[str, str] | None:
    """Create the first operator when nobody can log in yet; return (username, password) once."""
    ensure_groups()
    if (
        User.objects.filter(is_active=True).filter(is_superuser=True).exists()
        or User.objects.filter(is_active=True, groups__name=OPERATORS).exists()
    ):
        return None
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username=username, password=password, is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get(name=OPERATORS))
    return username, password


def ensure_all_schedules() -> list[str]:
    """Call `<app>.schedules.ensure_schedules()` for every app that has one (idempotent)."""
    done = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.schedules")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedules":
                raise
            continue
        ensure = getattr(module, "ensure_schedules", None)
        if ensure is not None:
            ensure()
            done.append(config.name)
    return done
