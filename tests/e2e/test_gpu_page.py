"""Scenario 8: the GPU page shows the fake NVML's GPUs as cards and their history as SVG charts."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from monitoring.models import GpuStat
from monitoring.services.nvml_fake import FakeNVML
from monitoring.services.sampler import GpuSampler

pytestmark = pytest.mark.django_db(transaction=True)

# An SVG polyline of at least ten points: "x,y x,y ...".
POINTS = re.compile(r"^[\d.]+,[\d.]+( [\d.]+,[\d.]+){9,}$")


def test_gpu_cards_and_history_chart_from_fake_nvml_samples(page, login, operator):
    fake = FakeNVML.with_gpus(2)
    sampler = GpuSampler(nvml=fake, host="e2e-gpu-host")
    now = timezone.now()
    # A sample every 30 s for the last ten minutes (the newest now), utilisation climbing.
    for n in range(21):
        for i, gpu in enumerate(fake.gpus):
            gpu.utilization_gpu = 15 + 3 * n + 10 * i
        sampler.sample_and_store(now - dt.timedelta(seconds=30 * (20 - n)))
    assert GpuStat.objects.filter(host="e2e-gpu-host").count() == 42
    login(operator)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="GPU").click()
    expect(page.get_by_role("heading", name="GPU", exact=True)).to_be_visible()
    cards = page.locator("#gpu-cards article.gpu-card")
    expect(cards).to_have_count(2)
    first = cards.filter(has_text="#0 · e2e-gpu-host")
    expect(first.get_by_role("heading")).to_contain_text("NVIDIA GeForce RTX 4090")
    expect(first).to_contain_text("75%")  # the newest sample's utilisation
    expect(first).to_contain_text("6144 / 24564 MB")
    expect(cards.filter(has_text="#1 · e2e-gpu-host")).to_contain_text("85%")
    expect(page.locator(".gpu-hosts")).to_contain_text("e2e-gpu-host: 2 GPUs, driver 550.54.15")
    expect(page.locator(".gpu-none")).to_have_count(0)

    # History of the first GPU over the default hour: bucketed SVG charts with a data line.
    history = page.locator("#gpu-history")
    expect(history.locator(".gpu-ranges a.active")).to_have_text("1 hour")
    utilisation = history.get_by_role("img", name="Utilisation (%)")
    expect(utilisation).to_be_visible()
    expect(history.locator("svg.gpu-chart").nth(1)).to_be_visible()
    # One unbroken line through the samples (no "No samples in this range").
    expect(utilisation.locator("polyline").first).to_have_attribute("points", POINTS)
    expect(utilisation).not_to_contain_text("No samples in this range")

    # Another GPU and range: the history region is swapped by HTMX.
    page.get_by_label("GPU", exact=True).select_option("e2e-gpu-host:1")
    expect(page.locator("[id=gpu-history]").filter(has_text="e2e-gpu-host · GPU 1")).not_to_have_count(0)
    # Swapped, not nested: a second #gpu-history would keep polling GPU 0 and flip back to it.
    expect(page.locator("[id=gpu-history]")).to_have_count(1)
    expect(history).to_contain_text("e2e-gpu-host · GPU 1")
    history.get_by_role("link", name="6 hours").click()
    expect(history.locator(".gpu-ranges a.active")).to_have_text("6 hours")
    expect(history.locator("svg.gpu-chart").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"/gpu/\?(?=.*gpu=e2e-gpu-host%3A1)(?=.*range=6h)"))
