"""Typed readers for environment settings.

Each helper fails loudly with one readable line (ImproperlyConfigured) instead of
letting a typo turn into a silently wrong default.
"""

from __future__ import annotations

import os
import zoneinfo

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, min_value: int | None = None, max_value: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if min_value is not None and value < min_value:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {min_value}.")
    if max_value is not None and value > max_value:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum of {max_value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_timezone(name: str, default: str) -> str:
    raw = os.environ.get(name, default).strip()
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an IANA time zone (e.g. Europe/Berlin, UTC).") from None
    return raw


def env_database_url(name: str) -> dict | None:
    """Parse DATABASE_URL with dj-database-url; only PostgreSQL is accepted."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    import dj_database_url

    if not raw.startswith(("postgres://", "postgresql://", "pgsql://")):
        raise ImproperlyConfigured(
            f"{name} must be a PostgreSQL URL such as postgresql://user:pass@host:5432/dbname (got scheme {raw.split(':', 1)[0]!r})."
        )
    try:
        config = dj_database_url.parse(raw)
    except Exception as exc:  # dj-database-url raises several types on garbage
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} has no database name (add /dbname to the URL).")
    return config
