"""Configuration: environment variables (and a `.env` file), validated at start.

The variable names are a contract (docs/configuration.md lists them); every error names the
variable and says how to fix it, so an admin never has to read a traceback to find a typo.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./mini_mentorship.db"
DEFAULT_MEETING_LINK_TEMPLATE = "https://meet.jit.si/mini-mentorship-{token}"

_OFFSET = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
MAX_REMINDER_DAYS = 365


_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9_]+$")
_USER_ID = re.compile(r"^(?:[UW][A-Z0-9_]+|\d+)$")  # Slack member id, or Discord user id
_SECRET_VARIABLES = {"slack_bot_token", "slack_app_token", "slack_signing_secret", "discord_token"}


def mask_url(url: str) -> str:
    """`scheme://user:s3cret@host/db` -> `scheme://user:***@host/db` (and `?password=s3cret` ->
    `?password=***`), for any scheme: a URL is echoed in messages, its password never."""
    masked = re.sub(r"^([^:/]+://[^:/@]*):[^@]*@", r"\1:***@", url)
    # libpq also takes the password in the query string: `…/db?sslmode=require&password=s3cret`.
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", masked, flags=re.IGNORECASE)


def _shown(name: str, value: object) -> str:
    if name in _SECRET_VARIABLES and isinstance(value, str):
        return repr(value[:5] + "…") if len(value) > 5 else "'…'"
    if name == "database_url" and isinstance(value, str):
        return repr(mask_url(value))
    return repr(value)


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
URGENCIES = ("high", "normal", "low")


def parse_claim_targets(text: str) -> dict[str, timedelta]:
    """`"high=4,normal=24,low=72"` -> hours per urgency; missing urgencies keep their default."""
    targets = {"high": 4.0, "normal": 24.0, "low": 72.0}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, hours = part.partition("=")
        name = name.strip().lower()
        if name not in URGENCIES:
            raise ValueError(
                f"{part.strip()!r}: write urgency=hours for high, normal, low, e.g. high=4,normal=24"
            )
        try:
            value = float(hours)
        except ValueError:
            raise ValueError(f"{part.strip()!r}: the hours must be a number, e.g. {name}=24") from None
        if not 0 < value <= 24 * 30:
            raise ValueError(f"{part.strip()!r}: the hours must be more than 0 and at most 720")
        targets[name] = value
    return {name: timedelta(hours=hours) for name, hours in targets.items()}


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who set the variables."""


def parse_offsets(text: str) -> list[timedelta]:
    """`"24h,15m"` -> [24 h, 15 min], largest first. Raises ValueError with a usable message."""
    offsets: list[timedelta] = []
    if text.strip().lower() == "none":
        return offsets
    if not text.strip():
        # An empty value is usually a half-edited .env; silently sending no reminders is worse.
        raise ValueError("is empty; set durations like 24h,15m, or `none` to send no reminders")
    for part in text.split(","):
        if not part.strip():
            continue
        match = _OFFSET.match(part)
        if not match:
            raise ValueError(f"{part.strip()!r} is not a duration like 24h, 90m or 2d")
        amount, unit = int(match.group(1)), match.group(2)
        # Sessions are booked at most about 90 days ahead; a year is plenty, and a huge number
        # would overflow timedelta.
        if amount > MAX_REMINDER_DAYS * {"d": 1, "h": 24, "m": 24 * 60}[unit]:
            raise ValueError(f"{part.strip()!r}: a reminder is at most {MAX_REMINDER_DAYS}d before a session")
        value = timedelta(**{_UNITS[unit]: amount})
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
    # Where private threads for student + mentor are made; unset: DMs only.
    discord_sessions_channel_id: int | None = None

    request_expiry_days: int = Field(default=7, ge=1, le=365)
    reminder_offsets: str = "24h,15m"
    nudge_after_hours: int = Field(default=24, ge=1, le=24 * 30)
    max_open_requests_per_student: int = Field(default=2, ge=1, le=100)
    admin_user_ids: str = ""
    meeting_link_template: str = DEFAULT_MEETING_LINK_TEMPLATE
    default_timezone: str = "UTC"
    mentor_default_capacity: int = Field(default=3, ge=1, le=10)
    match_notify_count: int = Field(default=3, ge=1, le=10)
    claim_target_hours: str = "high=4,normal=24,low=72"
    digest_time: str = "09:00"
    slack_escalation_usergroup: str | None = None
    discord_escalation_role_id: str | None = None

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_api_url",
        "slack_mentor_channel",
        "discord_token",
        "slack_escalation_usergroup",
        "discord_escalation_role_id",
        "metrics_port",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`NAME=` with nothing after it (a template's line, `SLACK_APP_TOKEN=` to serve HTTP)
        leaves an optional variable unset, as leaving the line out does."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_user_ids")
    @classmethod
    def _check_admin_ids(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip() and not _USER_ID.match(part.strip()):
                raise ValueError(
                    f"{part.strip()!r} is not a user id: on Slack open the person's profile → ⋮ → "
                    "Copy member ID (U…); on Discord, with Developer Mode on, right-click them → "
                    "Copy User ID (a number)"
                )
        return value

    @field_validator("claim_target_hours")
    @classmethod
    def _check_targets(cls, value: str) -> str:
        parse_claim_targets(value)
        return value

    @field_validator("digest_time")
    @classmethod
    def _check_digest_time(cls, value: str) -> str:
        if not _CLOCK.match(value.strip()):
            raise ValueError("must be a local time HH:MM from 00:00 to 23:59, e.g. 09:00")
        return value.strip()

    @field_validator("slack_escalation_usergroup")
    @classmethod
    def _check_usergroup(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"S[A-Z0-9]{2,30}", value.strip()):
            raise ValueError("must be a Slack user-group id such as S0123ABCD (not a @handle)")
        return value.strip() if value else None

    @field_validator("discord_escalation_role_id")
    @classmethod
    def _check_role(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"\d{15,22}", value.strip()):
            raise ValueError(
                "must be a Discord role id (a 17-20 digit number; enable Developer Mode to copy it)"
            )
        return value.strip() if value else None

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_format: Literal["text", "json"] = "text"

    @field_validator("reminder_offsets")
    @classmethod
    def _check_offsets(cls, value: str) -> str:
        parse_offsets(value)
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _check_bot_token(cls, value: str | None) -> str | None:
        if value is None or value.startswith("xoxb-"):
            return value
        if value.startswith("xapp-"):
            raise ValueError(
                "is an app-level token (xapp-…); it belongs in SLACK_APP_TOKEN. The bot "
                'token (xoxb-…) is under "OAuth & Permissions" → Bot User OAuth Token'
            )
        if value.startswith("xoxp-"):
            raise ValueError(
                'is a user token (xoxp-…); use the Bot User OAuth Token (xoxb-…) from "OAuth & Permissions"'
            )
        raise ValueError(
            'must be a bot token starting with xoxb- ("OAuth & Permissions" → Bot User OAuth Token)'
        )

    @field_validator("slack_app_token")
    @classmethod
    def _check_app_token(cls, value: str | None) -> str | None:
        if value is None or value.startswith("xapp-"):
            return value
        if value.startswith("xoxb-"):
            raise ValueError(
                "is a bot token (xoxb-…); it belongs in SLACK_BOT_TOKEN. The app-level "
                'token (xapp-…) is under "Basic Information" → App-Level Tokens'
            )
        raise ValueError(
            'must be an app-level token starting with xapp- ("Basic Information" → '
            "App-Level Tokens, scope connections:write)"
        )

    @field_validator("slack_api_url")
    @classmethod
    def _check_api_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            parts = urlsplit(value.strip())
            # .port raises on a port that is no number, as the first Slack call would.
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(
                "must be the Web API's base URL, like https://slack.com/api/ (the tests' fake: "
                "http://127.0.0.1:PORT/api/); or unset it to use Slack's own"
            )
        return value.strip()

    @field_validator("slack_mentor_channel")
    @classmethod
    def _check_mentor_channel(cls, value: str | None) -> str | None:
        if value is None or _CHANNEL_ID.match(value):
            return value
        raise ValueError(
            "must be the channel's id (C…), not its name: open the channel in Slack, click "
            "its name at the top; the id is at the bottom of the About tab"
        )

    @field_validator(
        "discord_mentor_channel_id",
        "discord_mentor_role_id",
        "discord_guild_id",
        "discord_sessions_channel_id",
        mode="before",
    )
    @classmethod
    def _check_discord_id(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # `NAME=` leaves the id unset, as for the other optional variables
        if isinstance(value, str) and not value.strip().isdigit():
            raise ValueError(
                "must be a numeric id, not a name: turn on Developer Mode (User Settings → "
                "Advanced), then right-click the channel, role or server → Copy ID"
            )
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
            raise ValueError(
                "use sqlite+aiosqlite:///./file.db or postgresql+psycopg://user:password@host/db"
            )
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
    def claim_targets(self) -> dict[str, timedelta]:
        """First-claim target per urgency; a set NUDGE_AFTER_HOURS (deprecated) is the normal one
        unless CLAIM_TARGET_HOURS names normal itself."""
        targets = parse_claim_targets(self.claim_target_hours)
        explicit_normal = (
            "claim_target_hours" in self.model_fields_set and "normal" in self.claim_target_hours.lower()
        )
        if "nudge_after_hours" in self.model_fields_set and not explicit_normal:
            targets["normal"] = self.nudge_after
        return targets

    @property
    def deprecations(self) -> list[str]:
        if "nudge_after_hours" in self.model_fields_set:
            return ["NUDGE_AFTER_HOURS is deprecated: use CLAIM_TARGET_HOURS (it sets the normal target)."]
        return []

    @property
    def nudge_after(self) -> timedelta:
        return timedelta(hours=self.nudge_after_hours)

    def shared_conversations(self, platform: str) -> bool:
        """Whether a claim opens a shared conversation (a Slack group DM; on Discord a private
        thread, only where DISCORD_SESSIONS_CHANNEL_ID says)."""
        if platform == "discord":
            return self.discord_sessions_channel_id is not None
        return platform == "slack"

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def slack_requested(self) -> bool:
        """Some Slack variable is set: the operator means to run Slack, so say what is missing."""
        return bool(self.slack_bot_token or self.slack_signing_secret or self.slack_app_token)

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


_NUMBER_ERRORS = {
    "int_parsing",
    "int_from_float",
    "int_type",
    "float_parsing",
    "float_type",
    "finite_number",
    "greater_than_equal",
    "less_than_equal",
}


def _plain_message(field: str, kind: str, message: str) -> str:
    """Our own validators' words as they are; pydantic's for a number or a choice ("Input should
    be a valid integer, unable to parse string as an integer") turned into what to write."""
    info = Settings.model_fields.get(field)
    if info is not None and kind in _NUMBER_ERRORS:
        low = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
        high = next((m.le for m in info.metadata if hasattr(m, "le")), None)
        if low is not None and high is not None:
            whole = info.annotation is int or info.annotation == int | None
            return f"must be {'a whole number' if whole else 'a number'} from {low:g} to {high:g}"
    if kind == "literal_error":
        return "must be " + message.removeprefix("Input should be ").replace("'", "")
    return message.removeprefix("Value error, ")


def load_settings(**overrides: object) -> Settings:
    """Read and validate; turn pydantic's errors into one line per wrong variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise ConfigError(
            f"The .env file in {Path.cwd()} is not UTF-8 text (Windows PowerShell's `echo … > .env` "
            "writes UTF-16): save it again as UTF-8, e.g. in your editor's encoding menu."
        ) from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            message = _plain_message(field, error["type"], str(error["msg"]))
            lines.append(f"  {field.upper()}={_shown(field, error.get('input'))}: {message}")
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from None
