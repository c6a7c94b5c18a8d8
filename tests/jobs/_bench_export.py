import resource
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from jobs.services import exports

pytestmark = pytest.mark.django_db(transaction=True)

N = 300_000


def test_bench(settings, capsys):
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO cameras (id, name, folder_path, status, created_at) VALUES ('cam', 'Cam', '', 'online', now())"
        )
        cur.execute(
            "INSERT INTO events (camera_id, started_at, ended_at, risk_score, risk_level, summary, reasoning, object_types, reviewed) "
            "SELECT 'cam', now() - (g || ' seconds')::interval, NULL, g %% 100, 'low', 'A person walked past the door, carrying a box ' || g, "
            "'Reasoning text that is moderately long to look like an LLM explanation of the risk ' || g, 'person', false "
            "FROM generate_series(1, %s) g",
            [N],
        )
    sql, params = exports.copy_sql("events", {}, "csv")
    t = time.perf_counter()
    n = 0
    with connection.connection.cursor() as cur, cur.copy(sql, params) as copy:
        for _ in copy:
            n += 1
    raw = time.perf_counter() - t
    from jobs.models import ExportJob

    for fmt in ["csv", "zip", "json", "xlsx"]:
        if fmt == "xlsx":
            continue
        export = ExportJob.objects.create(export_type="events", export_format=fmt, filter_params="{}")
        p = exports._Progress(None, N, timezone.now())
        t = time.perf_counter()
        exports.write_export_file(export, Path(settings.EXPORT_DIR) / f"x.{fmt}", p)
        dt_ = time.perf_counter() - t
        with capsys.disabled():
            print(
                f"\n{fmt}: {N / dt_:,.0f} rows/s (raw COPY {n / raw:,.0f} rows/s) ratio {raw / dt_:.2f}; maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
            )
