"""Real processes against a real database: a django-q2 cluster on the test database, process cleanup.

Every subprocess runs in its own session (process group), so one `killpg`
reaches the cluster and all of its workers, exactly like `kill -9` of a service;
the `procs` fixture kills whatever a test leaves running, pass or fail.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from tests.reliability.processes import PYTHON, ROOT, Proc, Procs, WaitTimeout, base_env, database_url, wait_until

__all__ = ["PYTHON", "ROOT", "Proc", "Procs", "child_env", "database_url", "wait_for"]


def child_env(**overrides) -> dict[str, str]:
    """Environment of a child Django process: test-mode settings, but a real (async) django-q2."""
    return base_env(
        # Simple static storage, MD5 hasher, no login lock-out; tasks are then made async below.
        WATCHPOST_TESTING="1",
        WATCHPOST_TASKS_SYNC="0",
        # django-q2 signs task packages with SECRET_KEY: the test process and its children must agree.
        SECRET_KEY=settings.SECRET_KEY,
        Q_WORKERS="1",
        **overrides,
    )


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """wait_until, failing the test (not erroring it) on timeout."""
    try:
        return wait_until(predicate, timeout, interval, message)
    except WaitTimeout as exc:
        pytest.fail(str(exc))


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
        try:
            proc.wait_for_output("running.", timeout=90)
        except WaitTimeout as exc:
            pytest.fail(str(exc))
        return proc

    return start


@pytest.fixture
def worker(start_worker):
    return start_worker()
