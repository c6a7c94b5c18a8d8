"""Rule schedules: when a rule may fire.

A schedule is ``{"days": [0..6], "start": "HH:MM", "end": "HH:MM", "timezone": "Europe/Berlin"}``
with 0 = Monday. ``None`` (or ``{}``) means "always".

Semantics (chosen once, tested in tests/alerting/test_schedule.py):

* Times are compared in the schedule's IANA timezone, at minute resolution, and
  **both ends are inclusive**: 09:00–17:00 covers 09:00:00 through 17:00:59.
* ``end < start`` is an overnight window, e.g. 22:00–06:00. The day that counts
  is the day the window **started**: with days = [4] (Friday), 22:00–06:00 covers
  Friday 22:00 to Saturday 06:00:59, and not Friday 00:00–06:00.
* ``start == end`` is rejected by the rule form; if such a schedule reaches the
  engine anyway it is a one-minute window (consistent with inclusive ends).
* Missing ``days`` means every day; missing ``start``/``end`` means the whole day;
  missing ``timezone`` means the site's TIME_ZONE.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ALL_DAYS = frozenset(range(7))


class ScheduleError(ValueError):
    """A schedule that cannot be evaluated; the message names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_hhmm(value: str, field: str) -> int:
    """'HH:MM' → minutes since midnight."""
    m = _HHMM.match(value) if isinstance(value, str) else None
    if not m:
        raise ScheduleError(field, f"Use the 24-hour form HH:MM, e.g. 07:30 (got {value!r}).")
    return int(m.group(1)) * 60 + int(m.group(2))


@lru_cache(maxsize=256)
def get_zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError("timezone", f"Unknown timezone {name!r}; use an IANA name such as Europe/Berlin.") from None


@dataclass(frozen=True)
class Schedule:
    days: frozenset[int]
    start: int  # minutes since midnight
    end: int
    tz_name: str

    @property
    def overnight(self) -> bool:
        return self.end < self.start

    def describe(self) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = "every day" if self.days == ALL_DAYS else ", ".join(names[d] for d in sorted(self.days))
        return f"{days} {self.start // 60:02d}:{self.start % 60:02d}–{self.end // 60:02d}:{self.end % 60:02d} ({self.tz_name})"

    def is_active(self, when: dt.datetime) -> bool:
        """True when the aware datetime `when` falls inside the window (see the module docstring)."""
        local = when.astimezone(get_zone(self.tz_name))
        minute = local.hour * 60 + local.minute
        day = local.weekday()
        if self.start <= self.end:
            return day in self.days and self.start <= minute <= self.end
        # Overnight: the evening part belongs to today, the morning part to yesterday's window.
        if minute >= self.start:
            return day in self.days
        if minute <= self.end:
            return (day - 1) % 7 in self.days
        return False


def parse_schedule(raw) -> Schedule | None:
    """Validate a stored schedule; None when the rule has no schedule. Raises ScheduleError."""
    if raw in (None, {}, ""):
        return None
    if not isinstance(raw, dict):
        raise ScheduleError("schedule", "A schedule must be an object with days, start, end and timezone.")
    days_raw = raw.get("days")
    if days_raw is None:
        days = ALL_DAYS
    else:
        if not isinstance(days_raw, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days_raw
        ):
            raise ScheduleError("days", "Days must be a list of numbers 0 (Monday) to 6 (Sunday).")
        if not days_raw:
            raise ScheduleError("days", "Pick at least one day.")
        days = frozenset(days_raw)
    start = parse_hhmm(raw["start"], "start") if raw.get("start") not in (None, "") else 0
    end = parse_hhmm(raw["end"], "end") if raw.get("end") not in (None, "") else 23 * 60 + 59
    tz_name = raw.get("timezone") or settings.TIME_ZONE
    if not isinstance(tz_name, str):
        raise ScheduleError("timezone", "The timezone must be an IANA name such as Europe/Berlin.")
    get_zone(tz_name)
    return Schedule(days=days, start=start, end=end, tz_name=tz_name)


def is_active(raw, when: dt.datetime) -> bool:
    schedule = parse_schedule(raw)
    return True if schedule is None else schedule.is_active(when)
