import pytest

from alerting.services import alerts as svc
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("start", ["pending", "delivered"])
def test_acknowledge_from_pending_or_delivered_bumps_version(start):
    alert = factories.AlertFactory(status=start)
    updated = svc.acknowledge(alert.pk, 1, actor="olivia")
    assert updated.status == "acknowledged" and updated.version_id == 2
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.version_id == 2
    row = AuditLog.objects.get(action="alert.acknowledge")
    assert row.details == {"changes": {"status": [start, "acknowledged"], "version_id": [1, 2]}}
    assert row.actor == "olivia" and row.status == "success"


@pytest.mark.parametrize("start", ["acknowledged", "dismissed"])
def test_acknowledge_refuses_acknowledged_or_dismissed_alert(start):
    alert = factories.AlertFactory(status=start)
    with pytest.raises(svc.NotAllowed, match="Only pending or delivered"):
        svc.acknowledge(alert.pk, 1)
    alert.refresh_from_db()
    assert alert.status == start and alert.version_id == 1


@pytest.mark.parametrize("start", ["pending", "delivered", "acknowledged"])
def test_dismiss_from_any_status_but_dismissed(start):
    alert = factories.AlertFactory(status=start)
    assert svc.dismiss(alert.pk, 1).status == "dismissed"


def test_dismiss_refuses_dismissed_alert():
    alert = factories.AlertFactory(status="dismissed")
    with pytest.raises(svc.NotAllowed, match="already dismissed"):
        svc.dismiss(alert.pk, 1)


def test_stale_version_is_refused_and_nothing_is_written():
    alert = factories.AlertFactory(status="pending")
    svc.acknowledge(alert.pk, 1)  # someone else got there first: version is now 2
    with pytest.raises(svc.Conflict) as exc:
        svc.dismiss(alert.pk, 1)
    assert "changed by someone else" in exc.value.message and exc.value.status == 409
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.version_id == 2
    assert AuditLog.objects.filter(action="alert.dismiss", status="failure").count() == 1


def test_unknown_or_malformed_alert_ids():
    with pytest.raises(svc.NotFound):
        svc.acknowledge("not-a-uuid", 1)
    with pytest.raises(svc.NotFound):
        svc.acknowledge("00000000-0000-0000-0000-000000000000", 1)
    alert = factories.AlertFactory()
    with pytest.raises(svc.AlertActionError, match="version"):
        svc.acknowledge(alert.pk, "x")


def test_bulk_reports_each_alert():
    ok = factories.AlertFactory(status="pending")
    stale = factories.AlertFactory(status="pending", version_id=3)
    done = factories.AlertFactory(status="dismissed")
    results = svc.bulk_change([(ok.pk, 1), (stale.pk, 2), (done.pk, 1), ("garbage", "1")], "acknowledge")
    assert [(r.ok, r.message[:20]) for r in results] == [
        (True, "Acknowledged."),
        (False, svc.CONFLICT_MESSAGE[:20]),
        (False, "Only pending or deli"),
        (False, "No alert has this id"),
    ]
    stale.refresh_from_db()
    assert stale.status == "pending" and stale.version_id == 3
