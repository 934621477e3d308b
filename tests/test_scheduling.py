"""Schedules with crontab semantics on top of APScheduler 3's triggers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.config import ScheduleSettings
from monitor.scheduling import build_trigger, crontab_days, schedule_interval

SUNDAY = datetime(2026, 11, 29, tzinfo=UTC)  # a Sunday, 00:00


def next_fire(cron: str, after: datetime = SUNDAY) -> datetime:
    fire: datetime | None = build_trigger(ScheduleSettings(cron=cron)).get_next_fire_time(
        None, after
    )
    assert fire is not None
    return fire


class TestCrontabSemantics:
    @pytest.mark.parametrize(
        ("cron", "weekday"),
        [
            ("0 9 * * 0", "Sunday"),
            ("0 9 * * 7", "Sunday"),
            ("0 9 * * 1", "Monday"),
            ("0 9 * * 5", "Friday"),
            ("0 9 * * 6", "Saturday"),
            ("0 9 * * sat", "Saturday"),
            ("0 9 * * 2-4", "Tuesday"),
        ],
    )
    def test_day_of_week_numbers_follow_crontab(self, cron: str, weekday: str) -> None:
        """0 and 7 are Sunday, 1 is Monday, as in crontab (APScheduler alone counts 0=Monday)."""
        assert next_fire(cron).strftime("%A") == weekday

    @pytest.mark.parametrize(
        ("field", "days"),
        [
            ("1-5", "mon,tue,wed,thu,fri"),
            ("*/2", "sun,tue,thu,sat"),
            ("1-7", "sun,mon,tue,wed,thu,fri,sat"),
            ("0,6", "sun,sat"),
            ("mon-wed", "mon,tue,wed"),
        ],
    )
    def test_day_fields_translate_to_names(self, field: str, days: str) -> None:
        """Ranges, steps and lists become explicit day names."""
        assert crontab_days(field) == days

    def test_day_of_month_or_day_of_week(self) -> None:
        """With both restricted, crontab fires when either matches (not both)."""
        fire = next_fire("0 9 15 * 1")  # the 15th or any Monday
        assert fire == datetime(2026, 11, 30, 9, tzinfo=UTC)  # Monday comes first

    @pytest.mark.parametrize(
        ("cron", "message"),
        [
            ("0 25 * * *", "hour field '25'"),
            ("0 9 * * 8", "day of week field '8'"),
            ("61 * * * *", "minute field '61'"),
            ("0 9 * 13 *", "month field '13'"),
        ],
    )
    def test_bad_fields_are_named(self, cron: str, message: str) -> None:
        """An invalid cron names the field at fault."""
        with pytest.raises(ValueError, match=message):
            build_trigger(ScheduleSettings(cron=cron))

    def test_interval_of_cron_and_every(self) -> None:
        """The exported schedule interval is the gap between two fire times."""
        assert schedule_interval(ScheduleSettings(cron="*/30 * * * *"), SUNDAY) == 1800
        assert schedule_interval(ScheduleSettings(every=900), SUNDAY) == 900
        weekdays = ScheduleSettings(cron="0 9 * * 1-5")
        assert schedule_interval(weekdays, SUNDAY) == 86400  # Monday 9:00 to Tuesday 9:00
