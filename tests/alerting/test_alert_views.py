import datetime as dt

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from alerting.models import Alert
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_alerts(n, **kw):
    now = timezone.now()
    return [factories.AlertFactory(created_at=now - dt.timedelta(minutes=i), **kw) for i in range(n)]


def test_inbox_lists_newest_first(operator_client):
    old, new = make_alerts(2)[::-1]
    resp = operator_client.get(reverse("alerting:alerts"))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert body.index(f"alert-{new.pk}") < body.index(f"alert-{old.pk}")
    assert 'hx-trigger="every 5s, alert-counts-changed from:body"' in body


def test_inbox_filters(operator_client):
    cam = factories.CameraFactory(id="porch")
    rule = factories.AlertRuleFactory()
    hit = factories.AlertFactory(
        status="pending", severity="critical", event=factories.EventFactory(camera=cam), rule=rule
    )
    factories.AlertFactory(status="pending", severity="low")
    factories.AlertFactory(status="dismissed", severity="critical", rule=rule)
    url = reverse("alerting:alerts")
    for query in [
        {"status": ["pending", "delivered"], "severity": "critical"},
        {"camera": "porch"},
        {"rule": str(rule.pk), "status": "pending"},
    ]:
        resp = operator_client.get(url, query)
        assert [a.pk for a in resp.context["alerts"]] == [hit.pk], query
    start = (hit.created_at - dt.timedelta(seconds=1)).isoformat()
    resp = operator_client.get(url, {"created_at__gte": start, "severity": "critical", "status": "pending"})
    assert [a.pk for a in resp.context["alerts"]] == [hit.pk]


def test_bad_filter_values_show_errors_not_500(operator_client):
    resp = operator_client.get(reverse("alerting:alerts"), {"status": "bogus", "rule": "nope", "created_at__gte": "x"})
    assert resp.status_code == 200
    assert resp.context["alerts"] == []
    assert "Please correct the filters" in resp.content.decode()


def test_counts_with_filters_that_match_nothing(operator_client):
    factories.AlertFactory(status="pending")
    resp = operator_client.get(reverse("alerting:alert_counts"), {"status": "nope", "camera": "../../x", "rule": "x"})
    assert resp.status_code == 200
    assert {s: c["count"] for s, c in resp.context["counts"].items()} == dict.fromkeys(
        ["pending", "delivered", "acknowledged", "dismissed"], 0
    )


def test_keyset_pagination_walks_every_alert_once(operator_client):
    alerts = make_alerts(55)
    resp = operator_client.get(reverse("alerting:alerts"))
    first = [a.pk for a in resp.context["alerts"]]
    assert len(first) == 50 and resp.context["next_url"]
    resp = operator_client.get(resp.context["next_url"])
    second = [a.pk for a in resp.context["alerts"]]
    assert first + second == [a.pk for a in alerts]
    assert resp.context["next_url"] is None and resp.context["first_url"]


def test_inbox_htmx_returns_only_the_list(operator_client):
    make_alerts(1)
    resp = operator_client.get(reverse("alerting:alerts"), HTTP_HX_TARGET="alert-list", **HTMX)
    body = resp.content.decode()
    assert body.startswith('<div id="alert-list"') and "<html" not in body


def test_status_counts_ignore_the_status_filter(operator_client):
    factories.AlertFactory(status="pending")
    factories.AlertFactory(status="pending")
    factories.AlertFactory(status="dismissed")
    resp = operator_client.get(reverse("alerting:alert_counts"), {"status": "dismissed"})
    assert resp.status_code == 200
    counts = resp.context["counts"]
    assert counts["pending"]["count"] == 2 and counts["dismissed"]["count"] == 1 and counts["delivered"]["count"] == 0
    assert 'hx-trigger="every 5s, alert-counts-changed from:body"' in resp.content.decode()


def test_inbox_query_count_is_pinned(operator_client, django_assert_num_queries):
    make_alerts(30)
    operator_client.get(reverse("alerting:alerts"))  # warm the session
    # session, user, groups (is_operator), cameras, rules, alerts page, status counts
    with django_assert_num_queries(7):
        resp = operator_client.get(reverse("alerting:alerts"))
    assert len(resp.context["alerts"]) == 30


def test_export_link_only_when_the_jobs_url_exists(operator_client):
    make_alerts(1)
    resp = operator_client.get(reverse("alerting:alerts"), {"severity": "high"})
    try:
        base = reverse("jobs:export_create")
    except NoReverseMatch:
        assert resp.context["export_url"] is None
    else:
        assert resp.context["export_url"] == f"{base}?export_type=alerts&severity=high"
        assert "Export these results" in resp.content.decode()


def test_detail_shows_event_conditions_and_deliveries(viewer_client):
    alert = factories.AlertFactory(
        metadata={"matched_conditions": ["risk_threshold"], "reasons": {"risk_threshold": "risk 80 ≥ 50"}},
        channels=[{"type": "webhook", "url": "https://hooks.example.com/a"}],
    )
    alert.deliveries.create(channel_type="webhook", target="https://hooks.example.com/a", attempt=1, status="failed",
                            http_status=500, error="HTTP 500 Internal Server Error")  # fmt: skip
    resp = viewer_client.get(reverse("alerting:alert_detail", args=[alert.pk]))
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "risk 80 ≥ 50" in body and "HTTP 500 Internal Server Error" in body
    assert alert.event.summary in body
    assert "Acknowledge" not in body  # viewers get no buttons


def test_acknowledge_view_htmx_returns_the_row(operator_client):
    alert = factories.AlertFactory(status="pending")
    resp = operator_client.post(
        reverse("alerting:alert_action", args=[alert.pk, "acknowledge"]), {"version": 1}, **HTMX
    )
    assert resp.status_code == 200
    assert f'id="alert-{alert.pk}"' in resp.content.decode()
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.version_id == 2


def test_acknowledge_view_refuses_a_stale_version_with_409(operator_client):
    alert = factories.AlertFactory(status="pending", version_id=2)
    resp = operator_client.post(reverse("alerting:alert_action", args=[alert.pk, "dismiss"]), {"version": 1}, **HTMX)
    assert resp.status_code == 409
    assert resp.content.decode() == "This alert was changed by someone else; reload and try again."
    alert.refresh_from_db()
    assert alert.status == "pending" and alert.version_id == 2


def test_action_without_htmx_redirects_with_a_message(operator_client):
    alert = factories.AlertFactory(status="dismissed")
    resp = operator_client.post(
        reverse("alerting:alert_action", args=[alert.pk, "acknowledge"]), {"version": 1}, follow=True
    )
    assert "Only pending or delivered alerts can be acknowledged" in resp.content.decode()


def test_detail_region_action(operator_client):
    alert = factories.AlertFactory(status="pending")
    resp = operator_client.post(
        reverse("alerting:alert_action", args=[alert.pk, "dismiss"]), {"version": 1, "region": "detail"}, **HTMX
    )
    assert resp.status_code == 200 and 'id="alert-detail"' in resp.content.decode()


def test_bulk_view_reports_each_alert(operator_client):
    a, b = factories.AlertFactory(status="pending"), factories.AlertFactory(status="pending", version_id=5)
    resp = operator_client.post(
        reverse("alerting:alerts_bulk"), {"action": "dismiss", "alerts": [f"{a.pk}:1", f"{b.pk}:4"]}, **HTMX
    )
    body = resp.content.decode()
    assert resp.status_code == 200 and resp["HX-Trigger"] == "alerts-changed"
    assert "1 of 2" in body and "changed by someone else" in body
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == ("dismissed", "pending")


def test_bulk_view_bad_input_is_400(operator_client):
    url = reverse("alerting:alerts_bulk")
    assert operator_client.post(url, {"action": "delete", "alerts": ["x:1"]}).status_code == 400
    assert operator_client.post(url, {"action": "dismiss"}).status_code == 400


def test_viewer_cannot_change_alerts(viewer_client):
    alert = factories.AlertFactory(status="pending")
    assert (
        viewer_client.post(reverse("alerting:alert_action", args=[alert.pk, "acknowledge"]), {"version": 1}).status_code
        == 403
    )
    assert (
        viewer_client.post(
            reverse("alerting:alerts_bulk"), {"action": "dismiss", "alerts": [f"{alert.pk}:1"]}
        ).status_code
        == 403
    )
    assert Alert.objects.get().status == "pending"


def test_anonymous_is_sent_to_login(client):
    resp = client.get(reverse("alerting:alerts"))
    assert resp.status_code == 302 and "/login/" in resp["Location"]
