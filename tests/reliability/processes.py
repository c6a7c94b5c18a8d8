"""Child processes in their own process groups (pytest-free, shared by the tests and the soak).

Every child runs in its own session, so one `killpg` reaches a service and every
process it forked — exactly what `kill -9` of a service does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; WaitTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def database_url(settings_dict: dict) -> str:
    """DATABASE_URL for a child process, from Django DATABASES settings (socket folders percent-encoded)."""
    host = settings_dict.get("HOST") or ""
    host = quote(host, safe="") if host.startswith("/") else host
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{settings_dict['NAME']}"


def base_env(**overrides) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(DJANGO_SETTINGS_MODULE="dashboard.settings", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Proc:
    """A child process in its own process group, its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed when the process is stopped
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
                raise WaitTimeout(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-3000:]}")
            return text in self.output()

        wait_until(seen, timeout, 0.1, f"{self.name} to print {text!r}")

    def family(self) -> list[int]:
        """This process and all of its descendants."""
        import psutil

        try:
            me = psutil.Process(self.pid)
            return [self.pid, *(p.pid for p in me.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self, reaped_within: float = 15) -> None:
        """kill -9 of the whole process group, returning once the processes are gone from the process table.

        Orphaned workers are zombies until init reaps them (here up to ~2 s), and a
        zombie still answers `kill(pid, 0)` as if it were alive.
        """
        family = self.family()
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self._log.close()
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in family), reaped_within, 0.05,
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
