"""Every date and time parser of the forms is total: Hypothesis over the whole range of `datetime`
(and of dates, zones and typed strings) finds no exception, and what parses is within bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Availability
from bot.workflow import compute_slots
from modals import forms
from tests.conftest import request_form

aware = st.datetimes(timezones=st.timezones())
zones = st.timezones().map(lambda z: z if isinstance(z, ZoneInfo) else ZoneInfo("UTC"))
# What a person (or a forged payload) may type where a time goes.
typed_times = st.one_of(
    st.text(max_size=60),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M") if d.year >= 1000 else d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    aware.map(lambda d: d.isoformat()),
    st.integers(min_value=-(10**12), max_value=10**13).map(str),
)
typed_dates = st.one_of(st.text(max_size=30), st.dates().map(date.isoformat))


@given(typed_dates)
def test_parse_date_is_total(text: str) -> None:
    parsed = forms.parse_date(text)
    assert parsed is None or isinstance(parsed, date)


@given(typed_times, zones)
def test_parse_local_datetime_is_total(text: str, tz: ZoneInfo) -> None:
    parsed = forms.parse_local_datetime(text, tz)
    assert parsed is None or parsed.tzinfo is not None


@given(typed_dates, typed_dates, st.dates())
def test_request_dates_are_bounded_for_any_today(start: str, end: str, today: date) -> None:
    result = forms.parse_request(request_form(available_from=start, available_until=end), today=today)
    if isinstance(result, forms.RequestInput):
        assert today <= result.available_from <= today + timedelta(days=forms.HORIZON_DAYS)
        assert 0 <= (result.available_until - result.available_from).days <= forms.MAX_RANGE_DAYS


@given(typed_times, typed_times, zones, aware)
def test_schedule_parser_is_total_for_any_now(typed: str, slot: str, tz: ZoneInfo, now: datetime) -> None:
    result = forms.parse_schedule({"starts_at": typed, "slot": slot}, tz=tz, now=now)
    if isinstance(result, forms.ScheduleInput):
        assert now < result.starts_at
        assert result.starts_at + timedelta(hours=1) > result.starts_at  # its end is computable


@given(
    st.text(max_size=120), st.one_of(st.text(max_size=70), st.sampled_from(["America", "UTC", "Etc/GMT+5"]))
)
def test_availability_parser_is_total(windows: str, tz: str) -> None:
    result = forms.parse_availability({"windows": windows, "timezone": tz})
    assert isinstance(result, (list, dict))


@given(st.one_of(st.none(), st.text(max_size=5)))
def test_rating_is_one_ascii_digit(text: str | None) -> None:
    rating = forms.parse_rating(text)
    if rating is not None:
        assert (text or "").strip() in {"1", "2", "3", "4", "5"}


@given(
    st.dates(min_value=date(1, 1, 8), max_value=date.max - timedelta(days=forms.MAX_RANGE_DAYS + 2)),
    st.integers(min_value=0, max_value=forms.MAX_RANGE_DAYS),
    st.sampled_from([30, 45, 60]),
    zones,
)
def test_slots_for_any_accepted_dates(start: date, span: int, minutes: int, tz: ZoneInfo) -> None:
    """The suggested slots inside any student's dates a request can have (any start up to the
    horizon, from the first years of the calendar on), in any zone."""
    windows = [Availability(weekday=d, start="00:00", end="23:59", timezone=str(tz)) for d in range(7)]
    begin = datetime.combine(start, datetime.min.time(), tz)
    finish = datetime.combine(start + timedelta(days=span + 1), datetime.min.time(), tz)
    slots = compute_slots(windows, begin, finish, timedelta(minutes=minutes), [], earliest=begin)
    assert all(begin <= s.starts_at < s.ends_at <= finish for s in slots)


def test_the_probe_dates_are_refused() -> None:
    today = datetime(2030, 1, 7, tzinfo=UTC).date()
    result = forms.parse_request(
        request_form(available_from="9999-12-01", available_until="9999-12-31"), today=today
    )
    assert isinstance(result, dict) and "within 60 days" in result["available_from"]
    assert forms.parse_rating("٥") is None and forms.parse_rating("５") is None
    assert "tags" in forms.parse_request(request_form(tags="a," * 1500), today=today)  # type: ignore[operator]
