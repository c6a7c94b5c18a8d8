"""Roles: the Operators and Viewers groups, their admin permissions, and the view guards."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django.views import View

from dashboard.permissions import OPERATORS, VIEWERS, OperatorRequiredMixin, is_operator, operator_required
from dashboard.roles import declared_permissions, ensure_roles
from tests import factories

pytestmark = pytest.mark.django_db


def _perms(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_ensure_roles_gives_viewers_only_view_permissions():
    ensure_roles()
    viewer = _perms(VIEWERS)
    assert viewer and all(".view_" in p for p in viewer)
    for perm in ("alerting.view_alertrule", "dashboard.view_event", "monitoring.view_auditlog", "jobs.view_exportjob"):
        assert perm in viewer


def test_ensure_roles_lets_operators_manage_alerting_and_jobs_but_not_history_or_audit():
    ensure_roles()
    operator = _perms(OPERATORS)
    for perm in (
        "alerting.add_alertrule",
        "alerting.change_camerazone",
        "alerting.delete_alert",
        "jobs.add_exportjob",
        "jobs.change_backupjob",
        "jobs.delete_restorejob",
        "dashboard.change_event",
        "dashboard.change_eventfeedback",
        "monitoring.view_log",
    ):
        assert perm in operator, perm
    for perm in (
        "monitoring.change_auditlog",
        "monitoring.delete_auditlog",
        "monitoring.add_log",
        "jobs.change_jobtransition",
        "jobs.delete_joblog",
        "dashboard.delete_event",
        "dashboard.change_detection",
        "auth.change_user",
    ):
        assert perm not in operator, perm


def test_ensure_roles_is_idempotent_and_removes_stray_permissions():
    Group.objects.get(name=OPERATORS).permissions.clear()
    first = {c.group: c for c in ensure_roles()}
    assert set(first[OPERATORS].added) == declared_permissions()[OPERATORS]
    snapshot = {name: _perms(name) for name in (OPERATORS, VIEWERS)}

    again = ensure_roles()
    assert all(not c.added and not c.removed and not c.created for c in again)
    assert {name: _perms(name) for name in (OPERATORS, VIEWERS)} == snapshot

    stray = Permission.objects.get(content_type__app_label="auth", codename="delete_user")
    Group.objects.get(name=VIEWERS).permissions.add(stray)
    fixed = {c.group: c for c in ensure_roles()}
    assert fixed[VIEWERS].removed == ["auth.delete_user"]
    assert "auth.delete_user" not in _perms(VIEWERS)


def test_ensure_roles_recreates_a_deleted_group():
    Group.objects.filter(name=VIEWERS).delete()
    changes = {c.group: c for c in ensure_roles()}
    assert changes[VIEWERS].created
    assert _perms(VIEWERS) == declared_permissions()[VIEWERS]


def test_ensure_roles_command_reports_and_is_safe_to_repeat(capsys):
    call_command("ensure_roles")
    out = capsys.readouterr().out
    assert "Operators:" in out and "Viewers:" in out
    call_command("ensure_roles")
    out = capsys.readouterr().out
    assert "0 permission(s) added, 0 removed" in out


@pytest.fixture
def staff_viewer(db):
    ensure_roles()
    return factories.UserFactory(username="vera_staff_viewer", role="viewer", is_staff=True)


@pytest.fixture
def staff_operator(db):
    ensure_roles()
    return factories.UserFactory(username="otto_staff_operator", role="operator", is_staff=True)


def test_staff_viewer_sees_admin_lists_but_cannot_add_or_change(client, staff_viewer):
    client.force_login(staff_viewer)
    rule = factories.AlertRuleFactory()
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:alerting_alertrule_changelist")).status_code == 200
    assert client.get(reverse("admin:alerting_alertrule_add")).status_code == 403
    response = client.post(reverse("admin:alerting_alertrule_delete", args=[rule.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert type(rule).objects.filter(pk=rule.pk).exists()
    # Users and groups are for superusers only.
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_staff_operator_manages_rules_in_admin_but_not_audit_rows(client, staff_operator):
    client.force_login(staff_operator)
    rule = factories.AlertRuleFactory()
    audit = factories.AuditLogFactory()
    assert client.get(reverse("admin:alerting_alertrule_add")).status_code == 200
    assert client.get(reverse("admin:alerting_alertrule_change", args=[rule.pk])).status_code == 200
    response = client.post(reverse("admin:monitoring_auditlog_delete", args=[audit.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert type(audit).objects.filter(pk=audit.pk).exists()
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_non_staff_operator_has_no_admin(client, operator):
    client.force_login(operator)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_is_operator_by_group_superuser_and_active_flag(operator, viewer, outsider, staff):
    assert is_operator(operator) and is_operator(staff)
    assert not is_operator(viewer) and not is_operator(outsider)
    operator.is_active = False
    operator._watchpost_is_operator = None
    assert not is_operator(operator)


def test_operator_required_and_mixin_refuse_viewers(viewer, operator):
    rf = RequestFactory()

    @operator_required
    def change(request):
        return HttpResponse("changed")

    class ChangeView(OperatorRequiredMixin, View):
        def get(self, request):
            return HttpResponse("read")

        def post(self, request):
            return HttpResponse("changed")

    for user, allowed in ((viewer, False), (operator, True)):
        request = rf.post("/x/")
        request.user = user
        if allowed:
            assert change(request).content == b"changed"
            assert ChangeView.as_view()(request).content == b"changed"
        else:
            with pytest.raises(PermissionDenied):
                change(request)
            with pytest.raises(PermissionDenied):
                ChangeView.as_view()(request)
        get = rf.get("/x/")
        get.user = user
        assert ChangeView.as_view()(get).content == b"read"


def test_post_migrate_receiver_syncs_the_roles():
    from dashboard.roles import sync_roles_after_migrate

    Group.objects.get(name=VIEWERS).permissions.clear()
    sync_roles_after_migrate(sender=None, using="default")
    assert _perms(VIEWERS) == declared_permissions()[VIEWERS]
    sync_roles_after_migrate(sender=None, using="other")  # other databases are left alone
