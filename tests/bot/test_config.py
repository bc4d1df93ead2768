"""Configuration: the contract's variable names, defaults, and errors that name the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, parse_offsets


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "sqlite+aiosqlite:///./mini_mentorship.db"
    assert settings.request_expiry_days == 7
    assert settings.reminder_offset_list == [timedelta(hours=24), timedelta(minutes=15)]
    assert settings.nudge_after_hours == 24
    assert settings.max_open_requests_per_student == 2
    assert settings.default_timezone == "UTC"
    assert "{token}" in settings.meeting_link_template


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "DATABASE_URL": "postgres://u@db/x",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "SLACK_MENTOR_CHANNEL": "C1",
        "DISCORD_TOKEN": "d",
        "DISCORD_MENTOR_CHANNEL_ID": "11",
        "DISCORD_MENTOR_ROLE_ID": "22",
        "DISCORD_GUILD_ID": "33",
        "DISCORD_SESSIONS_CHANNEL_ID": "44",
        "REQUEST_EXPIRY_DAYS": "3",
        "REMINDER_OFFSETS": "1d, 2h,30m",
        "NUDGE_AFTER_HOURS": "12",
        "MAX_OPEN_REQUESTS_PER_STUDENT": "4",
        "ADMIN_USER_IDS": "U1, U2",
        "MEETING_LINK_TEMPLATE": "https://meet.example.org/{token}",
        "DEFAULT_TIMEZONE": "Europe/Berlin",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "postgresql+psycopg://u@db/x"
    assert s.slack_configured and s.discord_configured
    assert s.discord_mentor_role_id == 22
    assert s.discord_sessions_channel_id == 44 and s.shared_conversations("discord")
    assert s.reminder_offset_list == [timedelta(days=1), timedelta(hours=2), timedelta(minutes=30)]
    assert s.admin_ids == {"U1", "U2"}
    assert s.missing_for_slack() == [] and s.missing_for_discord() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REMINDER_OFFSETS", "24 hours"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus"),
        ("MEETING_LINK_TEMPLATE", "https://meet.example.org/fixed-room"),
        ("REQUEST_EXPIRY_DAYS", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("DISCORD_MENTOR_ROLE_ID", "mentors"),
        ("DISCORD_SESSIONS_CHANNEL_ID", "#sessions"),
        ("ADMIN_USER_IDS", "U0ADA1, @ada"),  # a handle: Ada was silently no admin
        ("ADMIN_USER_IDS", "ada@example.org"),
        ("SLACK_API_URL", "http://[::1"),  # was a ValueError traceback at the first Slack call
        ("SLACK_API_URL", "slack.com/api/"),
    ],
)
def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert f"{name}={value!r}" in str(caught.value)
    if name.startswith("DISCORD_"):
        assert "Copy ID" in str(caught.value)  # the fix is said
    if name == "ADMIN_USER_IDS":
        assert "Copy member ID" in str(caught.value) and "Copy User ID" in str(caught.value)
    if name == "SLACK_API_URL":
        assert "https://slack.com/api/" in str(caught.value) and "unset it" in str(caught.value)


def test_parse_offsets_rejects_zero() -> None:
    with pytest.raises(ValueError, match="more than zero"):
        parse_offsets("0m")


@pytest.mark.parametrize("value", ["366d", "99999999999d", "999999999999999999999m"])
def test_a_reminder_offset_past_a_year_is_refused_not_a_traceback(value: str) -> None:
    """REMINDER_OFFSETS=99999999999d ended every command in an OverflowError traceback."""
    with pytest.raises(ValueError, match="at most 365d"):
        parse_offsets(value)
    assert parse_offsets("365d,8760h") == [timedelta(days=365)]


def test_a_dotenv_that_is_not_utf8_is_named_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Windows PowerShell 5's `echo SLACK_BOT_TOKEN=... > .env` writes UTF-16: reading it raised
    UnicodeDecodeError out of every command."""
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1\n", encoding="utf-16")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert ".env" in message and "UTF-8" in message


@pytest.mark.parametrize(
    "name",
    [
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_MENTOR_CHANNEL",
        "DISCORD_TOKEN",
        "DISCORD_GUILD_ID",
        "DISCORD_SESSIONS_CHANNEL_ID",
        "SLACK_ESCALATION_USERGROUP",
        "METRICS_PORT",
    ],
)
def test_an_optional_variable_left_empty_is_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """`SLACK_APP_TOKEN=` (to serve HTTP), or a template's `DISCORD_GUILD_ID=`, means unset, as
    it already did for SLACK_SIGNING_SECRET: it stopped the bot with "must be an app-level token"
    or "Input should be a valid integer"."""
    monkeypatch.setenv(name, "")
    settings = load_settings(_env_file=None)
    assert getattr(settings, name.lower()) is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REQUEST_EXPIRY_DAYS", "abc", "a whole number from 1 to 365"),
        ("REQUEST_EXPIRY_DAYS", "7.5", "a whole number from 1 to 365"),
        ("MENTOR_DEFAULT_CAPACITY", "11", "a whole number from 1 to 10"),
        ("MATCH_NOTIFY_COUNT", "0", "a whole number from 1 to 10"),
        ("MAX_OPEN_REQUESTS_PER_STUDENT", "two", "a whole number from 1 to 100"),
        ("METRICS_PORT", "99999", "a whole number from 1 to 65535"),
        ("SLACK_CHANNEL_POST_INTERVAL", "fast", "a number from 0 to 60"),
        ("LOG_FORMAT", "JSON", "text or json"),
    ],
)
def test_a_number_out_of_shape_says_what_range_to_use(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    """pydantic's own words ("Input should be a valid integer, unable to parse string as an
    integer") said what was wrong but not what to write instead."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert f"{name}={value!r}: must be {expected}" in str(caught.value)
