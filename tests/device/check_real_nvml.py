"""Check the GPU sampler against a real NVIDIA driver (not part of `make test`: CI has no GPU).

    python tests/device/check_real_nvml.py [--seconds 10] [--load]

Run on a host with an NVIDIA GPU, from the repository root, with the project's
packages importable. It

1. reads every GPU once through the real pynvml, without a database, and prints
   each field the sampler stores, which fields the driver reports as not
   supported and which raised (the same reading code as production:
   GpuSampler.sample(), with inference_fps stubbed since no database is open yet);
2. checks every reading against the gpu_stats CHECK rules (GpuStat.clean_fields()
   and clean(), which repeat the database's rules);
3. with a database (DATABASE_URL, or the embedded PostgreSQL under var/), migrates,
   samples once a second for --seconds through sample_safely() as the worker does
   (optionally while a torch matmul loop keeps the GPU busy: --load), then reads the
   stored rows, the per-minute rollup and the GPU page (/gpu/) as an operator.

Exit status 1 when any check fails. Prints one JSON document at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# The point is the real driver; --fake (a dry run on a machine without a GPU) uses the fake.
if "--fake" not in sys.argv:
    os.environ.pop("WATCHPOST_FAKE_NVML", None)
else:
    os.environ.setdefault("WATCHPOST_FAKE_NVML", "2")

FIELDS = (
    "gpu_index", "gpu_uuid", "gpu_name", "gpu_utilization", "memory_utilization", "memory_used", "memory_total",
    "temperature", "temperature_slowdown", "fan_speed", "power_usage", "power_limit", "sm_clock", "sm_clock_max",
    "memory_clock", "memory_clock_max", "pstate", "throttle_reasons", "pcie_tx", "pcie_rx", "pcie_replay_counter",
    "pcie_link_gen", "pcie_link_width", "bar1_used", "encoder_utilization", "decoder_utilization",
)  # fmt: skip


def _row(stat) -> dict:
    out = {}
    for name in FIELDS:
        if hasattr(stat, name):
            value = getattr(stat, name)
            out[name] = value if isinstance(value, (int, float, str, type(None), list)) else str(value)
    return out


def _gpu_load(seconds: float):
    """A background matmul loop so utilisation, power and clocks move during the sampling."""
    code = (
        "import time, torch\n"
        f"a = torch.randn(8192, 8192, device='cuda'); end = time.time() + {seconds:f}\n"
        "while time.time() < end:\n"
        "    (a @ a).sum().item()\n"
    )
    try:
        return subprocess.Popen([sys.executable, "-c", code])
    except OSError:
        return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--no-db", action="store_true")
    ap.add_argument("--json", help="also write the report to this file")
    ap.add_argument("--fake", action="store_true", help="dry run with the fake NVML (no GPU needed)")
    args = ap.parse_args()

    import django

    django.setup()
    import pynvml
    from django.core.exceptions import ValidationError

    from monitoring.services import sampler as sampler_mod

    report: dict = {"checks": {}, "failures": []}

    def check(name: str, ok: bool, detail=None):
        report["checks"][name] = {"ok": bool(ok), "detail": detail}
        if not ok:
            report["failures"].append(name)

    # 1. One reading, no database.
    real_fps = sampler_mod.inference_fps
    sampler_mod.inference_fps = lambda now: 0.0
    try:
        nvml = sampler_mod.nvml_module() if args.fake else pynvml
        sampler = sampler_mod.GpuSampler(nvml, host="device-check")
        check("real pynvml is used", args.fake or sampler.nvml is pynvml)
        result = sampler.sample()
    finally:
        sampler_mod.inference_fps = real_fps
    report["driver_version"] = result.driver_version
    report["available"] = result.available
    report["reason"] = result.reason
    report["readings"] = [_row(s) for s in result.rows]
    report["details"] = result.details
    check("NVML finds at least one GPU", result.available and result.rows, result.reason)
    for stat in result.rows:
        gpu = f"GPU {stat.gpu_index}"
        for must in ("gpu_uuid", "gpu_name", "memory_total", "memory_used", "gpu_utilization", "temperature"):
            check(f"{gpu}: {must} read", getattr(stat, must, None) is not None, getattr(stat, must, None))
        try:
            stat.clean_fields(exclude=["id"])
            stat.clean()
            check(f"{gpu}: reading passes gpu_stats rules", True)
        except ValidationError as exc:
            check(f"{gpu}: reading passes gpu_stats rules", False, exc.message_dict)
        gd = next((d for d in result.details.get("gpus", []) if d.get("index") == stat.gpu_index), {})
        check(f"{gpu}: no NVML call raised (other than NotSupported)", not gd.get("errors"), gd.get("errors"))
    if args.no_db:
        return _finish(report, args)

    # 2. Through the database, as the worker does.
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from monitoring.models import GpuStat, SamplerStatus

    call_command("migrate", verbosity=0, interactive=False)
    call_command("ensure_roles", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # the pages use the hashed manifest
    host = "device-check"
    started = timezone.now()
    load = _gpu_load(args.seconds + 5) if args.load else None
    if load is not None:
        time.sleep(4)  # CUDA context start-up
    sampler = sampler_mod.GpuSampler(nvml, host=host)
    ticks, stored_results = 0, 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.seconds:
        tick = time.monotonic()
        if sampler_mod.sample_safely(sampler) is not None:
            stored_results += 1
        ticks += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    if load is not None:
        load.wait(timeout=60)
    rows = GpuStat.objects.filter(host=host, recorded_at__gte=started).order_by("recorded_at", "gpu_index")
    n_gpus = len(result.rows)
    check("every tick stored every GPU", rows.count() == ticks * n_gpus, {"ticks": ticks, "rows": rows.count()})
    status = SamplerStatus.objects.filter(host=host).first()
    check("sampler status says available", status is not None and status.available, getattr(status, "reason", None))
    series = list(rows.values("gpu_index", "recorded_at", "gpu_utilization", "power_usage", "temperature", "sm_clock"))
    report["stored_series"] = series
    if args.load:
        peak = max((r["gpu_utilization"] or 0) for r in series) if series else 0
        check("utilisation rises under load", peak >= 50, peak)
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="device-check-operator")
    from django.contrib.auth.models import Group

    from dashboard.permissions import OPERATORS

    user.groups.add(Group.objects.get(name=OPERATORS))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    page = client.get(reverse("monitoring:gpu"), {"range": "1h"})
    body = page.content.decode(errors="replace")
    check("GPU page renders", page.status_code == 200, page.status_code)
    names = {s.gpu_name for s in result.rows if s.gpu_name}
    check("GPU page names the GPU", all(n in body for n in names), sorted(names))
    overview = client.get("/", HTTP_HX_REQUEST="true")
    check("overview renders", overview.status_code == 200, overview.status_code)
    return _finish(report, args)


def _finish(report: dict, args) -> int:
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    print("FAILED: " + ", ".join(report["failures"]) if report["failures"] else "ALL CHECKS PASSED")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
