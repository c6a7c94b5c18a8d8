"""`manage.py runconsole` (what `make run` starts): a stop request stops the web server and the worker."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django_q.tasks import async_task

ROOT = Path(__file__).resolve().parents[1]
SAMPLER = "monitoring.tasks.sample_gpus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_request_stops_web_and_worker(signum, tmp_path):
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{settings['USER']}@/{settings['NAME']}?host={settings['HOST']}&port={settings['PORT']}",
        "WATCHPOST_VAR_DIR": str(tmp_path / "var"),
        # The same key signs the task this test queues for the console's worker.
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    port = _free_port()
    # As a shell's background job: SIGINT ignored on start, which runconsole must undo.
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runconsole", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    children = []
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(children) < 2:
            children = psutil.Process(proc.pid).children()
            time.sleep(0.5)
        assert len(children) >= 2, "web and worker did not start"
        # The GPU sampler's task runs for minutes: the stop must not wait for it. Queued
        # here (the schedule's first run comes only after django-q2's 30 s scheduler cycle).
        async_task(SAMPLER, sync=False)
        while time.monotonic() < deadline and not any("processing" in line and SAMPLER in line for line in lines):
            time.sleep(0.2)
        assert any(SAMPLER in line for line in lines), "".join(lines[-30:])
        time.sleep(1)
        members = [p for c in children for p in [c, *c.children(recursive=True)]]
        started = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=40)
        took = time.monotonic() - started
        reader.join(timeout=5)
        out = "".join(lines)
        assert "Stopped." in out
        # Both stopped on their own, in order (the worker after its sampler handed over),
        # not killed at the deadline.
        assert "did not stop in time" not in out and "has stopped" in out, out[-3000:]
        assert took < 15, f"stopping took {took:.1f} s"
        gone, alive = psutil.wait_procs(members, timeout=5)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        leftovers = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if proc.poll() is None:
            proc.kill()
        for child in leftovers + children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
