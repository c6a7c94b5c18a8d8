import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring import logging as db_logging
from monitoring.views import highlight_html
from tests import factories

pytestmark = pytest.mark.django_db

URL = reverse("monitoring:logs")


def shown_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/logs/(\d+)/"', response.content.decode())]


@pytest.fixture
def sample_logs():
    now = timezone.now()
    make = factories.LogFactory
    return {
        "disk": make(
            level="ERROR",
            component="recorder",
            message="Disk full on /var/recordings",
            timestamp=now - dt.timedelta(minutes=1),
        ),
        "timeout": make(
            level="WARNING",
            component="detector",
            message="Camera stream timeout",
            camera_id="front_door",
            timestamp=now - dt.timedelta(minutes=2),
        ),
        "frontend": make(
            level="ERROR",
            component="frontend",
            message="TypeError in gpu page",
            source="frontend",
            timestamp=now - dt.timedelta(minutes=3),
        ),
        "old": make(level="INFO", component="detector", message="Model loaded", timestamp=now - dt.timedelta(days=2)),
        "debug": make(
            level="DEBUG", component="recorder", message="Disk check ok", timestamp=now - dt.timedelta(minutes=5)
        ),
    }


def test_newest_first_without_filters(viewer_client, sample_logs):
    response = viewer_client.get(URL)
    assert response.status_code == 200
    expected = [sample_logs[k].pk for k in ("disk", "timeout", "frontend", "debug", "old")]
    assert shown_ids(response) == expected


@pytest.mark.parametrize(
    "params, keys",
    [
        ({"level": ["ERROR", "WARNING"]}, ["disk", "timeout", "frontend"]),
        ({"component": "recorder"}, ["disk", "debug"]),
        ({"camera": "front_door"}, ["timeout"]),
        ({"source": "frontend"}, ["frontend"]),
        ({"level": "ERROR", "source": "backend"}, ["disk"]),
    ],
)
def test_filters(viewer_client, sample_logs, params, keys):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    assert shown_ids(response) == [sample_logs[k].pk for k in keys]


def test_time_range_filter(viewer_client, sample_logs):
    now = timezone.localtime()
    params = {
        "timestamp__gte": (now - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S"),
        "timestamp__lt": (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    assert shown_ids(viewer_client.get(URL, params)) == [sample_logs["old"].pk]


@pytest.mark.parametrize(
    "query, keys",
    [
        ("disk", ["disk", "debug"]),
        ("disk -full", ["debug"]),
        ('"stream timeout"', ["timeout"]),
        ("timeout or loaded", ["timeout", "old"]),
        ("recorder", ["disk", "debug"]),  # component, weight B
        ("warning", ["timeout"]),  # level, weight C
        ("disks", ["disk", "debug"]),  # stemmed
    ],
)
def test_full_text_query_in_websearch_syntax(viewer_client, sample_logs, query, keys):
    response = viewer_client.get(URL, {"q": query})
    assert response.status_code == 200
    assert shown_ids(response) == [sample_logs[k].pk for k in keys]


def test_matches_are_highlighted_and_html_is_escaped(viewer_client):
    factories.LogFactory(message='<script>alert("x")</script> disk <b>failure</b> on disk & co')
    response = viewer_client.get(URL, {"q": "disk"})
    html = response.content.decode()
    assert "<script>alert" not in html and "<b>failure</b>" not in html
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; <mark>disk</mark> &lt;b&gt;failure&lt;/b&gt; on <mark>disk</mark> &amp; co"
        in html
    )


def test_long_messages_show_the_fragments_around_matches(viewer_client):
    factories.LogFactory(message="start " + "filler words here " * 300 + "<kernel> panic at the end")
    html = viewer_client.get(URL, {"q": "panic"}).content.decode()
    assert "&lt;kernel&gt; <mark>panic</mark>" in html and "start filler" not in html


def test_html_in_messages_renders_as_text_without_a_query(viewer_client):
    factories.LogFactory(message="<img src=x onerror=alert(1)>")
    html = viewer_client.get(URL).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_highlight_only_turns_its_own_markers_into_mark():
    assert highlight_html("a \ue000b\ue001 <mark>c</mark>") == "a <mark>b</mark> &lt;mark&gt;c&lt;/mark&gt;"
    assert highlight_html("\ue002i\ue003 \ue000x\ue001 & y") == "&lt;i&gt; <mark>x</mark> &amp; y"
    assert highlight_html("stray \ue000 marker\ue001\ue001") == "stray <mark> marker</mark>"
    assert highlight_html("\ue001only\ue000") == "only"


def test_keyset_pages_walk_every_row_once(viewer_client):
    now = timezone.now()
    same = now - dt.timedelta(seconds=30)
    # 40 rows share one timestamp: the id breaks the tie across a page boundary.
    rows = [factories.LogFactory(timestamp=same) for _ in range(40)]
    rows += [factories.LogFactory(timestamp=now - dt.timedelta(seconds=i)) for i in range(80)]
    expected = [r.pk for r in sorted(rows, key=lambda r: (r.timestamp, r.pk), reverse=True)]

    seen, url, pages = [], URL + "?level=INFO", 0
    while url:
        response = viewer_client.get(url)
        assert response.status_code == 200
        seen += shown_ids(response)
        pages += 1
        match = re.search(r'href="(/logs/\?[^"]*before=[^"]*)"[^>]*>Older', response.content.decode())
        url = match.group(1).replace("&amp;", "&") if match else None
    assert pages == 3
    assert seen == expected
    assert "level=INFO" in response.request["QUERY_STRING"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"level": "LOUD"}, "Select a valid choice. LOUD is not one of the available choices."),
        ({"timestamp__gte": "yesterday-ish"}, "Enter a valid date/time."),
        ({"source": "mobile"}, "Select a valid choice."),
        ({"before": "garbage"}, "This page link is malformed"),
        ({"before": "2026-01-01T00:00:00,abc"}, "This page link is malformed"),
        ({"q": "x" * 201}, "Ensure this value has at most 200 characters"),
        (
            {"timestamp__gte": "2026-01-02T00:00", "timestamp__lt": "2026-01-01T00:00"},
            "The start of the time range must be before its end.",
        ),
    ],
)
def test_bad_filter_values_are_form_errors_not_500(viewer_client, sample_logs, params, message):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    html = response.content.decode().replace("&#x27;", "'")
    assert "Please correct the filters" in html and message in html
    assert shown_ids(response) == []


def test_htmx_filter_request_gets_only_the_results(viewer_client, sample_logs, htmx_headers):
    response = viewer_client.get(URL, {"component": "recorder"}, **htmx_headers("log-results"))
    html = response.content.decode()
    assert "<html" not in html and 'id="log-rows"' in html
    assert shown_ids(response) == [sample_logs["disk"].pk, sample_logs["debug"].pk]


def test_live_tail_polls_for_rows_newer_than_the_newest_shown(viewer_client, sample_logs, htmx_headers):
    page = viewer_client.get(URL, {"tail": "1", "level": "ERROR"}).content.decode()
    newest_id = max(r.pk for r in sample_logs.values() if r.level == "ERROR")
    poll = re.search(r'<tr id="log-tail"[^>]*hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert f"after={newest_id}" in poll and "level=ERROR" in poll and 'hx-trigger="every 5s"' in page

    # A record queued by the log handler can carry a timestamp older than rows already shown.
    late = factories.LogFactory(level="ERROR", message="late arrival", timestamp=timezone.now() - dt.timedelta(hours=1))
    factories.LogFactory(level="INFO", message="filtered out")
    newer = factories.LogFactory(level="ERROR", message="fresh error")
    response = viewer_client.get(poll, **htmx_headers("log-tail"))
    html = response.content.decode()
    assert html.lstrip().startswith('<tr id="log-tail"')
    assert shown_ids(response) == [newer.pk, late.pk]
    assert f"after={newer.pk}" in html

    quiet = viewer_client.get(re.sub(r"after=\d+", f"after={newer.pk}", poll), **htmx_headers("log-tail"))
    assert shown_ids(quiet) == [] and 'id="log-tail"' in quiet.content.decode()


def test_live_tail_is_off_by_default(viewer_client, sample_logs):
    html = viewer_client.get(URL).content.decode()
    assert 'id="log-tail"' not in html and "Live tail: off" in html


def test_live_tail_with_a_broken_cursor_stops_politely(viewer_client, htmx_headers):
    response = viewer_client.get(URL, {"tail": "1", "after": "x"}, **htmx_headers("log-tail"))
    assert response.status_code == 200 and "Live tail stopped" in response.content.decode()


def test_detail_shows_the_structured_extra(viewer_client):
    entry = factories.LogFactory(
        message="<b>zone</b> entered",
        camera_id="porch",
        event_id=7,
        extra={"zone": {"id": 3, "name": "<gate>"}, "score": 0.91},
    )
    response = viewer_client.get(reverse("monitoring:log_detail", args=[entry.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;b&gt;zone&lt;/b&gt; entered" in html
    assert "&quot;name&quot;: &quot;&lt;gate&gt;&quot;" in html
    assert "&quot;score&quot;: 0.91,\n  &quot;zone&quot;: {\n    &quot;id&quot;: 3" in html
    assert viewer_client.get(reverse("monitoring:log_detail", args=[999999])).status_code == 404


def test_dropped_counter_is_shown(viewer_client, monkeypatch):
    monkeypatch.setattr(db_logging, "dropped_count", lambda: 12)
    assert "12 log records dropped by this process" in viewer_client.get(URL).content.decode()


def test_list_query_count_is_fixed(viewer_client, django_assert_num_queries):
    for i in range(60):
        factories.LogFactory(message=f"camera {i} reconnected")
    # session, user, the viewer's groups (navigation), the page of logs
    with django_assert_num_queries(4):
        assert viewer_client.get(URL).status_code == 200
    # + the highlights of the shown rows
    with django_assert_num_queries(5):
        assert viewer_client.get(URL, {"q": "reconnected"}).status_code == 200
    # + the newest id when the tail starts on an empty page
    with django_assert_num_queries(5):
        assert viewer_client.get(URL, {"tail": "1", "component": "nothing"}).status_code == 200
