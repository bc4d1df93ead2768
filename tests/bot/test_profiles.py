"""Mentor profiles and capacity: field-level validation, only mentors save, and a mentor at
capacity is refused politely — atomically, even for simultaneous claims (on both engines)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.config import ConfigError, load_settings
from bot.domain import Actor, Invalid, Ok, Refused
from bot.runtime import Runtime
from tests.conftest import MENTOR, STUDENT, request_form


def profile_form(**overrides: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {"skills": "Python, #interviews", "capacity": "2", "away_until": ""}
    values.update(overrides)
    return values


def students(n: int) -> list[Actor]:
    return [Actor("slack", "T1", f"U_S{i:02d}", f"Student {i}", "UTC") for i in range(n)]


async def post(runtime: Runtime, student: Actor) -> int:
    created = await runtime.mentorship.create_request(student, request_form())
    assert isinstance(created, Ok), created
    return created.value.id


async def test_mentor_saves_profile_and_sees_load(runtime: Runtime) -> None:
    saved = await runtime.mentorship.save_profile(MENTOR, profile_form())
    assert isinstance(saved, Ok)
    assert saved.value.skills == ("python", "interviews")
    assert saved.value.capacity == 2 and saved.value.load_text == "0 of 2 active"
    claimed = await runtime.mentorship.claim(MENTOR, await post(runtime, STUDENT))
    assert isinstance(claimed, Ok)
    board = await runtime.mentorship.dashboard(MENTOR)
    assert board.profile is not None and board.profile.load_text == "1 of 2 active"


async def test_default_capacity_until_saved(runtime: Runtime) -> None:
    profile = await runtime.mentorship.profile(MENTOR)
    assert not profile.saved and profile.capacity == runtime.settings.mentor_default_capacity == 3


async def test_a_passed_away_date_is_not_brought_back(runtime: Runtime) -> None:
    """Back from being away: the profile (the form's initial values, the dashboard) says no away
    date, so saving it again unchanged is accepted (Discord and Slack alike)."""
    assert isinstance(
        await runtime.mentorship.save_profile(MENTOR, profile_form(away_until="2030-01-09")), Ok
    )
    assert (await runtime.mentorship.profile(MENTOR)).away_until is not None
    runtime.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    profile = await runtime.mentorship.profile(MENTOR)
    assert profile.away_until is None and "away" not in profile.summary
    board = await runtime.mentorship.dashboard(MENTOR)
    assert board.profile is not None and board.profile.away_until is None
    again = {"skills": ", ".join(profile.skills), "capacity": "4", "away_until": ""}
    assert isinstance(await runtime.mentorship.save_profile(MENTOR, again), Ok)


async def test_only_mentors_may_save(runtime: Runtime) -> None:
    refused = await runtime.mentorship.save_profile(STUDENT, profile_form())
    assert isinstance(refused, Refused) and refused.code == "not_mentor"
    assert "Only mentors" in refused.message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("capacity", "0", "from 1 to 10"),
        ("capacity", "50", "from 1 to 10"),
        ("capacity", "three", "from 1 to 10"),
        ("away_until", "2029-01-01", "not in the future"),
        ("away_until", "next week", "date like"),
        ("skills", ",".join(f"t{i}" for i in range(11)), "at most 10"),
    ],
)
async def test_field_level_errors(runtime: Runtime, field: str, value: str, expected: str) -> None:
    result = await runtime.mentorship.save_profile(MENTOR, profile_form(**{field: value}))
    assert isinstance(result, Invalid)
    assert set(result.errors) == {field} and expected in result.errors[field]
    assert not (await runtime.mentorship.profile(MENTOR)).saved


async def test_at_capacity_refused_politely_nothing_changes(runtime: Runtime) -> None:
    await runtime.mentorship.save_profile(MENTOR, profile_form(capacity="1"))
    first, second = [await post(runtime, s) for s in students(2)]
    assert isinstance(await runtime.mentorship.claim(MENTOR, first), Ok)
    before = await runtime.mentorship.get_request(MENTOR, second)
    assert isinstance(before, Ok)
    refused = await runtime.mentorship.claim(MENTOR, second)
    assert isinstance(refused, Refused) and refused.code == "at_capacity"
    assert "1 of 1 active" in refused.message and "/mini-session profile" in refused.message
    still = await runtime.mentorship.get_request(MENTOR, second)
    assert (
        isinstance(still, Ok)
        and still.value.status.value == "open"
        and still.value.version == before.value.version
    )
    # Releasing frees the slot.
    assert isinstance(await runtime.mentorship.release(MENTOR, first), Ok)
    assert isinstance(await runtime.mentorship.claim(MENTOR, second), Ok)


async def test_capacity_one_ten_simultaneous_claims_exactly_one(runtime: Runtime) -> None:
    await runtime.mentorship.save_profile(MENTOR, profile_form(capacity="1"))
    ids = [await post(runtime, s) for s in students(10)]
    results = await asyncio.gather(*(runtime.mentorship.claim(MENTOR, rid) for rid in ids))
    winners = [r for r in results if isinstance(r, Ok)]
    assert len(winners) == 1
    assert {r.code for r in results if isinstance(r, Refused)} == {"at_capacity"}
    assert (await runtime.mentorship.profile(MENTOR)).load == 1


def test_bad_configuration_names_the_variable() -> None:
    for name, value, words in [
        ("claim_target_hours", "soon", "urgency=hours"),
        ("digest_time", "25:00", "HH:MM"),
        ("slack_escalation_usergroup", "@mentors", "user-group id"),
        ("discord_escalation_role_id", "mentors", "role id"),
        ("mentor_default_capacity", "0", "a whole number from 1 to 10"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_settings(_env_file=None, **{name: value})
        assert name.upper() in str(caught.value) and words in str(caught.value)


def test_nudge_after_hours_is_the_deprecated_normal_target() -> None:
    settings = load_settings(_env_file=None, nudge_after_hours=12)
    assert settings.claim_targets["normal"].total_seconds() == 12 * 3600
    assert settings.claim_targets["high"].total_seconds() == 4 * 3600
    assert any("NUDGE_AFTER_HOURS" in w for w in settings.deprecations)
    assert load_settings(_env_file=None).deprecations == []
