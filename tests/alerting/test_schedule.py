import datetime as dt
import zoneinfo

import pytest

from alerting.services.schedule import ScheduleError, is_active, parse_schedule

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def at(y, mo, d, h, mi, s=0, tz=BERLIN):
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=tz)


# 2026-03-06 is a Friday (weekday 4).
FRIDAY_NIGHT = {"days": [4], "start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"}
OFFICE = {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00", "timezone": "Europe/Berlin"}


def test_no_schedule_is_always_active():
    assert is_active(None, at(2026, 3, 6, 3, 0))
    assert is_active({}, at(2026, 3, 6, 3, 0))


@pytest.mark.parametrize(
    "when, expected",
    [
        (at(2026, 3, 6, 8, 59, 59), False),
        (at(2026, 3, 6, 9, 0, 0), True),  # start inclusive
        (at(2026, 3, 6, 17, 0, 0), True),  # end inclusive…
        (at(2026, 3, 6, 17, 0, 59), True),  # …for the whole end minute
        (at(2026, 3, 6, 17, 1, 0), False),
        (at(2026, 3, 7, 12, 0), False),  # Saturday
    ],
)
def test_day_window_ends_are_inclusive_at_minute_resolution(when, expected):
    assert is_active(OFFICE, when) is expected


@pytest.mark.parametrize(
    "when, expected",
    [
        (at(2026, 3, 6, 21, 59), False),
        (at(2026, 3, 6, 22, 0), True),  # Friday evening: the window started Friday
        (at(2026, 3, 6, 23, 59, 59), True),
        (at(2026, 3, 7, 0, 0), True),  # Saturday morning still belongs to Friday's window
        (at(2026, 3, 7, 6, 0, 30), True),  # end inclusive
        (at(2026, 3, 7, 6, 1), False),
        (at(2026, 3, 6, 3, 0), False),  # Friday early morning belongs to Thursday's window (not scheduled)
        (at(2026, 3, 7, 22, 30), False),  # Saturday evening: Saturday not in days
    ],
)
def test_overnight_window_counts_the_day_it_started(when, expected):
    assert is_active(FRIDAY_NIGHT, when) is expected


def test_overnight_window_wraps_sunday_to_monday():
    sunday_night = {"days": [6], "start": "23:00", "end": "01:00", "timezone": "UTC"}
    assert is_active(sunday_night, dt.datetime(2026, 3, 9, 0, 30, tzinfo=UTC))  # Monday 00:30
    assert not is_active(sunday_night, dt.datetime(2026, 3, 10, 0, 30, tzinfo=UTC))  # Tuesday 00:30


def test_weekday_is_taken_in_the_schedule_timezone():
    # 23:30 UTC on Thursday 2026-03-05 is 00:30 Friday in Berlin and 18:30 Thursday in New York.
    when = dt.datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
    fri_berlin = {"days": [4], "start": "00:00", "end": "01:00", "timezone": "Europe/Berlin"}
    fri_ny = {"days": [4], "start": "00:00", "end": "01:00", "timezone": "America/New_York"}
    thu_ny = {"days": [3], "start": "18:00", "end": "19:00", "timezone": "America/New_York"}
    assert is_active(fri_berlin, when)
    assert not is_active(fri_ny, when)
    assert is_active(thu_ny, when)


def test_window_follows_daylight_saving_time():
    # Berlin switched to summer time on 2026-03-29: 07:30 UTC is 09:30 local after, 08:30 before.
    sched = {"days": list(range(7)), "start": "09:00", "end": "10:00", "timezone": "Europe/Berlin"}
    assert not is_active(sched, dt.datetime(2026, 3, 28, 7, 30, tzinfo=UTC))
    assert is_active(sched, dt.datetime(2026, 3, 30, 7, 30, tzinfo=UTC))


def test_missing_days_means_every_day_and_missing_times_the_whole_day():
    assert is_active({"timezone": "UTC"}, dt.datetime(2026, 3, 8, 23, 59, tzinfo=UTC))
    assert is_active({"days": [6], "timezone": "UTC"}, dt.datetime(2026, 3, 8, 0, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"days": [7], "start": "01:00", "end": "02:00"}, "days"),
        ({"days": [], "start": "01:00", "end": "02:00"}, "days"),
        ({"days": [1], "start": "25:00", "end": "02:00"}, "start"),
        ({"days": [1], "start": "01:00", "end": "2:00"}, "end"),
        ({"days": [1], "start": "01:00", "end": "02:00", "timezone": "Mars/Olympus"}, "timezone"),
        ("weekdays", "schedule"),
        ({"start": 5, "end": "02:00"}, "start"),
        ({"start": "01:00", "end": 0}, "end"),
        ({"days": [True], "start": "01:00"}, "days"),
        ({"timezone": 3}, "timezone"),
    ],
)
def test_bad_schedules_name_the_field(raw, field):
    with pytest.raises(ScheduleError) as exc:
        parse_schedule(raw)
    assert exc.value.field == field


def test_describe_reads_well():
    assert parse_schedule(FRIDAY_NIGHT).describe() == "Fri 22:00–06:00 (Europe/Berlin)"
