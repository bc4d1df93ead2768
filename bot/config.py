"""Configuration: environment variables (and a `.env` file), validated at start.

The variable names are a contract (docs/configuration.md lists them); every error names the
variable and says how to fix it, so an admin never has to read a traceback to find a typo.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./mini_mentorship.db"
DEFAULT_MEETING_LINK_TEMPLATE = "https://meet.jit.si/mini-mentorship-{token}"

_OFFSET = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who set the variables."""


def parse_offsets(text: str) -> list[timedelta]:
    """`"24h,15m"` -> [24 h, 15 min], largest first. Raises ValueError with a usable message."""
    offsets: list[timedelta] = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _OFFSET.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a duration like 24h, 90m or 2d")
        value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        if value <= timedelta(0):
            raise ValueError(f"{part.strip()!r} must be more than zero")
        offsets.append(value)
    return sorted(set(offsets), reverse=True)


def format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = DEFAULT_DATABASE_URL

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    slack_mentor_channel: str | None = None
    slack_channel_post_interval: float = Field(default=1.0, ge=0, le=60)

    discord_token: str | None = None
    discord_mentor_channel_id: int | None = None
    discord_mentor_role_id: int | None = None
    discord_guild_id: int | None = None

    request_expiry_days: int = Field(default=7, ge=1, le=365)
    reminder_offsets: str = "24h,15m"
    nudge_after_hours: int = Field(default=24, ge=1, le=24 * 30)
    max_open_requests_per_student: int = Field(default=2, ge=1, le=100)
    admin_user_ids: str = ""
    meeting_link_template: str = DEFAULT_MEETING_LINK_TEMPLATE
    default_timezone: str = "UTC"

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: Literal["text", "json"] = "text"

    @field_validator("reminder_offsets")
    @classmethod
    def _check_offsets(cls, value: str) -> str:
        parse_offsets(value)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from exc
        return value

    @field_validator("meeting_link_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://meet.jit.si/mentor-{token}")
        if "{token}" not in value:
            raise ValueError("must contain {token}, replaced by a random room name per session")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value.startswith("postgres://") or value.startswith("postgresql://"):
            # Hosting providers hand out plain postgres:// URLs; we speak psycopg 3.
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
            raise ValueError("use sqlite+aiosqlite:///./file.db or postgresql+psycopg://user@host/db")
        return value

    # Derived values ------------------------------------------------------------------------

    @property
    def reminder_offset_list(self) -> list[timedelta]:
        return parse_offsets(self.reminder_offsets)

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.admin_user_ids.split(",") if p.strip())

    @property
    def expiry(self) -> timedelta:
        return timedelta(days=self.request_expiry_days)

    @property
    def nudge_after(self) -> timedelta:
        return timedelta(hours=self.nudge_after_hours)

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def discord_configured(self) -> bool:
        return bool(self.discord_token)

    def missing_for_slack(self) -> list[str]:
        wanted = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
            "SLACK_MENTOR_CHANNEL": self.slack_mentor_channel,
        }
        return [name for name, value in wanted.items() if not value]

    def missing_for_discord(self) -> list[str]:
        wanted = {
            "DISCORD_TOKEN": self.discord_token,
            "DISCORD_MENTOR_CHANNEL_ID": self.discord_mentor_channel_id,
            "DISCORD_MENTOR_ROLE_ID": self.discord_mentor_role_id,
        }
        return [name for name, value in wanted.items() if not value]


def load_settings(**overrides: object) -> Settings:
    """Read and validate; turn pydantic's errors into one line per wrong variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "?"
            message = str(error["msg"]).removeprefix("Value error, ")
            value = error.get("input")
            lines.append(f"  {name}={value!r}: {message}")
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from None
