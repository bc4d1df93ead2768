"""Every validation rule of the platform-neutral forms, plus Hypothesis fuzzing of the parsers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modals import forms
from tests.conftest import request_form

TODAY = date(2030, 1, 7)
NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def errors_for(**overrides: str) -> dict[str, str]:
    result = forms.parse_request(request_form(**overrides), today=TODAY)
    assert isinstance(result, dict), result
    return result


def test_valid_request_parses() -> None:
    parsed = forms.parse_request(request_form(tags="#Python, python, Interviews "), today=TODAY)
    assert isinstance(parsed, forms.RequestInput)
    assert parsed.tags == ("python", "interviews")
    assert parsed.duration_minutes == 30


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("title", "", "fill this in"),
        ("title", "abcd", "at least 5"),
        ("title", "x" * 101, "100 characters"),
        ("description", "too short", "at least 20"),
        ("description", "x" * 2001, "2000 characters"),
        ("session_type", "astrology", "choose one of"),
        ("duration", "90", "choose one of"),
        ("urgency", "panic", "choose one of"),
        ("available_from", "yesterday", "date like"),
        ("available_from", "2030-01-06", "today (2030-01-07)"),
        ("available_until", "2030-13-01", "no 2030-13-01 in the calendar"),
        ("available_until", "2030-1-31", "date like"),
        ("available_until", "2030-01-06", "on or after"),
        ("available_until", "2030-02-07", "30 days"),
        ("tags", "a,b,c,d,e,f", "at most 5 tags"),
        ("tags", "x" * 31, "at most 30 characters"),
    ],
)
def test_each_rule_reports_on_its_field(field: str, value: str, fragment: str) -> None:
    errors = errors_for(**{field: value})
    assert set(errors) == {field}
    assert fragment in errors[field]


def test_boundaries_accepted() -> None:
    ok = forms.parse_request(
        request_form(
            title="x" * 5,
            description="y" * 20,
            available_from="2030-01-07",
            available_until="2030-02-06",
            tags=",".join("t" * 30 for _ in range(5)),
        ),
        today=TODAY,
    )
    assert isinstance(ok, forms.RequestInput)
    assert isinstance(forms.parse_request(request_form(title="x" * 100), today=TODAY), forms.RequestInput)


def test_defaults_for_duration_and_urgency() -> None:
    values = request_form()
    del values["duration"], values["urgency"]
    parsed = forms.parse_request(values, today=TODAY)
    assert isinstance(parsed, forms.RequestInput)
    assert parsed.duration_minutes == 30 and parsed.urgency.value == "normal"


def test_schedule_parsing() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    parsed = forms.parse_schedule({"starts_at": "2030-01-08 18:30"}, tz=berlin, now=NOW)
    assert isinstance(parsed, forms.ScheduleInput)
    assert parsed.starts_at == datetime(2030, 1, 8, 17, 30, tzinfo=UTC)
    epoch = forms.parse_schedule({"starts_at": str(int(parsed.starts_at.timestamp()))}, tz=berlin, now=NOW)
    assert isinstance(epoch, forms.ScheduleInput) and epoch.starts_at == parsed.starts_at
    slot = forms.parse_schedule({"slot": "2030-01-08T17:30:00+00:00"}, tz=berlin, now=NOW)
    assert isinstance(slot, forms.ScheduleInput) and slot.starts_at == parsed.starts_at
    assert set(forms.parse_schedule({"starts_at": "soon"}, tz=berlin, now=NOW)) == {"starts_at"}  # type: ignore[arg-type]
    long_note = forms.parse_schedule({"starts_at": "2030-01-08 18:30", "note": "n" * 501}, tz=berlin, now=NOW)
    assert set(long_note) == {"note"}  # type: ignore[arg-type]
    for url in ("ftp://x.org", "https://", "not a url", "https://a b.com", "https://a.com/x\ty"):
        bad = forms.parse_schedule({"starts_at": "2030-01-08 18:30", "meeting_url": url}, tz=berlin, now=NOW)
        assert set(bad) == {"meeting_url"}, url  # type: ignore[arg-type]


def test_a_link_with_angle_brackets_or_quotes_is_refused_not_changed() -> None:
    """Slack would cut a link at `<`/`>`: refusing it beats sending a link the mentor never typed.
    Pasted wrapped in <…> (as mail and markdown show links), it is the same link: taken."""
    berlin = ZoneInfo("Europe/Berlin")
    for url, shown in (("https://zoom.us/j/1<2>", "< >"), ('https://meet.example/"x"', '"')):
        bad = forms.parse_schedule({"starts_at": "2030-01-08 18:30", "meeting_url": url}, tz=berlin, now=NOW)
        assert set(bad) == {"meeting_url"}, url  # type: ignore[arg-type]
        assert f"can't contain {shown}" in bad["meeting_url"]  # type: ignore[index]
    wrapped = forms.parse_schedule(
        {"starts_at": "2030-01-08 18:30", "meeting_url": " <https://zoom.us/j/123?pwd=a|b> "},
        tz=berlin,
        now=NOW,
    )
    assert isinstance(wrapped, forms.ScheduleInput) and wrapped.meeting_url == "https://zoom.us/j/123?pwd=a|b"


def test_a_time_the_clocks_skip_is_refused_on_its_field() -> None:
    """02:30 on Berlin's spring-forward night does not exist; taking it as 03:30 would book a time
    nobody typed. The autumn night's 02:30 happens (twice) and is taken, as is a slot's instant."""
    berlin = ZoneInfo("Europe/Berlin")
    skipped = forms.parse_schedule({"starts_at": "2030-03-31 02:30"}, tz=berlin, now=NOW)
    assert set(skipped) == {"starts_at"}  # type: ignore[arg-type]
    assert "02:30 doesn't exist on 2030-03-31 in Europe/Berlin" in skipped["starts_at"]  # type: ignore[index]
    proposed = forms.parse_proposal(
        {"time_1": "2030-03-31 03:30", "time_2": "2030-03-31 02:15"}, tz=berlin, now=NOW
    )
    assert set(proposed) == {"time_2"}  # type: ignore[arg-type]
    assert forms._typed_time("2030-10-27 02:30", berlin) == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)
    slot = forms.parse_schedule({"slot": "2030-03-31T01:30:00+00:00"}, tz=berlin, now=NOW)
    assert isinstance(slot, forms.ScheduleInput)


def test_availability_parsing() -> None:
    parsed = forms.parse_availability({"windows": "mon 9:00-10:30; Wednesday 18:00-24:00", "timezone": "UTC"})
    assert isinstance(parsed, list)
    assert forms.format_availability(parsed) == "Mon 09:00-10:30, Wed 18:00-23:59"
    assert set(forms.parse_availability({"windows": "Mon 10:00-09:00", "timezone": "UTC"})) == {"windows"}  # type: ignore[arg-type]
    assert set(forms.parse_availability({"windows": "Mon 25:00-26:00", "timezone": "UTC"})) == {"windows"}  # type: ignore[arg-type]


def test_overlapping_windows_of_a_day_are_one_window() -> None:
    """ "Mon 10-12, Mon 11-13" would otherwise suggest 11:00 twice and pre-fill two equal times."""
    parsed = forms.parse_availability(
        {
            "windows": "Mon 10:00-12:00, Mon 11:00-13:00, Mon 13:00-14:00, Mon 10:00-11:00, Tue 10:00-11:00",
            "timezone": "UTC",
        }
    )
    assert isinstance(parsed, list)
    assert forms.format_availability(parsed) == "Mon 10:00-14:00, Tue 10:00-11:00"


def test_digits_other_than_ascii_are_refused_on_their_field() -> None:
    for capacity in ("²", "٣", "３"):
        errors = forms.parse_profile({"skills": "python", "capacity": capacity}, today=TODAY)
        assert errors == {"capacity": "Please give a whole number from 1 to 10."}


def test_a_title_of_invisible_characters_is_empty() -> None:
    assert errors_for(title="\u200b" * 6)["title"] == "Please fill this in."
    assert errors_for(description="\u200b\u200d\ufeff " * 10)["description"] == "Please fill this in."


def test_review_parsing() -> None:
    assert forms.parse_review({"rating": "5", "review": " great "}) == (5, "great")
    assert forms.parse_review({"rating": "5", "review": ""}) == (5, None)
    assert set(forms.parse_review({"rating": "0"})) == {"rating"}  # type: ignore[arg-type]
    assert set(forms.parse_review({"rating": "3", "review": "r" * 1001})) == {"review"}  # type: ignore[arg-type]


text = st.one_of(st.none(), st.text(max_size=300), st.sampled_from(["", " ", "30", "2030-01-08", "high"]))


@given(st.dictionaries(st.sampled_from([f.id for f in forms.REQUEST_FORM.fields] + ["junk"]), text))
def test_request_parser_never_crashes(values: dict[str, str | None]) -> None:
    result = forms.parse_request(values, today=TODAY)
    if isinstance(result, dict):
        assert set(result) <= {f.id for f in forms.REQUEST_FORM.fields}
        assert all(isinstance(message, str) and message for message in result.values())
    else:
        assert 5 <= len(result.title) <= 100 and 20 <= len(result.description) <= 2000
        assert result.available_from >= TODAY and result.available_until >= result.available_from
        assert len(result.tags) <= 5


@given(st.dictionaries(st.sampled_from(["slot", "starts_at", "meeting_url", "note"]), text))
def test_schedule_parser_never_crashes(values: dict[str, str | None]) -> None:
    result = forms.parse_schedule(values, tz=ZoneInfo("Asia/Kolkata"), now=NOW)
    if isinstance(result, forms.ScheduleInput):
        assert result.starts_at > NOW and result.starts_at.tzinfo is not None


@given(st.text(max_size=200), st.text(max_size=40))
def test_availability_parser_never_crashes(windows: str, tz: str) -> None:
    result = forms.parse_availability({"windows": windows, "timezone": tz})
    if isinstance(result, list):
        assert all(w.start < w.end for w in result)


def test_form_specs_fit_platform_limits() -> None:
    """Slack: modal titles ≤ 24 chars, labels ≤ 2000, option text < 76; Discord: ≤ 5 modal inputs."""
    for spec in (forms.REQUEST_FORM, forms.SCHEDULE_FORM, forms.AVAILABILITY_FORM, forms.REVIEW_FORM):
        assert len(spec.title) <= 24 and len(spec.submit) <= 24
        for field in spec.fields:
            assert len(field.label) <= 45  # Discord's label limit is the tighter one
            assert all(len(c.label) < 76 for c in field.choices)
            assert field.max_length is None or field.max_length <= 3000


def test_blank_letters_and_invisible_padding_are_not_text() -> None:
    """Hangul fillers and the blank Braille pattern draw nothing, like zero-width spaces: a
    title of them is empty, and invisible characters don't make up a minimum length."""
    assert errors_for(title="\u3164" * 6)["title"] == "Please fill this in."
    assert errors_for(title="\u2800\u115f\u1160\uffa0\u3164")["title"] == "Please fill this in."
    assert (
        errors_for(title="Hi" + "\u200b" * 10)["title"] == "Please write at least 5 characters (you wrote 2)."
    )
    assert errors_for(description="Help" + "\u3164" * 30)["description"] == (
        "Please write at least 20 characters (you wrote 4)."
    )
    assert isinstance(forms.parse_request(request_form(title="Hi yo"), today=TODAY), forms.RequestInput)


def test_a_typed_time_the_clocks_skip_is_refused_on_its_field() -> None:
    """On the night the clocks go forward, 02:30 does not happen in St. John's or Berlin: read
    as it was, it became 03:30 without a word. It is refused on its field, naming the zone; a
    time of the hour that happens twice (clocks going back) is the first of the two."""
    now = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    for zone, day in (("America/St_Johns", "2030-03-10"), ("Europe/Berlin", "2030-03-31")):
        tz = ZoneInfo(zone)
        schedule = forms.parse_schedule({"starts_at": f"{day} 02:30"}, tz=tz, now=now)
        assert isinstance(schedule, dict) and set(schedule) == {"starts_at"}, schedule
        assert zone in schedule["starts_at"] and "clocks go forward" in schedule["starts_at"]
        proposal = forms.parse_proposal({"time_1": f"{day} 01:30", "time_2": f"{day} 02:30"}, tz=tz, now=now)
        assert isinstance(proposal, dict) and set(proposal) == {"time_2"}, proposal
        assert forms.parse_schedule({"starts_at": f"{day} 03:30"}, tz=tz, now=now).starts_at  # type: ignore[union-attr]
    autumn = datetime(2030, 10, 1, 9, 0, tzinfo=UTC)
    twice = forms.parse_schedule({"starts_at": "2030-10-27 02:30"}, tz=ZoneInfo("Europe/Berlin"), now=autumn)
    assert isinstance(twice, forms.ScheduleInput)
    assert twice.starts_at == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first one
