"""Events list: filters, keyset pagination, bulk "mark reviewed"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from dashboard.models import Event
from dashboard.services.events import PAGE_SIZE, decode_cursor, encode_cursor
from monitoring.models import AuditLog
from tests import factories

URL = reverse("dashboard:events")
BULK_URL = reverse("dashboard:events_bulk_review")


def _ids(response) -> list[int]:
    return [e.pk for e in response.context["page"].items]


@pytest.fixture
def cams(db):
    return factories.CameraFactory(id="front_door", name="Front door"), factories.CameraFactory(
        id="garage", name="Garage"
    )


def _event(camera, minutes_ago=0, **kw):
    return factories.EventFactory(camera=camera, started_at=timezone.now() - dt.timedelta(minutes=minutes_ago), **kw)


def test_anonymous_user_is_sent_to_login(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_list_shows_newest_first_with_risk_badges(operator_client, cams):
    old = _event(cams[0], minutes_ago=10, risk_score=90, summary="Old one")
    new = _event(cams[1], minutes_ago=1, risk_score=10, summary="New one")
    response = operator_client.get(URL)
    assert response.status_code == 200
    assert _ids(response) == [new.pk, old.pk]
    body = response.content.decode()
    assert '<span class="badge critical">Critical</span>' in body
    assert '<span class="badge low">Low</span>' in body
    assert reverse("dashboard:event_detail", args=[old.pk]) in body
    assert reverse("dashboard:feedback_stats") in body and reverse("dashboard:audits") in body


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"camera": ["garage"]}, {"g_high"}),
        ({"camera": ["front_door", "garage"]}, {"f_low", "f_reviewed", "g_high"}),
        ({"risk_level": ["high", "critical"]}, {"g_high"}),
        ({"risk_score_min": "20", "risk_score_max": "50"}, {"f_reviewed"}),
        ({"reviewed": "true"}, {"f_reviewed"}),
        ({"reviewed": "false"}, {"f_low", "g_high"}),
        ({"object_type": "car"}, {"f_reviewed"}),
        ({"object_type": "Person"}, {"f_low", "g_high"}),
        ({"has_feedback": "true"}, {"f_low"}),
        ({"has_feedback": "false"}, {"f_reviewed", "g_high"}),
        ({"has_alert": "true"}, {"g_high"}),
        ({"has_alert": "false"}, {"f_low", "f_reviewed"}),
    ],
)
def test_filters(operator_client, cams, params, expected):
    front, garage = cams
    events = {
        "f_low": _event(front, minutes_ago=30, risk_score=5, object_types="person"),
        "f_reviewed": _event(front, minutes_ago=20, risk_score=40, reviewed=True, object_types="car,truck"),
        "g_high": _event(garage, minutes_ago=10, risk_score=70, object_types="dog,person"),
    }
    factories.EventFeedbackFactory(event=events["f_low"])
    factories.AlertFactory(event=events["g_high"])
    response = operator_client.get(URL, params)
    assert response.status_code == 200
    names = {name for name, e in events.items() if e.pk in _ids(response)}
    assert names == expected


def test_time_range_filter(operator_client, cams):
    now = timezone.now().replace(microsecond=0)
    inside = factories.EventFactory(camera=cams[0], started_at=now - dt.timedelta(hours=2))
    factories.EventFactory(camera=cams[0], started_at=now - dt.timedelta(hours=5))
    factories.EventFactory(camera=cams[0], started_at=now)
    response = operator_client.get(
        URL,
        {
            "started_at__gte": (now - dt.timedelta(hours=3)).isoformat(),
            "started_at__lt": (now - dt.timedelta(hours=1)).isoformat(),
        },
    )
    assert _ids(response) == [inside.pk]


def test_min_score_above_max_is_a_form_error(operator_client, cams):
    _event(cams[0], risk_score=50)
    response = operator_client.get(URL, {"risk_score_min": "80", "risk_score_max": "20"})
    assert response.status_code == 200
    assert "The maximum risk score must not be below the minimum." in response.content.decode()
    assert response.context["page"].items == []
    assert response.context["export_url"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"risk_level": "extreme"},
        {"camera": "nowhere"},
        {"risk_score_min": "abc"},
        {"risk_score_max": "101"},
        {"started_at__gte": "yesterday-ish"},
        {"reviewed": "maybe"},
    ],
)
def test_bad_filter_values_give_form_errors_not_500(operator_client, cams, params):
    _event(cams[0])
    response = operator_client.get(URL, params)
    assert response.status_code == 200
    assert "Please correct the filters" in response.content.decode()
    assert response.context["page"].items == []


def test_keyset_pagination_walks_forward_and_back(operator_client, cams):
    base = timezone.now() - dt.timedelta(days=1)
    # Ties on started_at (5 events share each timestamp) must neither repeat nor skip rows.
    Event.objects.bulk_create(
        [
            Event(camera=cams[0], started_at=base + dt.timedelta(seconds=i // 5), risk_score=1, risk_level="low")
            for i in range(PAGE_SIZE * 2 + 20)
        ]
    )
    expected = list(Event.objects.order_by("-started_at", "-id").values_list("pk", flat=True))
    first = operator_client.get(URL)
    page1 = first.context["page"]
    assert _ids(first) == expected[:PAGE_SIZE]
    assert page1.prev_cursor is None and page1.next_cursor
    second = operator_client.get(URL, {"cursor": page1.next_cursor})
    assert _ids(second) == expected[PAGE_SIZE : 2 * PAGE_SIZE]
    third = operator_client.get(URL, {"cursor": second.context["page"].next_cursor})
    assert _ids(third) == expected[2 * PAGE_SIZE :]
    assert third.context["page"].next_cursor is None
    back = operator_client.get(URL, {"cursor": third.context["page"].prev_cursor})
    assert _ids(back) == expected[PAGE_SIZE : 2 * PAGE_SIZE]
    back_to_start = operator_client.get(URL, {"cursor": back.context["page"].prev_cursor})
    assert _ids(back_to_start) == expected[:PAGE_SIZE]
    assert back_to_start.context["page"].prev_cursor is None


def test_cursor_is_opaque_and_round_trips():
    ts = timezone.now()
    assert decode_cursor(encode_cursor("n", ts, 42)) == ("n", ts, 42)


def test_invalid_cursor_shows_newest_with_a_notice(operator_client, cams):
    event = _event(cams[0])
    response = operator_client.get(URL, {"cursor": "not-a-cursor!!"})
    assert response.status_code == 200
    assert _ids(response) == [event.pk]
    assert "no longer valid" in response.content.decode()


def test_htmx_request_gets_only_the_results_region(operator_client, cams):
    _event(cams[0])
    response = operator_client.get(URL, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'class="events-table"' in body


def test_list_query_count_is_fixed(operator_client, cams, django_assert_num_queries):
    for i in range(30):
        e = _event(cams[i % 2], minutes_ago=i)
        if i % 3 == 0:
            factories.EventFeedbackFactory(event=e)
            factories.AlertFactory(event=e)
    # session, user, operator group, camera choices, the page of events, its feedback/alert flags.
    with django_assert_num_queries(6):
        response = operator_client.get(URL, {"camera": ["front_door", "garage"], "risk_score_min": "0"})
    assert len(response.context["page"].items) == 30


def test_export_link_carries_the_filters_when_exports_exist(operator_client, cams):
    response = operator_client.get(URL, {"camera": "garage", "cursor": "x"})
    try:
        base = reverse("jobs:export_create")
    except NoReverseMatch:
        assert response.context["export_url"] is None
        assert "Export these results" not in response.content.decode()
        return
    assert response.context["export_url"] == f"{base}?export_type=events&camera=garage"


def test_bulk_mark_reviewed_updates_and_audits(operator_client, cams):
    a, b, c = (_event(cams[0], minutes_ago=i) for i in range(3))
    b.reviewed = True
    b.save()
    response = operator_client.post(BULK_URL, {"event_ids": [a.pk, b.pk], "next": f"{URL}?camera=front_door"})
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?camera=front_door"
    for e in (a, b, c):
        e.refresh_from_db()
    assert (a.reviewed, b.reviewed, c.reviewed) == (True, True, False)
    audit = AuditLog.objects.get(action="bulk_review")
    assert audit.actor == "olivia_operator"
    assert audit.details["event_ids"] == [a.pk]
    assert audit.details["changes"] == {"reviewed": [False, True]}


def test_bulk_mark_reviewed_is_operator_only(viewer_client, cams):
    event = _event(cams[0])
    response = viewer_client.post(BULK_URL, {"event_ids": [event.pk]})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.reviewed is False
    assert not AuditLog.objects.filter(action="bulk_review").exists()


@pytest.mark.parametrize("ids", [[], ["abc"], [999999]])
def test_bulk_mark_reviewed_rejects_bad_ids_without_changes(operator_client, cams, ids):
    event = _event(cams[0])
    response = operator_client.post(BULK_URL, {"event_ids": ids, "next": "https://evil.example/"}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[0][0] == URL  # off-site "next" is ignored
    assert any(m.level_tag == "error" for m in response.context["messages"])
    event.refresh_from_db()
    assert event.reviewed is False
    assert not AuditLog.objects.filter(action="bulk_review").exists()


def test_bulk_mark_reviewed_refuses_too_many(operator_client, cams, settings):
    event = _event(cams[0])
    response = operator_client.post(BULK_URL, {"event_ids": [event.pk] * 501}, follow=True)
    assert "At most 500 events" in response.content.decode()
    event.refresh_from_db()
    assert event.reviewed is False


def test_export_link_applies_every_filter_of_the_list(operator_client, cams):
    pytest.importorskip("jobs.services.exports")
    query = {"camera": "garage", "has_alert": "true", "has_feedback": "false", "reviewed": "false",
             "risk_score_min": "10", "risk_score_max": "90", "object_type": "person"}  # fmt: skip
    response = operator_client.get(URL, query)
    assert response.context["export_ignored"] == []
    body = response.content.decode()
    assert "the export does not apply" not in body
    assert "has_alert=true" in response.context["export_url"] and "object_type=person" in response.context["export_url"]
