"""`manage.py runconsole` (what `make run` starts): a stop request stops the web server and the worker."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


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
    }
    port = _free_port()
    # As a shell's background job: SIGINT ignored on start, which runconsole must undo.
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runconsole", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    children = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(children) < 2:
            children = psutil.Process(proc.pid).children()
            time.sleep(0.5)
        assert len(children) >= 2, "web and worker did not start"
        time.sleep(2)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=40)
        assert "Stopped." in out
        gone, alive = psutil.wait_procs(children, timeout=5)
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
