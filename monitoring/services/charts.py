"""GPU history: bucketed rows from SQL, drawn as server-side SVG (no JavaScript, no build step)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from monitoring.forms import GPU_RANGES

WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 24
MIN_GAP = dt.timedelta(seconds=90)
COLOURS = ["#60a5fa", "#f59e0b", "#34d399", "#f472b6"]


@dataclass
class History:
    host: str
    gpu_index: int
    range_key: str
    start: dt.datetime
    end: dt.datetime
    width: dt.timedelta
    rows: list[dict]

    @property
    def width_label(self) -> str:
        seconds = int(self.width.total_seconds())
        if seconds % 3600 == 0:
            return f"{seconds // 3600} h"
        if seconds % 60 == 0:
            return f"{seconds // 60} min"
        return f"{seconds} s"


def history(host: str, gpu_index: int, range_key: str, now: dt.datetime | None = None) -> History:
    """One query: the bucket averages of one GPU over the range.

    Buckets of whole minutes (6 h and longer) come from the per-minute rollup, so
    the cost follows the number of minutes in the range whatever the sampling
    rate; 30-second buckets (1 h) from the raw samples (a range of
    idx_gpu_stats_gpu_recorded_at). Both give the same rows.
    """
    from monitoring.models import GpuStat
    from monitoring.services import rollup

    _, span, width = GPU_RANGES[range_key]
    now = now or timezone.now()
    # Buckets aligned to the epoch so a reload shows the same buckets; the range ends
    # at the end of the current bucket so the newest samples are in.
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    end = epoch + ((now - epoch) // width + 1) * width
    start = end - span
    if rollup.serves(width):
        rows = rollup.chart(host, gpu_index, start, end, width)
    else:
        rows = list(GpuStat.objects.for_gpu(host, gpu_index).between(start, end).bucketed(width, epoch))
    return History(host, gpu_index, range_key, start, end, width, rows)


# --- charts ------------------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        nice = step * 10**exponent
        if nice >= value:
            return nice
    return 10 ** (exponent + 1)


def _fmt_number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _fmt_time(when: dt.datetime, span: dt.timedelta) -> str:
    local = timezone.localtime(when)
    return local.strftime("%H:%M") if span <= dt.timedelta(days=1) else local.strftime("%d %b %H:%M")


def line_chart(
    hist: History,
    title: str,
    unit: str,
    series: list[tuple[str, str]],
    *,
    y_max: float | None = None,
    limit_field: str | None = None,
) -> SafeString:
    """An SVG line chart of `series` ([(label, row key)]) over the history's range.

    A bucket with no samples breaks the line instead of drawing a straight line
    across the gap (the worker was down, the GPU was gone).
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = (hist.end - hist.start).total_seconds()
    values = [row[key] for row in hist.rows for _, key in series if row.get(key) is not None]
    limit = None
    if limit_field:
        limits = [row[limit_field] for row in hist.rows if row.get(limit_field)]
        limit = max(limits) if limits else None
    top = y_max if y_max is not None else _nice_max(max(values + ([limit] if limit else []) or [0]) * 1.05)

    def x(when: dt.datetime) -> float:
        return LEFT + plot_w * max(0.0, min(1.0, (when - hist.start).total_seconds() / span))

    def y(value: float) -> float:
        return TOP + plot_h * (1 - max(0.0, min(1.0, value / top)))

    parts = [
        f'<svg class="gpu-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0, 0.5, 1):
        gy = TOP + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="#334155" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 4}" y="{gy + 4:.1f}" text-anchor="end" font-size="11" fill="#94a3b8">'
            f"{escape(_fmt_number(top * frac))}{escape(unit) if frac == 1 else ''}</text>"
        )
    span_td = hist.end - hist.start
    for frac, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):
        when = hist.start + span_td * frac
        parts.append(
            f'<text x="{LEFT + plot_w * frac:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" font-size="11" fill="#94a3b8">'
            f"{escape(_fmt_time(when, span_td))}</text>"
        )
    if limit:
        ly = y(limit)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#ef4444" stroke-width="1" stroke-dasharray="4 3"/>'
        )
    # A line is broken only where samples really stopped: longer than a bucket and a half,
    # than a few sampling intervals, and than the up-to-a-minute pause between two
    # scheduled sampler runs.
    gap = max(hist.width * 1.5, dt.timedelta(seconds=2.5 * settings.GPU_SAMPLE_INTERVAL), MIN_GAP)
    for i, (_label, key) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        segments: list[list[tuple[float, float]]] = []
        previous = None
        for row in hist.rows:
            value = row.get(key)
            if value is None:
                previous = None
                continue
            point = (x(row["bucket"] + hist.width / 2), y(value))
            if previous is None or row["bucket"] - previous > gap:
                segments.append([])
            segments[-1].append(point)
            previous = row["bucket"]
        for segment in segments:
            if len(segment) == 1:
                px, py = segment[0]
                parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="1.8" fill="{colour}"/>')
            else:
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in segment)
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}"/>')
    legend_x = LEFT + 4
    for i, (label, _) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<rect x="{legend_x}" y="2" width="10" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="9" font-size="10" fill="#cbd5e1">{escape(label)}</text>')
        legend_x += 14 + 7 * len(label) + 12
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" font-size="12" fill="#94a3b8">'
            "No samples in this range</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text went through escape()


def charts_for(hist: History) -> list[dict]:
    return [
        {
            "title": "Utilisation",
            "svg": line_chart(
                hist,
                "Utilisation (%)",
                "%",
                [("GPU", "gpu_utilization"), ("Memory bus", "memory_bandwidth_utilization")],
                y_max=100,
            ),
        },
        {
            "title": "Memory used",
            "svg": line_chart(hist, "Memory used (MB)", " MB", [("Used", "memory_used")], limit_field="memory_total"),
        },
        {
            "title": "Temperature",
            "svg": line_chart(
                hist, "Temperature (°C)", " °C", [("Average", "temperature"), ("Peak", "temperature_max")]
            ),
        },
        {
            "title": "Power",
            "svg": line_chart(hist, "Power (W)", " W", [("Draw", "power_usage")], limit_field="power_limit"),
        },
        {
            "title": "Inference",
            "svg": line_chart(hist, "Inference (frames/s)", "", [("Detections/s", "inference_fps")]),
        },
    ]


# --- CSV ------------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    ("bucket_start", "bucket"),
    ("samples", "samples"),
    ("gpu_utilization_pct", "gpu_utilization"),
    ("memory_bandwidth_utilization_pct", "memory_bandwidth_utilization"),
    ("memory_used_mb", "memory_used"),
    ("memory_total_mb", "memory_total"),
    ("temperature_c", "temperature"),
    ("temperature_max_c", "temperature_max"),
    ("power_w", "power_usage"),
    ("power_limit_w", "power_limit"),
    ("sm_clock_mhz", "sm_clock"),
    ("memory_clock_mhz", "memory_clock"),
    ("fan_speed_pct", "fan_speed"),
    ("inference_fps", "inference_fps"),
    ("pcie_tx_kb_s", "pcie_tx_throughput"),
    ("pcie_rx_kb_s", "pcie_rx_throughput"),
    ("encoder_utilization_pct", "encoder_utilization"),
    ("decoder_utilization_pct", "decoder_utilization"),
]


def _csv_text(value: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def history_csv(hist: History) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["host", "gpu_index", *(name for name, _ in CSV_COLUMNS)])
    for row in hist.rows:
        cells = [_csv_text(hist.host), hist.gpu_index]
        for _, key in CSV_COLUMNS:
            value = row.get(key)
            if key == "bucket":
                value = value.isoformat()
            elif isinstance(value, float):
                value = round(value, 3)
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()
