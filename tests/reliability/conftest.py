"""Real processes against a real database: a django-q2 cluster on the test database, process cleanup.

Every subprocess runs in its own session (process group), so one `killpg`
reaches the cluster and all of its workers, exactly like `kill -9` of a service;
the `procs` fixture kills whatever a test leaves running, pass or fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def database_url(settings_dict: dict) -> str:
    """DATABASE_URL for a child process, so it uses the very database this test uses."""
    host = settings_dict.get("HOST") or ""
    host = quote(host, safe="") if host.startswith("/") else host
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{settings_dict['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    """Environment of a child Django process: test-mode settings, but a real (async) django-q2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        # Simple static storage, MD5 hasher, no login lock-out; tasks are then made async below.
        WATCHPOST_TESTING="1",
        WATCHPOST_TASKS_SYNC="0",
        # django-q2 signs task packages with SECRET_KEY: the test process and its children must agree.
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
        Q_WORKERS="1",
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


class Proc:
    """A child process in its own process group, its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_output(self, text: str, timeout: float) -> None:
        def seen():
            if not self.alive() and text not in self.output():
                pytest.fail(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}")
            return text in self.output()

        wait_for(seen, timeout, interval=0.1, message=f"{self.name} to print {text!r}")

    def descendants(self) -> list[int]:
        import psutil

        try:
            return [p.pid for p in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self, reaped_within: float = 15) -> None:
        """kill -9 of the whole process group (the service and every worker it forked).

        Returns once the processes are gone from the process table: orphaned workers
        are zombies until init reaps them (here up to ~2 s), and a zombie still
        answers `kill(pid, 0)` as if it were alive.
        """
        family = self.descendants()
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self._log.close()
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in family), reaped_within, 0.05,
                 f"the killed processes of {self.name} to be reaped")  # fmt: skip

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL if it does not stop in time; returns the exit code."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)  # stragglers of the group, even when the leader has exited
        code = self.popen.wait(timeout=30)
        self._log.close()
        return code


class Procs:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(self, name: str, args: list[str], env: dict) -> Proc:
        proc = Proc(name, args, env, self.log_dir)
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            proc.signal_group(signal.SIGKILL)
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            proc._log.close()


@pytest.fixture
def procs(tmp_path):
    manager = Procs(tmp_path)
    yield manager
    manager.kill_all()


@pytest.fixture
def file_dirs(settings, tmp_path):
    """Exports, backups and uploads under this test's tmp folder, the same for the test and its children."""
    dirs = {name: tmp_path / name.lower().removesuffix("_dir") for name in ("EXPORT_DIR", "BACKUP_DIR", "UPLOAD_DIR")}
    for name, path in dirs.items():
        path.mkdir()
        setattr(settings, name, path)
    return dirs


@pytest.fixture
def async_tasks(monkeypatch):
    """Hand tasks to the broker (the real cluster), not inline as tests normally do."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.fixture
def start_worker(transactional_db, file_dirs, async_tasks, procs, tmp_path):
    """Start a real `manage.py qcluster` (one worker process) on this test's database; call again to restart."""
    env = child_env(
        DATABASE_URL=database_url(connection.settings_dict),
        WATCHPOST_VAR_DIR=tmp_path / "var",
        **{name: str(path) for name, path in file_dirs.items()},
    )

    def start() -> Proc:
        proc = procs.start(f"qcluster-{len(procs.started)}", [PYTHON, "manage.py", "qcluster"], env)
        proc.wait_for_output("running.", timeout=90)
        return proc

    return start


@pytest.fixture
def worker(start_worker):
    return start_worker()
