import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.forms import GPU_RANGES
from monitoring.models import GpuStat, SamplerStatus
from monitoring.services.charts import history, line_chart
from tests import factories

pytestmark = pytest.mark.django_db

URL = reverse("monitoring:gpu")
CSV_URL = reverse("monitoring:gpu_csv")


def status(host="gpu-host-1", available=True, reason="", details=None):
    return SamplerStatus.objects.create(
        host=host,
        available=available,
        reason=reason,
        gpu_count=1 if available else 0,
        details=details or {},
        updated_at=timezone.now(),
    )


# --- bucketed history ---------------------------------------------------------------------------------


def test_bucketed_averages_per_bucket_in_sql():
    origin = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for minute, util, temp in [(0, 10, 50), (2, 30, 70), (4, 50, 60), (5, 90, 80), (11, 20, 40)]:
        factories.GpuStatFactory(
            recorded_at=origin + dt.timedelta(minutes=minute), gpu_utilization=util, temperature=temp
        )
    factories.GpuStatFactory(recorded_at=origin + dt.timedelta(minutes=1), gpu_index=1, gpu_utilization=100)

    rows = list(
        GpuStat.objects.for_gpu("localhost", 0)
        .between(origin, origin + dt.timedelta(hours=1))
        .bucketed(dt.timedelta(minutes=5), origin)
    )

    assert [r["bucket"] for r in rows] == [origin, origin + dt.timedelta(minutes=5), origin + dt.timedelta(minutes=10)]
    assert [r["samples"] for r in rows] == [3, 1, 1]
    assert rows[0]["gpu_utilization"] == pytest.approx(30.0)
    assert rows[0]["temperature"] == pytest.approx(60.0) and rows[0]["temperature_max"] == 70.0
    assert rows[1]["gpu_utilization"] == 90.0


@pytest.mark.parametrize("key, points", [("1h", 120), ("6h", 180), ("24h", 288), ("7d", 336), ("30d", 360)])
def test_ranges_give_a_bounded_number_of_buckets(key, points):
    _, span, width = GPU_RANGES[key]
    assert span / width == points


def test_history_covers_the_range_up_to_now_in_one_query(django_assert_num_queries):
    now = timezone.now()
    for minutes in (1, 30, 59, 61, 600):
        factories.GpuStatFactory(recorded_at=now - dt.timedelta(minutes=minutes))
    with django_assert_num_queries(1):
        hist = history("localhost", 0, "1h", now)
    assert hist.end >= now and hist.end - hist.start == dt.timedelta(hours=1)
    assert sum(r["samples"] for r in hist.rows) == 3
    assert hist.width_label == "30 s"


# --- page ------------------------------------------------------------------------------------------------


def test_gpu_page_shows_a_card_per_gpu(viewer_client):
    status(details={"gpus": [{"index": 0, "processes": [{"pid": 4242, "name": "detector", "used_memory_mb": 4096}]}]})
    factories.GpuStatFactory(
        gpu_index=0, host="gpu-host-1", memory_used=9000, memory_total=10000, throttle_reasons=0x4 | 0x40,
        temperature=87, temp_slowdown_threshold=90, pcie_link_gen=4, pcie_link_width=16, pcie_tx_throughput=1200,
    )  # fmt: skip
    factories.GpuStatFactory(gpu_index=1, host="gpu-host-1", gpu_name="NVIDIA L4", memory_used=9800, memory_total=10000)

    response = viewer_client.get(URL)
    html = response.content.decode()

    assert response.status_code == 200
    assert html.count('class="card gpu-card"') == 2
    assert '<span class="badge warning">90.0% high</span>' in html
    assert '<span class="badge critical">98.0% critical</span>' in html
    assert "Software power cap" in html and "Hardware thermal slowdown" in html
    assert "slowdown at 90 °C" in html
    assert "Gen 4 × 16" in html and "TX 1200 KB/s" in html
    assert "detector" in html and "pid 4242" in html
    assert 'hx-trigger="every 5s"' in html
    assert "No NVIDIA GPU detected" not in html


def test_no_driver_state_shows_the_reason(viewer_client):
    status(
        host="box",
        available=False,
        reason="NVML Shared Library Not Found (libnvidia-ml.so.1 is missing: is the NVIDIA driver installed?)",
    )
    html = viewer_client.get(URL).content.decode()
    assert (
        "No NVIDIA GPU detected: NVML Shared Library Not Found (libnvidia-ml.so.1 is missing: is the NVIDIA driver installed?)"
        in html
    )
    assert 'class="card gpu-card"' not in html and "gpu-history" not in html


def test_before_the_sampler_ran_the_page_says_so(viewer_client):
    html = viewer_client.get(URL).content.decode()
    assert "No NVIDIA GPU detected: the GPU sampler has not reported yet (is the worker running?)" in html


def test_stale_gpu_is_marked(viewer_client):
    status()
    factories.GpuStatFactory(host="gpu-host-1", recorded_at=timezone.now() - dt.timedelta(minutes=20))
    assert "stale 20" in viewer_client.get(URL).content.decode()


def test_cards_partial_for_htmx_polling(viewer_client, htmx_headers):
    status()
    factories.GpuStatFactory(host="gpu-host-1")
    response = viewer_client.get(URL, **htmx_headers("gpu-cards"))
    html = response.content.decode()
    assert html.startswith('<div id="gpu-cards"') and "<html" not in html and "gpu-card" in html


def test_history_charts_for_each_range(viewer_client):
    status()
    now = timezone.now()
    GpuStat.objects.bulk_create(
        factories.GpuStatFactory.build(
            host="gpu-host-1", recorded_at=now - dt.timedelta(seconds=s), gpu_utilization=s % 100
        )
        for s in range(0, 3600, 15)
    )
    for key in GPU_RANGES:
        response = viewer_client.get(URL, {"range": key, "gpu": "gpu-host-1:0"})
        html = response.content.decode()
        assert response.status_code == 200
        assert html.count("<svg") == 5
        # An hour of samples: a line, except on 30 days where it may fit one 2-hour bucket (a dot).
        assert "<polyline" in html or (key == "30d" and "<circle" in html)
        assert f'class="active" aria-current="true">{GPU_RANGES[key][0]}</a>' in html
        assert f"gpu=gpu-host-1%3A0&amp;range={key}" in html  # CSV link of the shown range


def test_history_partial_and_gpu_selection(viewer_client, htmx_headers):
    status()
    factories.GpuStatFactory(host="gpu-host-1", gpu_index=0, gpu_utilization=10)
    factories.GpuStatFactory(host="gpu-host-1", gpu_index=1, gpu_utilization=90, gpu_name="Second")
    response = viewer_client.get(URL, {"gpu": "gpu-host-1:1", "range": "6h"}, **htmx_headers("gpu-history"))
    html = response.content.decode()
    assert html.startswith('<div id="gpu-history"') and "gpu-host-1 · GPU 1" in html
    # The selector outside the region learns the shown range (out-of-band swap) ...
    assert '<input type="hidden" id="gpu-range" name="range" value="6h" hx-swap-oob="true">' in html
    # ... and swaps replace the region instead of nesting a second one inside it.
    full = viewer_client.get(URL, {"gpu": "gpu-host-1:1", "range": "6h"}).content.decode()
    assert full.count('id="gpu-range"') == 1 and full.count('id="gpu-history"') == 1
    assert full.count('hx-target="#gpu-history" hx-swap="outerHTML"') == 6  # selector + five range links
    assert "<polyline" in html or "<circle" in html


@pytest.mark.parametrize(
    "params, message",
    [
        ({"range": "2y"}, "Select a valid choice. 2y is not one of the available choices."),
        ({"gpu": "elsewhere:7"}, "Select a valid choice. elsewhere:7 is not one of the available choices."),
    ],
)
def test_bad_history_selection_is_a_form_error(viewer_client, params, message):
    status()
    factories.GpuStatFactory(host="gpu-host-1")
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    assert message in response.content.decode()


def test_empty_range_says_no_samples(viewer_client):
    status()
    factories.GpuStatFactory(host="gpu-host-1", recorded_at=timezone.now() - dt.timedelta(days=3))
    html = viewer_client.get(URL, {"range": "1h"}).content.decode()
    assert "No samples in this range" in html


def test_csv_download_of_the_shown_range(viewer_client):
    now = timezone.now()
    factories.GpuStatFactory(
        host="=evil", recorded_at=now - dt.timedelta(minutes=3), gpu_utilization=40, power_usage=100
    )
    factories.GpuStatFactory(
        host="=evil", recorded_at=now - dt.timedelta(minutes=2, seconds=50), gpu_utilization=60, power_usage=120
    )
    factories.GpuStatFactory(host="=evil", recorded_at=now - dt.timedelta(hours=3), gpu_utilization=99)

    response = viewer_client.get(CSV_URL, {"gpu": "=evil:0", "range": "1h"})

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="gpu-_evil-0-1h-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sum(int(r["samples"]) for r in rows) == 2
    assert {r["host"] for r in rows} == {"'=evil"}  # no formula for a spreadsheet
    total = sum(float(r["gpu_utilization_pct"]) * int(r["samples"]) for r in rows)
    assert total == pytest.approx(100.0)


def test_csv_with_bad_parameters_is_a_400(viewer_client):
    factories.GpuStatFactory()
    response = viewer_client.get(CSV_URL, {"range": "forever"})
    assert response.status_code == 400 and "Cannot export" in response.content.decode()
    assert viewer_client.get(CSV_URL).status_code == 200  # defaults: first GPU, 1 h


def test_gpu_page_query_count_does_not_grow_with_samples(viewer_client, django_assert_num_queries):
    status()
    now = timezone.now()
    for i in range(50):
        factories.GpuStatFactory(host="gpu-host-1", gpu_index=i % 2, recorded_at=now - dt.timedelta(seconds=30 * i))
    # session, user, groups, sampler statuses, latest sample per GPU, the bucketed history
    with django_assert_num_queries(6):
        assert viewer_client.get(URL, {"range": "24h"}).status_code == 200


def test_chart_line_breaks_where_sampling_stopped():
    now = timezone.now()
    recent = [now - dt.timedelta(seconds=s) for s in range(0, 600, 5)]
    older = [now - dt.timedelta(minutes=30, seconds=s) for s in range(0, 600, 5)]  # 20-minute outage between
    GpuStat.objects.bulk_create(factories.GpuStatFactory.build(recorded_at=t) for t in recent + older)
    svg = line_chart(history("localhost", 0, "1h", now), "Utilisation", "%", [("GPU", "gpu_utilization")], y_max=100)
    assert svg.count("<polyline") == 2


def test_chart_text_is_escaped():
    hist = history("localhost", 0, "1h")
    svg = line_chart(hist, "<b>title</b>", "<u>", [("<i>", "gpu_utilization")])
    assert "<b>" not in svg and "&lt;b&gt;title&lt;/b&gt;" in svg and "&lt;i&gt;" in svg
    assert "No samples in this range" in svg
