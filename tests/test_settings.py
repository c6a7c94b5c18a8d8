"""Typed settings helpers and start-up errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard import env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("helper", "value", "message"),
    [
        (lambda: env.env_bool("X_FLAG"), "maybe", "not a boolean"),
        (lambda: env.env_int("X_NUM", 5), "five", "not an integer"),
        (lambda: env.env_int("X_NUM", 5, min_value=1, max_value=60), "0", "below the minimum"),
        (lambda: env.env_int("X_NUM", 5, min_value=1, max_value=60), "61", "above the maximum"),
        (lambda: env.env_timezone("X_TZ", "UTC"), "Mars/Olympus", "not an IANA time zone"),
        (lambda: env.env_database_url("X_DB"), "mysql://u@h/db", "must be a PostgreSQL URL"),
        (lambda: env.env_database_url("X_DB"), "postgresql://u@h:5432", "no database name"),
    ],
)
def test_bad_values_are_refused_with_a_readable_message(monkeypatch, helper, value, message):
    for name in ("X_FLAG", "X_NUM", "X_TZ", "X_DB"):
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        helper()


def test_good_values_are_parsed(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    monkeypatch.setenv("X_NUM", "12")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    monkeypatch.setenv("X_DB", "postgresql://me:pw@db.example:5433/watch")
    assert env.env_bool("X_FLAG") is True
    assert env.env_int("X_NUM", 5, min_value=1, max_value=60) == 12
    assert env.env_list("X_LIST", []) == ["a", "b", "c"]
    db = env.env_database_url("X_DB")
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == ("db.example", 5433, "watch", "me")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL must be a PostgreSQL URL"),
        ("GPU_SAMPLE_INTERVAL", "0", "GPU_SAMPLE_INTERVAL=0 is below the minimum of 1"),
        ("DEBUG", "perhaps", "DEBUG='perhaps' is not a boolean"),
    ],
)
def test_bad_setting_stops_start_up_with_one_line(variable, value, expected):
    environ = {**os.environ, variable: value}
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
