"""`manage.py sample_gpus --once`: one sample of every GPU, or the reason there is none.

Without --once it runs the sampler loop in the foreground until interrupted:
the way to sample a second GPU host whose workers share another host's broker.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from monitoring.services.sampler import GpuSampler, handover_wait, run_sampler, sample_safely


class Command(BaseCommand):
    help = "Sample every NVIDIA GPU on this host into gpu_stats (set WATCHPOST_FAKE_NVML=N for N fake GPUs)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Take one sample of every GPU and exit.")
        parser.add_argument(
            "--interval",
            type=int,
            default=None,
            help=f"Seconds between samples in loop mode (1-60, default GPU_SAMPLE_INTERVAL={settings.GPU_SAMPLE_INTERVAL}).",
        )

    def handle(self, *args, once=False, interval=None, **opts):
        if interval is not None and not 1 <= interval <= 60:
            raise CommandError("--interval must be between 1 and 60 seconds.")
        sampler = GpuSampler()
        if once:
            result = sample_safely(sampler)
            if result is None:
                self.stderr.write("The sample could not be stored; see the log above.")
                return
            if not result.available:
                self.stdout.write(f"No NVIDIA GPU detected on {result.host}: {result.reason}")
                return
            for stat in result.rows:
                self.stdout.write(
                    f"{result.host} GPU {stat.gpu_index} {stat.gpu_name or '?'}: "
                    f"{_fmt(stat.gpu_utilization, '%')} util, {_fmt(stat.memory_used, ' MB')}/{_fmt(stat.memory_total, ' MB')}, "
                    f"{_fmt(stat.temperature, ' °C')}, {_fmt(stat.power_usage, ' W')}"
                )
            self.stdout.write(self.style.SUCCESS(f"Stored {len(result.rows)} sample(s)."))
            return
        self.stdout.write(f"Sampling GPUs on {sampler.host} (Ctrl-C stops)…")
        try:
            while True:
                # Runs end when another sampler of this host (a scheduled run) asks for the
                # host lock; the loop then waits for its turn again.
                outcome = run_sampler(interval=interval, wait=handover_wait(interval), sampler=sampler)
                if outcome["skipped"]:
                    # Another sampler kept the lock, or the database is away (logged): wait a tick.
                    time.sleep(interval or settings.GPU_SAMPLE_INTERVAL)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")


def _fmt(value, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = round(value, 1)
    return f"{value}{unit}"
