"""Event audits page: averages over time, model contribution rates, worst-scored events."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import EventAudit
from tests import factories

URL = reverse("dashboard:audits")


def _audit(days_ago=0, **kw):
    audit = factories.EventAuditFactory(**kw)
    EventAudit.objects.filter(pk=audit.pk).update(audited_at=timezone.now() - dt.timedelta(days=days_ago))
    return audit


def test_audits_page_aggregates_in_sql(operator_client, db, django_assert_num_queries):
    good = _audit(1, overall_quality_score=4.5, context_usage_score=5.0, has_zones=True)
    bad = _audit(2, overall_quality_score=1.5, context_usage_score=1.0, has_zones=False, has_clip=False)
    _audit(3, overall_quality_score=3.0, context_usage_score=3.0, has_zones=True, has_clip=False)
    _audit(400, overall_quality_score=1.0)  # outside the 30-day window
    # session, user, group + one pass for buckets, flags and averages, worst events.
    with django_assert_num_queries(5):
        response = operator_client.get(URL)
    assert response.status_code == 200
    ctx = response.context
    assert ctx["total"] == 3
    assert ctx["bucket"] == "day"
    assert sum(row["n"] for row in ctx["over_time"]) == 3
    assert ctx["overall"]["overall_quality_score"] == pytest.approx(3.0)
    assert ctx["overall"]["context_usage_score"] == pytest.approx(3.0)
    rates = {c["flag"]: c["rate"] for c in ctx["contributions"]}
    assert rates["has_zones"] == pytest.approx(2 / 3)
    assert rates["has_clip"] == pytest.approx(1 / 3)
    assert rates["has_yolo26"] == pytest.approx(1.0)
    assert rates["has_weather"] == 0
    assert [a.pk for a in ctx["worst"]] == [bad.pk, _pk_of_score(ctx, 3.0), good.pk]
    body = response.content.decode()
    assert reverse("dashboard:event_detail", args=[bad.event_id]) in body


def test_averages_skip_missing_scores_per_day_and_overall(operator_client, db):
    _audit(
        1, overall_quality_score=4.0, context_usage_score=None, enrichment_utilization=0.5, prompt_token_estimate=100
    )
    _audit(1, overall_quality_score=2.0, context_usage_score=3.0, enrichment_utilization=1.0, prompt_token_estimate=300)
    _audit(
        5, overall_quality_score=None, context_usage_score=1.0, enrichment_utilization=0.0, prompt_token_estimate=200
    )
    ctx = operator_client.get(URL).context
    days = {row["n"]: row for row in ctx["over_time"]}
    assert days[2]["overall_quality_score"] == pytest.approx(3.0)
    assert days[2]["context_usage_score"] == pytest.approx(3.0)  # the NULL is not a zero
    assert days[1]["overall_quality_score"] is None
    # Overall averages weigh audits, not days: (4 + 2) / 2 and (3 + 1) / 2.
    assert ctx["overall"]["overall_quality_score"] == pytest.approx(3.0)
    assert ctx["overall"]["context_usage_score"] == pytest.approx(2.0)
    assert ctx["avg_utilization"] == pytest.approx(0.5)
    assert ctx["avg_prompt_tokens"] == pytest.approx(200)


def _pk_of_score(ctx, score):
    return next(a.pk for a in ctx["worst"] if a.overall_quality_score == score)


def test_long_window_buckets_by_week(operator_client, db):
    _audit(40)
    _audit(100)
    response = operator_client.get(URL, {"days": "365"})
    assert response.context["bucket"] == "week"
    assert response.context["total"] == 2
    assert all(row["bucket"].weekday() == 0 for row in response.context["over_time"])


def test_empty_audits_page(viewer_client, db):
    response = viewer_client.get(URL)
    assert response.status_code == 200
    assert "No audits in this window." in response.content.decode()
    assert all(c["rate"] is None for c in response.context["contributions"])


def test_bad_window_is_a_clear_message(operator_client, db):
    response = operator_client.get(URL, {"days": "-5"})
    assert response.status_code == 200
    assert response.context["days"] == 30
    assert "Showing the last 30 days." in response.content.decode()


def test_audit_path_does_not_collide_with_the_audit_trail():
    assert URL != reverse("monitoring:audit")
    assert not URL.startswith(reverse("monitoring:audit"))
