"""Schedule timing (pure): ISO-8601 intervals beside cron expressions, and the next run."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.schedules import timing

T = dt.datetime(2026, 7, 1, 5, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("text,step", [
    ("PT6H", dt.timedelta(hours=6)), ("pt6h", dt.timedelta(hours=6)), ("P1D", dt.timedelta(days=1)),
    ("P1W", dt.timedelta(weeks=1)), ("P1DT2H30M", dt.timedelta(days=1, hours=2, minutes=30)),
    ("PT300S", dt.timedelta(minutes=5)),
])
def test_intervals_of_fixed_length_parse(text, step):
    assert timing.parse_interval(text) == step


@pytest.mark.parametrize("text,message", [
    ("P1M", "invalid interval 'P1M'"),  # a month is not a fixed length: use a cron
    ("PT", "invalid interval"), ("P", "invalid interval"), ("P1DT", "invalid interval"), ("PT6X", "invalid interval"),
    ("PT1M", "shorter than the minimum of 5 minutes"),
])
def test_other_intervals_are_refused_with_the_reason(text, message):
    with pytest.raises(timing.ScheduleError, match=message):
        timing.parse_interval(text)


def test_interval_ticks_count_from_the_anchor_and_the_next_run_follows():
    ticks = timing.interval_ticks("PT6H", T, T, T + dt.timedelta(hours=13))
    assert ticks == [T + dt.timedelta(hours=6), T + dt.timedelta(hours=12)]
    # after a tick already recorded: only the later ones
    assert timing.interval_ticks("PT6H", T, T + dt.timedelta(hours=6), T + dt.timedelta(hours=13)) == ticks[1:]
    assert timing.next_tick(cron=None, every="PT6H", timezone="UTC", anchor=T, after=T) == T + dt.timedelta(hours=6)
    assert timing.next_tick(cron=None, every="PT6H", timezone="UTC", anchor=T,
                            after=T + dt.timedelta(hours=6)) == T + dt.timedelta(hours=12)


def test_next_cron_tick_is_wall_clock_time_in_the_zone():
    # 06:00 in Berlin in July is 04:00 UTC; at 05:00 UTC the next one is the next day's
    nxt = timing.next_tick(cron="0 6 * * *", every=None, timezone="Europe/Berlin", anchor=T, after=T)
    assert nxt == dt.datetime(2026, 7, 2, 4, 0, tzinfo=dt.UTC)
