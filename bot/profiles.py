"""Mentor profiles: skills, how many active sessions a mentor takes at once, when they are away.

Only mentors may save one. The capacity is enforced by the claim itself
(storage/mentor_profiles.py); this module validates and stores the profile and reports the load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import Refused, RequestView
from storage import mentor_profiles
from storage.models import Member


@dataclass(frozen=True)
class ProfileView:
    skills: tuple[str, ...]
    capacity: int
    away_until: date | None
    load: int  # claimed + scheduled right now
    saved: bool  # False: defaults, the mentor never saved a profile

    @property
    def load_text(self) -> str:
        return f"{self.load} of {self.capacity} active"

    @property
    def summary(self) -> str:
        """Plain text (user text inside: escape it for the platform): load · skills · away."""
        skills = ", ".join(self.skills) if self.skills else "no skills listed yet"
        away = f" · away until {self.away_until.isoformat()}" if self.away_until else ""
        return f"{self.load_text} · {skills}{away}"

    def is_away(self, today: date) -> bool:
        return self.away_until is not None and today < self.away_until


async def profile_of(
    session: AsyncSession, member: Member, *, default_capacity: int, today: date | None = None
) -> ProfileView:
    """`today` (the mentor's own date): an away date no longer ahead is shown as none, so the
    form never brings it back to be refused ("not in the future") and nobody reads "away"."""
    stored = await mentor_profiles.get(session, member.id)
    load = await mentor_profiles.load_of(session, member.id)
    if stored is None:
        return ProfileView((), default_capacity, None, load, saved=False)
    away = stored.away_until
    if away is not None and today is not None and away <= today:
        away = None
    return ProfileView(tuple(stored.skills), stored.capacity, away, load, saved=True)


def at_capacity(profile: ProfileView, view: RequestView | None = None) -> Refused:
    """The polite refusal of a claim by a mentor who is full, with how to change it."""
    return Refused(
        "at_capacity",
        f"You already have {profile.load_text} sessions, your limit. Finish or release one, "
        "or raise how many you take at once with /mini-session profile.",
        view,
    )


async def save_profile(
    session: AsyncSession,
    member: Member,
    *,
    skills: tuple[str, ...],
    capacity: int,
    away_until: date | None,
    now: datetime,
) -> ProfileView:
    await mentor_profiles.save(
        session, member=member, skills=skills, capacity=capacity, away_until=away_until, now=now
    )
    return await profile_of(session, member, default_capacity=capacity)
