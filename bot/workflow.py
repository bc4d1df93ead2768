"""The use cases of a mentorship request, from posting to rating. No platform in sight.

Each method is one transaction: check who may act (bot/authz.py), make the guarded state change
(storage/repository.py), owe the messages it implies (bot/outbox.py), commit, then wake the
outbox so delivery starts at once. A caller that loses a race gets a `Refused` saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import conversations, digest, escalation, matching, profiles, proposals, reschedule
from bot.authz import NOT_FOUND, Act, authorize
from bot.calendar import generate_meeting_link, ics_file
from bot.clock import Clock
from bot.config import Settings, format_offset
from bot.domain import (
    ACTIVE_STATUSES,
    LATE_NO_SHOW,
    Actor,
    Availability,
    Invalid,
    MemberRef,
    Ok,
    Refused,
    RequestView,
    Result,
    SessionStatus,
    Slot,
    Status,
)
from bot.notifications import Kind
from bot.outbox import owe_card, owe_dm, owing_together
from modals import forms
from storage import mentor_profiles
from storage import repository as repo
from storage.db import Database, together
from storage.mentor_profiles import CandidateRow
from storage.models import Member, Request

log = logging.getLogger(__name__)

LATE_REMINDER_GRACE = timedelta(minutes=2)
COMPLETE_AFTER_END = timedelta(minutes=10)
SLOT_STEP = timedelta(minutes=30)
SLOT_LEAD = timedelta(hours=1)  # don't suggest a slot starting sooner than this
MAX_SLOTS = 25
DASHBOARD_LIMIT = 10  # requests a dashboard section lists; it counts the rest
MAX_ID = 2**31 - 1  # ids are 32-bit integer columns


@dataclass(frozen=True)
class Dashboard:
    mine: list[RequestView]
    claimed: list[RequestView]
    open: list[RequestView]
    availability: list[Availability]
    timezone: str
    is_mentor: bool
    # request id -> messages we could not deliver about it (e.g. "Couldn't DM Sam: DMs closed")
    problems: dict[int, tuple[str, ...]] = field(default_factory=dict)
    profile: profiles.ProfileView | None = None  # mentors only: skills, capacity, current load
    # section ("mine", "claimed", "open") -> how many requests it has; it lists DASHBOARD_LIMIT
    totals: dict[str, int] = field(default_factory=dict)

    def total(self, section: str) -> int:
        listed = {"mine": self.mine, "claimed": self.claimed, "open": self.open}[section]
        return max(self.totals.get(section, 0), len(listed))


class _RepostLost(Exception):
    """Another click posted this request again first; raised to roll back our copy."""

    def __init__(self, old: RequestView) -> None:
        super().__init__(old.id)
        self.old = old


def _already_reposted(old: RequestView, copy: int | None) -> Refused:
    where = f" as request #{copy}" if copy is not None else ""
    return Refused(
        "already_reposted",
        f"Request #{old.id} was already posted again{where}, so nothing new was posted.",
        old,
    )


class Mentorship:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._wake = wake
        self._directories: dict[str, matching.MentorDirectory] = {}
        # Counts a request still unclaimed at its target (Runtime wires CLAIM_TARGET_MISSED).
        self.target_missed: Callable[[str], None] = lambda urgency: None

    def use_directory(self, platform: str, directory: matching.MentorDirectory) -> None:
        """The adapter's check of who is a mentor now, used when matching (see bot/matching.py)."""
        self._directories[platform] = directory

    @property
    def directories(self) -> Mapping[str, matching.MentorDirectory]:
        """Per platform, who is a mentor now (shared with the stats: supply leaves out who left)."""
        return self._directories

    def on_owed(self, wake: Callable[[], None]) -> None:
        """Called after every commit that owes messages (the delivery worker listens)."""
        self._wake = wake

    def _owed(self) -> None:
        if self._wake is not None:
            self._wake()

    # Helpers -------------------------------------------------------------------------------

    async def _me(self, session: AsyncSession, actor: Actor) -> Member:
        return await repo.upsert_member(
            session,
            platform=actor.platform,
            workspace=actor.workspace,
            external_id=actor.user_id,
            display_name=actor.display_name,
            timezone=actor.timezone,
            now=self.clock.now(),
        )

    async def _zone_of(self, actor: Actor) -> str:
        """The actor's zone; Discord gives none, so the one the member set, if any."""
        if actor.timezone is not None:
            return self.tz_of(None, actor)
        async with self.db.transaction() as session:
            stored = await repo.find_member(session, actor.platform, actor.workspace, actor.user_id)
        return self.tz_of(stored, actor)

    def tz_of(self, member: MemberRef | Member | None, actor: Actor | None = None) -> str:
        name = (actor.timezone if actor else None) or (member.timezone if member else None)
        return name if name and forms.is_timezone(name) else self.settings.default_timezone

    def today_for(self, tz_name: str) -> date:
        return forms.date_in(self.clock.now(), tz_name)

    async def _load(
        self, session: AsyncSession, actor: Actor, request_id: int, act: Act
    ) -> RequestView | Refused:
        if not 0 < request_id <= MAX_ID:
            return NOT_FOUND  # a forged id beyond the column's range is no request at all
        view = await repo.request_view(session, request_id)
        if view is None:
            return NOT_FOUND
        return authorize(act, actor, view) or view

    async def _card_changed(
        self,
        session: AsyncSession,
        request_id: int,
        now: datetime,
        *,
        after: RequestView | None = None,
        new: bool = False,
    ) -> RequestView:
        """The request after a transition (read again unless the caller knows it: `after`), with
        its feed card update owed (and, once it left open, the edits that take the Claim button
        off its other messages). The card itself is drawn from the row when it is delivered.
        `new`: the request was just inserted, so it has no older card rows to supersede."""
        if after is None:
            after = await repo.request_view(session, request_id)
        assert after is not None
        await owe_card(session, request=after, now=now, supersede=not new)
        await escalation.retire_claims(session, after, now)
        return after

    def _refuse_state(self, view: RequestView, wanted: str, subject: str = "it") -> Refused:
        # "Already claimed by …" answers a claim; the claimer's own stale buttons (Mark done on a
        # session never booked, a second Cancel) get the state instead, not their own name.
        if (
            wanted == "claimed"
            and view.claimed_by is not None
            and view.status in (Status.CLAIMED, Status.SCHEDULED)
        ):
            return Refused("already_claimed", f"Already claimed by {view.claimed_by.display_name}.", view)
        state = "claimed but not scheduled yet" if view.status is Status.CLAIMED else view.status.value
        return Refused("wrong_state", f"This request is {state}, so {subject} can't be {wanted}.", view)

    @staticmethod
    def _window(view: RequestView, tz_name: str) -> tuple[datetime, datetime]:
        """The student's dates as instants, in the student's zone."""
        start = datetime.combine(view.available_from, time(0), forms.zone(tz_name))
        return start, _dates_end(view.available_until, tz_name)

    def outside_dates(self, view: RequestView, mentor_tz: str) -> str:
        """The refusal of a time outside the student's dates; when the mentor's zone makes those
        dates other days and hours, they are said in the mentor's time too."""
        text = (
            "Please pick a time inside the student's dates "
            f"({view.available_from.isoformat()} – {view.available_until.isoformat()})."
        )
        student_tz = self.tz_of(view.student)
        start, end = self._window(view, student_tz)
        zone = forms.zone(mentor_tz)
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        # The same clock at both ends (either zone's daylight saving may change in between).
        theirs = (start.utcoffset(), end.astimezone(forms.zone(student_tz)).utcoffset())
        if (local_start.utcoffset(), local_end.utcoffset()) == theirs:
            return text
        shown = f"{local_start:%a %d %b %H:%M} – {local_end:%a %d %b %H:%M}"
        return f"{text} In your time ({mentor_tz}) that is {shown}."

    def _dates_over(self, view: RequestView, now: datetime) -> bool:
        """Whether no session of the request's length fits before the student's last free day
        (in their zone) ends. (A request only past its expiry days stays claimable until the
        sweep expires it.)"""
        return not _session_fits(view.available_until, self.tz_of(view.student), view.duration_minutes, now)

    async def _replayed(self, session: AsyncSession, actor: Actor, once: str) -> Result[RequestView] | None:
        """The answer to a submission that already took effect (what the first one got), or None."""
        seen, request_id = await repo.earlier_submission(session, once)
        if not seen:
            return None
        view = await self._load(session, actor, request_id or 0, Act.VIEW)
        return view if isinstance(view, Refused) else Ok(view)

    # Requests ------------------------------------------------------------------------------

    async def create_request(
        self, actor: Actor, values: forms.Values, *, once: str | None = None
    ) -> Result[RequestView]:
        """`once`: the platform's id for this submission; a replay of it changes nothing."""
        now = self.clock.now()
        tz_name = await self._zone_of(actor)
        parsed = forms.parse_request(values, today=self.today_for(tz_name))
        if isinstance(parsed, dict):
            return Invalid(parsed)
        if not _session_fits(parsed.available_until, tz_name, parsed.duration_minutes, now):
            # "Today only" at 23:50: accepted, it would expire before any session could fit.
            left = _dates_end(parsed.available_until, tz_name) - now
            return Invalid(
                {
                    "available_until": f"Your dates end in {_minutes(left)}, too soon for a "
                    f"{parsed.duration_minutes}-minute session; please pick a later date."
                }
            )
        suggest = await self._suggest(actor, parsed)
        async with self.db.transaction() as session:
            if once is not None and (earlier := await self._replayed(session, actor, once)) is not None:
                return earlier
            me = await self._me(session, actor)
            result = await self._insert_request(session, me, actor, parsed, now, suggest)
            if once is not None and isinstance(result, Ok):
                await repo.record_submission(session, once, result.value.id, now)
        if isinstance(result, Ok):
            self._owed()
        return result

    async def _suggest(
        self, actor: Actor, data: forms.RequestInput, exclude: frozenset[int] = frozenset()
    ) -> list[CandidateRow] | None:
        """The mentors to offer a new request to (asked before the write transaction, so the
        platform's membership check never holds a database lock), never those in `exclude`;
        None if matching failed."""
        try:
            return await matching.pick(
                self.db,
                platform=actor.platform,
                workspace=actor.workspace,
                tags=data.tags,
                dates=(data.available_from, data.available_until),
                student_external_id=actor.user_id,
                directory=self._directories.get(actor.platform),
                default_timezone=self.settings.default_timezone,
                count=self.settings.match_notify_count,
                now=self.clock.now(),
                exclude=exclude,
            )
        except Exception:
            log.exception("matching failed; the request goes to the whole feed")
            return None

    async def _insert_request(
        self,
        session: AsyncSession,
        me: Member,
        actor: Actor,
        data: forms.RequestInput,
        now: datetime,
        suggest: list[CandidateRow] | None = None,
        keep_out: frozenset[int] = frozenset(),
    ) -> Result[RequestView]:
        """`keep_out`: member ids never offered this request (recorded with it, so a widening
        leaves them out too)."""
        if refused := await self._over_request_cap(session, me.id):
            return refused
        if suggest is not None:
            suggest = [row for row in suggest if row.member_id not in keep_out]
        request = await repo.add_request(
            session,
            platform=actor.platform,
            workspace=actor.workspace,
            student_id=me.id,
            title=data.title,
            session_type=data.session_type.value,
            description=data.description,
            duration_minutes=data.duration_minutes,
            available_from=data.available_from,
            available_until=data.available_until,
            urgency=data.urgency.value,
            tags=list(data.tags),
            status=Status.OPEN.value,
            version=1,
            created_at=now,
            # After its expiry days, or once the student's last free day is over if sooner: a
            # request no session can fit any more is not left claimable.
            expires_at=min(
                now + self.settings.expiry, _dates_end(data.available_until, self.tz_of(me, actor))
            ),
            # The escalation ladder; nobody matched (an empty suggestion): escalated at once.
            **escalation.ladder_start(self.settings, data.urgency, now, nobody_matched=suggest == []),
            match_note=None if suggest is None else matching.match_note(suggest, data.tags),
        )
        if keep_out:
            await mentor_profiles.keep_out(session, request.id, keep_out, now=now)
        view = await repo.request_view(session, request.id)
        assert view is not None
        expectations = await matching.expectations(session, view, now=now)
        async with owing_together(session):  # the mentors' DMs, the card and the student's DM
            if suggest:
                await matching.offer(session, view, suggest, round_=0, now=now)
            await self._card_changed(session, request.id, now, after=view, new=True)
            await owe_dm(
                session,
                request=view,
                to=view.student,
                kind=Kind.REQUEST_POSTED,
                now=now,
                key=f"request:{view.id}",
                payload=expectations,
            )
        return Ok(view)

    async def request_refusal(self, actor: Actor) -> Refused | None:
        """Why a new request would be refused, asked before the form opens so nobody fills in a
        form only to lose it (submitting checks again)."""
        async with self.db.transaction() as session:
            me = await repo.find_member(session, actor.platform, actor.workspace, actor.user_id)
            return None if me is None else await self._over_request_cap(session, me.id)

    async def _over_request_cap(self, session: AsyncSession, student_id: int) -> Refused | None:
        cap = self.settings.max_open_requests_per_student
        active = await repo.count_active_for_student(session, student_id, ACTIVE_STATUSES)
        if active < cap:
            return None
        # More than the cap when it was lowered since they posted: say how many they have.
        limit = f" (the limit is {cap})" if active > cap else ""
        return Refused(
            "too_many_open",
            f"You already have {active} active request{'s' if active != 1 else ''}{limit}. Cancel "
            "one or wait until it's done before posting another.",
        )

    async def repost(self, actor: Actor, request_id: int) -> Result[RequestView]:
        """Post an expired or cancelled request again, with its dates moved to the future.

        Once only: the old request records the new one with a guarded update in the same
        transaction as the insert, so a double click (or two replicas) posts one copy; the loser's
        insert rolls back and it is told where the copy is.
        """
        now = self.clock.now()
        final = (Status.EXPIRED.value, Status.CANCELLED.value)
        # The copy is matched like a new request; matching reads in a transaction of its own, so
        # it runs on what the old request says now, and the insert below checks everything again.
        # Whoever called off the old one's session is not offered the copy (matching.left_out_of_copy).
        left_out: frozenset[int] = frozenset()
        async with self.db.transaction() as session:
            seen = await self._load(session, actor, request_id, Act.CANCEL)
            stored = await repo.find_member(session, actor.platform, actor.workspace, actor.user_id)
            if not isinstance(seen, Refused) and seen.status.value in final:
                left_out = await matching.left_out_of_copy(session, seen)
        suggest = None
        if not isinstance(seen, Refused) and seen.status.value in final:
            tz_name = self.tz_of(stored, actor)
            suggest = await self._suggest(actor, _repost_input(seen, now, tz_name), left_out)
        try:
            async with self.db.transaction() as session:
                old = await self._load(session, actor, request_id, Act.CANCEL)
                if isinstance(old, Refused):
                    return old
                me = await self._me(session, actor)
                if old.status not in (Status.EXPIRED, Status.CANCELLED):
                    return Refused(
                        "wrong_state", "Only expired or cancelled requests can be posted again.", old
                    )
                copy = await session.scalar(select(Request.reposted_as_id).where(Request.id == old.id))
                if copy is not None:
                    return _already_reposted(old, copy)
                data = _repost_input(old, now, self.tz_of(me, actor))
                left_out = await matching.left_out_of_copy(session, old)
                result = await self._insert_request(session, me, actor, data, now, suggest, left_out)
                if isinstance(result, Ok):
                    won = await session.execute(
                        update(Request)
                        .where(
                            Request.id == old.id, Request.reposted_as_id.is_(None), Request.status.in_(final)
                        )
                        .values(reposted_as_id=result.value.id, reposted_at=now)
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(won, "rowcount", 0) != 1:
                        raise _RepostLost(old)  # rolls back the copy we just inserted
        except _RepostLost as lost:
            async with self.db.transaction() as session:
                copy = await session.scalar(select(Request.reposted_as_id).where(Request.id == request_id))
            return _already_reposted(lost.old, copy)
        if isinstance(result, Ok):
            self._owed()
        return result

    async def get_request(self, actor: Actor, request_id: int) -> Result[RequestView]:
        async with self.db.transaction() as session:
            view = await self._load(session, actor, request_id, Act.VIEW)
        return view if isinstance(view, Refused) else Ok(view)

    async def workspace_of(self, request_id: int) -> tuple[str, str] | None:
        """(platform, workspace) of a request: for clicks in DMs, which carry no workspace."""
        if not 0 < request_id <= MAX_ID:
            return None
        async with self.db.transaction() as session:
            return await repo.request_workspace(session, request_id)

    async def dashboard(self, actor: Actor) -> Dashboard:
        async with self.db.transaction() as session:
            me = await self._me(session, actor)
            mine_where = [Request.student_id == me.id]
            mine = await repo.request_views(session, *mine_where, limit=DASHBOARD_LIMIT)
            totals = {"mine": await self._total(session, mine, mine_where)}
            # What they hold, mentor or not: one who left the mentors' channel (or lost the role)
            # is still the mentor of the sessions they claimed, and their buttons still work.
            claimed_where = [
                Request.claimed_by_id == me.id,
                Request.status.in_([Status.CLAIMED.value, Status.SCHEDULED.value]),
            ]
            claimed = await repo.request_views(
                session, *claimed_where, newest_first=False, limit=DASHBOARD_LIMIT
            )
            claimed.sort(key=_soonest_first)  # "upcoming": at most a capacity's worth, all here
            totals["claimed"] = await self._total(session, claimed, claimed_where)
            open_: list[RequestView] = []
            windows: list[Availability] = []
            if actor.is_mentor:
                open_where = [
                    Request.platform == actor.platform,
                    Request.workspace == actor.workspace,
                    Request.status == Status.OPEN.value,
                    Request.student_id != me.id,
                ]
                open_ = await repo.request_views(
                    session, *open_where, newest_first=False, limit=DASHBOARD_LIMIT
                )
                totals["open"] = await self._total(session, open_, open_where)
                windows = await repo.availability(session, me.id)
            profile = (
                await profiles.profile_of(
                    session,
                    me,
                    default_capacity=self.settings.mentor_default_capacity,
                    today=self.today_for(self.tz_of(me, actor)),
                )
                if actor.is_mentor
                else None
            )
            failed = await repo.undelivered_dms(session, [r.id for r in (*mine, *claimed)])
        problems = {rid: tuple(texts) for rid, texts in failed.items()}
        return Dashboard(
            mine, claimed, open_, windows, self.tz_of(me, actor), actor.is_mentor, problems, profile, totals
        )

    @staticmethod
    async def _total(session: AsyncSession, listed: list[RequestView], where: list[Any]) -> int:
        """All the requests a section has, not only the ones it lists (a count only when full)."""
        if len(listed) < DASHBOARD_LIMIT:
            return len(listed)
        return await repo.request_count(session, *where)

    # Claiming ------------------------------------------------------------------------------

    async def claim(self, actor: Actor, request_id: int) -> Result[RequestView]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            # The read and the clicker's upsert in one round trip (with BEGIN); a refusal
            # before the claim itself rolls the upsert back, so it changes nothing.
            view, me = await together(
                session, self._load(session, actor, request_id, Act.CLAIM), self._me(session, actor)
            )
            if isinstance(view, Refused):
                await session.rollback()
                return view
            if view.student.id == me.id:
                return Refused("own_request", "You can't claim your own request.", view)
            if view.status is Status.OPEN and self._dates_over(view, now):
                await session.rollback()
                return Refused(
                    "dates_passed",
                    "The student's dates for this request are over (no session fits before they "
                    "end), so it can't be claimed; it will expire and they can post it again.",
                    view,
                )
            # The capacity check is part of the guarded claim statement itself; `_me`'s upsert
            # holds the mentor's row, which serialises their claims.
            version = await mentor_profiles.claim_within_capacity(
                session,
                request_id,
                me.id,
                default_capacity=self.settings.mentor_default_capacity,
                now=now,
                mentor_locked=True,
            )
            if version is None:
                current = await repo.request_view(session, request_id)
                assert current is not None
                if current.claimed_by is not None and current.claimed_by.id == me.id:
                    return Refused("already_yours", "You've already claimed this request.", current)
                if current.status is Status.OPEN:  # still open: the mentor is full
                    mine = await profiles.profile_of(
                        session, me, default_capacity=self.settings.mentor_default_capacity
                    )
                    return profiles.at_capacity(mine, current)
                return self._refuse_state(current, "claimed")
            # What the guarded update wrote, on the view just read: no second read of the row.
            claimed = replace(
                view, status=Status.CLAIMED, version=version, claimed_by=repo.member_ref(me), claimed_at=now
            )
            after = claimed
            async with owing_together(session):  # card, retirements, DM and opening: one INSERT

                async def retirements_then_dm() -> None:
                    await escalation.retire_claims(session, after, now)
                    await owe_dm(
                        session,
                        request=after,
                        to=after.student,
                        kind=Kind.REQUEST_CLAIMED,
                        now=now,
                        key=f"request:{after.id}:v{after.version}",
                    )

                # Superseding older card rows, finding the Claim messages to retire and adding
                # the conversation are independent: one round trip. Rows are owed in this order.
                await together(
                    session,
                    owe_card(session, request=after, now=now),
                    retirements_then_dm(),
                    conversations.open_for_claim(session, self.settings, after, now),
                )
        self._owed()
        return Ok(after)

    async def release(self, actor: Actor, request_id: int) -> Result[RequestView]:
        """The claiming mentor hands the request back to the feed (from claimed or scheduled)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            view = await self._load(session, actor, request_id, Act.RELEASE)
            if isinstance(view, Refused):
                return view
            # Back in the feed: open at least a day more (not past the student's dates), the
            # ladder from the start. If the dates are already over, no mentor could fit a session:
            # it expires now instead, and the student is told so, not "back in the feed".
            dates_over = self._dates_over(view, now)
            after_release: dict[str, Any] = (
                {"status": Status.EXPIRED.value, "expired_at": now, "expires_at": now, "nudge_due_at": None}
                if dates_over
                else {
                    "status": Status.OPEN.value,
                    "expires_at": min(
                        max(view.expires_at, now + timedelta(days=1)),
                        self._window(view, self.tz_of(view.student))[1],
                    ),
                    **escalation.ladder_start(self.settings, view.urgency, now),
                }
            )
            releaser = view.claimed_by.external_id if view.claimed_by else None
            if any(external_id == releaser for external_id, _ in view.suggested):
                # The card stops suggesting the mentor who just handed the request back.
                after_release["match_note"] = {
                    "mentors": [[e, name] for e, name in view.suggested if e != releaser],
                    "tags": list(view.matched_tags),
                }
            won = await repo.transition(
                session,
                request_id,
                [Status.CLAIMED, Status.SCHEDULED],
                claimed_by_id=None,
                claimed_at=None,
                proposal_id=None,
                **after_release,
            )
            if not won:
                return self._refuse_state(view, "released")
            if view.claimed_by is not None:  # a widening offers it to others, not back to them
                await mentor_profiles.not_to_ask_again(session, request_id, view.claimed_by.id, now=now)
            await self._close_session(session, view, SessionStatus.CANCELLED, now)
            after = await self._card_changed(session, request_id, now)
            await owe_dm(
                session,
                request=after,
                to=after.student,
                kind=Kind.CLAIM_RELEASED,
                now=now,
                key=f"request:{after.id}:v{after.version}",
                payload={
                    "mentor_name": view.claimed_by.display_name if view.claimed_by else "",
                    "dates_over": dates_over,
                    **_cancel_ics(view, now),
                },
            )
            if view.session is not None:
                await self._owe_own_cancel_file(session, after, view, view.session.mentor, now)
            who = view.claimed_by.display_name if view.claimed_by else "The mentor"
            where = (
                "the dates are over, so it has expired" if dates_over else "it is back in the mentors' feed"
            )
            await conversations.close(session, after, f"{who} released the request; {where}.", now)
        self._owed()
        return Ok(after)

    async def _owe_own_cancel_file(
        self, session: AsyncSession, after: RequestView, booked: RequestView, to: MemberRef, now: datetime
    ) -> None:
        """The person who called off a booked session gets the calendar file that removes it (the
        other person's DM carries theirs); nothing when there was no booked session."""
        if booked.session is None or booked.session.status is not SessionStatus.SCHEDULED:
            return
        await owe_dm(
            session,
            request=after,
            to=to,
            kind=Kind.CALENDAR_REMOVED,
            now=now,
            key=f"session:{booked.session.id}:v{booked.session.schedule_version}:removed",
            payload=_cancel_ics(booked, now),
        )

    async def _close_session(
        self, session: AsyncSession, view: RequestView, status: SessionStatus, now: datetime
    ) -> bool:
        """End the request's live session (if any) and retire its pending reminders."""
        if view.session is None or view.session.status is not SessionStatus.SCHEDULED:
            return False
        closed = await repo.update_session(
            session,
            view.session.id,
            [SessionStatus.SCHEDULED],
            status=status.value,
            updated_at=now,
            completed_at=now if status is SessionStatus.COMPLETED else None,
        )
        await repo.retire_pending(
            session, status="superseded", session_id=view.session.id, kinds=[Kind.REMINDER.value]
        )
        return closed

    # Scheduling ----------------------------------------------------------------------------

    async def schedule(
        self,
        actor: Actor,
        request_id: int,
        values: forms.Values,
        *,
        once: str | None = None,
        opened_for: str | None = None,
    ) -> Result[RequestView]:
        """Schedule a claimed request, or move a scheduled one (a reschedule). Moving it to the
        time and link it already has changes nothing; `once` as for create_request. `opened_for`:
        the `booking_token` the form was opened with; a form opened before the booking changed
        (the student picked a proposed time meanwhile) is refused instead of overriding it."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            if once is not None and (earlier := await self._replayed(session, actor, once)) is not None:
                return earlier
            view = await self._load(session, actor, request_id, Act.SCHEDULE)
            if isinstance(view, Refused):
                return view
            if view.status not in (Status.CLAIMED, Status.SCHEDULED):
                return self._refuse_state(view, "scheduled")
            if opened_for is not None and opened_for != booking_token(view):
                return Refused(
                    "booking_changed",
                    "The session's time changed since you opened this form (the student may have "
                    "picked one of your proposed times). Nothing was changed; see the card, and "
                    "use Reschedule if you still want to move it.",
                    view,
                )
            me = await self._me(session, actor)
            parsed = forms.parse_schedule(values, tz=forms.zone(self.tz_of(me, actor)), now=now)
            if isinstance(parsed, dict):
                return Invalid(parsed)
            field = "starts_at" if (values.get("starts_at") or "").strip() else "slot"
            starts_at = parsed.starts_at
            ends_at = starts_at + timedelta(minutes=view.duration_minutes)
            window_start, window_end = self._window(view, self.tz_of(view.student))
            if starts_at < window_start or ends_at > window_end:
                return Invalid({field: self.outside_dates(view, self.tz_of(me, actor))})
            live = view.session if view.session and view.session.status is SessionStatus.SCHEDULED else None
            # A form opened for this booking shows its note, so what comes back is the note
            # (empty: removed); an older form without it leaves the note as it was when empty.
            shows_note = opened_for not in (None, "0")
            if (
                live is not None
                and starts_at == live.starts_at
                and parsed.meeting_url in (None, live.meeting_url)
                and (parsed.note == live.note if shows_note else parsed.note in ("", live.note))
            ):
                return Ok(view)  # already so: no new version, no DMs, no reminders re-queued
            clashes = await repo.mentor_sessions_between(
                session, me.id, starts_at, ends_at, exclude_session_id=live.id if live else None
            )
            if clashes:
                return Invalid({field: "That overlaps another session of yours; please pick another time."})
            url = (
                parsed.meeting_url
                or (live.meeting_url if live else None)
                or generate_meeting_link(self.settings.meeting_link_template)
            )
            rescheduling = live is not None
            if rescheduling:
                assert live is not None
                # The request row first, then its session, as every other change of a booked
                # session takes them (the other order deadlocks with a student's Can't make it).
                # A direct move retires any new times still on offer, as scheduling directly does.
                won = await repo.transition(
                    session, request_id, [Status.SCHEDULED], proposal_id=None
                ) and await repo.update_session(
                    session,
                    live.id,
                    [SessionStatus.SCHEDULED],
                    starts_at=starts_at,
                    ends_at=ends_at,
                    meeting_url=url,
                    note=parsed.note if shows_note else (parsed.note or live.note),
                    schedule_version=live.schedule_version + 1,
                    updated_at=now,
                )
                await repo.supersede_proposals(session, request_id, now)
                await repo.retire_pending(
                    session, status="superseded", session_id=live.id, kinds=[Kind.REMINDER.value]
                )
                session_id = live.id
            else:
                # Scheduling directly retires any times still on offer.
                won = await repo.transition(
                    session, request_id, [Status.CLAIMED], status=Status.SCHEDULED.value, proposal_id=None
                )
                await repo.supersede_proposals(session, request_id, now)
                new = (
                    await repo.add_session(
                        session,
                        request_id=request_id,
                        mentor_id=me.id,
                        student_id=view.student.id,
                        starts_at=starts_at,
                        ends_at=ends_at,
                        meeting_url=url,
                        note=parsed.note,
                        status=SessionStatus.SCHEDULED.value,
                        schedule_version=1,
                        created_at=now,
                        updated_at=now,
                    )
                    if won
                    else None
                )
                session_id = new.id if new else 0
            if not won:
                current = await repo.request_view(session, request_id)
                assert current is not None
                return self._refuse_state(current, "scheduled")
            after = await repo.request_view(session, request_id)
            assert after is not None and after.session is not None
            # Only the link or note changed: said so, not "a new time" that is the old one.
            same_time = live is not None and live.starts_at == starts_at
            await self._owe_schedule_messages(
                session, after, session_id, rescheduling, now, news={"same_time": True} if same_time else None
            )
            if once is not None:
                await repo.record_submission(session, once, request_id, now)
        self._owed()
        return Ok(after)

    async def _owe_schedule_messages(
        self,
        session: AsyncSession,
        view: RequestView,
        session_id: int,
        rescheduled: bool,
        now: datetime,
        *,
        news: dict[str, Any] | None = None,
    ) -> None:
        """Card, both DMs, reminders, and the news in the shared conversation (`news`: its payload)."""
        assert view.session is not None
        version = view.session.schedule_version
        kind = Kind.SESSION_RESCHEDULED if rescheduled else Kind.SESSION_SCHEDULED
        await owe_card(session, request=view, now=now)
        # The news says the time it was about, even if it changes again before it is delivered.
        told = {
            **(news or {}),
            "starts_at": view.session.starts_at.isoformat(),
            "url": view.session.meeting_url,
        }
        await conversations.owe_news(session, view, kind, f"session:{session_id}:v{version}", now, told)
        offsets = self.settings.reminder_offset_list
        cant_make_it_offset = day_before_offset(offsets)
        for member in (view.student, view.session.mentor):
            await owe_dm(
                session,
                request=view,
                to=member,
                kind=kind,
                now=now,
                session_id=session_id,
                key=f"session:{session_id}:v{version}",
                payload={"same_time": True} if (news or {}).get("same_time") else None,
            )
            # Reminders are outbox rows due in the future; the delivery sweep sends them when due.
            for offset in offsets:
                due = view.session.starts_at - offset
                if due <= now:
                    continue  # that moment is already past at scheduling time
                await owe_dm(
                    session,
                    request=view,
                    to=member,
                    kind=Kind.REMINDER,
                    now=now,
                    due_at=due,
                    session_id=session_id,
                    key=f"{format_offset(offset)}:session:{session_id}:v{version}",
                    payload={
                        "offset": format_offset(offset),
                        "schedule_version": version,
                        "cant_make_it": offset == cant_make_it_offset,
                    },
                )

    async def cancel_session(self, actor: Actor, request_id: int) -> Result[RequestView]:
        """The mentor cancels the agreed time but keeps the request (scheduled -> claimed)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            view = await self._load(session, actor, request_id, Act.CANCEL_SESSION)
            if isinstance(view, Refused):
                return view
            if not await repo.transition(
                session, request_id, [Status.SCHEDULED], status=Status.CLAIMED.value
            ):
                return self._refuse_state(view, "cancelled", subject="its session")
            await self._close_session(session, view, SessionStatus.CANCELLED, now)
            after = await self._card_changed(session, request_id, now)
            await owe_dm(
                session,
                request=after,
                to=after.student,
                kind=Kind.SESSION_CANCELLED,
                now=now,
                key=f"request:{after.id}:v{after.version}",
                payload={
                    "by": "mentor",
                    "by_name": view.claimed_by.display_name if view.claimed_by else "",
                    **_cancel_ics(view, now),
                },
            )
            if view.session is not None:
                await self._owe_own_cancel_file(session, after, view, view.session.mentor, now)
            await conversations.owe_news(
                session,
                after,
                Kind.SESSION_CANCELLED,
                f"request:{after.id}:v{after.version}",
                now,
                {"by_name": view.claimed_by.display_name if view.claimed_by else ""},
            )
        self._owed()
        return Ok(after)

    async def suggest_slots(self, actor: Actor, request_id: int) -> Result[list[Slot]]:
        """Mentor availability ∩ the student's dates, minus the mentor's other sessions."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            view = await self._load(session, actor, request_id, Act.SCHEDULE)
            if isinstance(view, Refused):
                return view
            me = await self._me(session, actor)
            windows = await repo.availability(session, me.id)
            start, end = self._window(view, self.tz_of(view.student))
            busy = await repo.mentor_sessions_between(session, me.id, start, end)
        live = view.session if view.session and view.session.status is SessionStatus.SCHEDULED else None
        busy_spans = [(s.starts_at, s.ends_at) for s in busy if live is None or s.id != live.id]
        return Ok(
            compute_slots(
                windows,
                start,
                end,
                timedelta(minutes=view.duration_minutes),
                busy_spans,
                earliest=now + SLOT_LEAD,
                # The booked time is no new time: proposed, it is refused; in Reschedule, a no-op.
                leave_out=(live.starts_at,) if live else (),
            )
        )

    # Proposed times (bot/proposals.py) ----------------------------------------------------

    async def propose_times(
        self, actor: Actor, request_id: int, values: forms.Values, *, once: str | None = None
    ) -> Result[RequestView]:
        return await proposals.propose_times(self, actor, request_id, values, once=once)

    async def pick_time(
        self, actor: Actor, request_id: int, proposal_id: int, index: int
    ) -> Result[RequestView]:
        return await proposals.pick_time(self, actor, request_id, proposal_id, index)

    async def check_proposal(self, actor: Actor, request_id: int, proposal_id: int) -> Result[RequestView]:
        return await proposals.check_pending(self, actor, request_id, proposal_id)

    async def none_work(
        self, actor: Actor, request_id: int, proposal_id: int, values: forms.Values
    ) -> Result[RequestView]:
        return await proposals.none_work(self, actor, request_id, proposal_id, values)

    async def withdraw_past_proposals(self, limit: int = 200) -> int:
        return await proposals.withdraw_past(self, limit)

    # Changes from either side (bot/reschedule.py) -----------------------------------------

    async def check_session_button(
        self, actor: Actor, request_id: int, session_id: int, version: int, act: Act
    ) -> Result[RequestView]:
        return await reschedule.check_session_button(self, actor, request_id, session_id, version, act)

    async def ask_reschedule(
        self,
        actor: Actor,
        request_id: int,
        session_id: int,
        version: int,
        values: forms.Values,
        *,
        once: str | None = None,
    ) -> Result[RequestView]:
        return await reschedule.ask_reschedule(
            self, actor, request_id, session_id, version, values, once=once
        )

    async def check_ask(self, actor: Actor, request_id: int, ask_id: int) -> Result[RequestView]:
        return await reschedule.check_ask(self, actor, request_id, ask_id)

    async def keep_time(self, actor: Actor, request_id: int, ask_id: int) -> Result[RequestView]:
        return await reschedule.keep_time(self, actor, request_id, ask_id)

    async def propose_for_ask(
        self, actor: Actor, request_id: int, ask_id: int, values: forms.Values, *, once: str | None = None
    ) -> Result[RequestView]:
        """New times answering the student's ask to reschedule (the ask is settled with them)."""
        return await proposals.propose_times(self, actor, request_id, values, once=once, ask_id=ask_id)

    async def cant_make_it(
        self,
        actor: Actor,
        request_id: int,
        session_id: int,
        version: int,
        values: forms.Values,
        *,
        once: str | None = None,
    ) -> Result[RequestView]:
        return await reschedule.cant_make_it(self, actor, request_id, session_id, version, values, once=once)

    # Cancel, complete, no-show, rate -----------------------------------------------------

    async def cancel(self, actor: Actor, request_id: int) -> Result[RequestView]:
        """The student withdraws the request, from any non-final status."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            view = await self._load(session, actor, request_id, Act.CANCEL)
            if isinstance(view, Refused):
                return view
            if not await repo.transition(
                session,
                request_id,
                [Status.OPEN, Status.CLAIMED, Status.SCHEDULED],
                status=Status.CANCELLED.value,
                cancelled_at=now,
                nudge_due_at=None,
                proposal_id=None,
            ):
                return Refused("wrong_state", f"This request is already {view.status.value}.", view)
            await self._close_session(session, view, SessionStatus.CANCELLED, now)
            after = await self._card_changed(session, request_id, now)
            if view.claimed_by is not None:
                await owe_dm(
                    session,
                    request=after,
                    to=view.claimed_by,
                    kind=Kind.REQUEST_CANCELLED,
                    now=now,
                    key=f"request:{after.id}",
                )
            await self._owe_own_cancel_file(session, after, view, view.student, now)
            await conversations.close(
                session, after, f"{view.student.display_name} cancelled the request.", now
            )
        self._owed()
        return Ok(after)

    async def complete(self, actor: Actor, request_id: int) -> Result[RequestView]:
        """The mentor marks the session done (once it has started)."""
        return await self._finish(actor, request_id, Act.COMPLETE, SessionStatus.COMPLETED)

    async def no_show(self, actor: Actor, request_id: int) -> Result[RequestView]:
        return await self._finish(actor, request_id, Act.NO_SHOW, SessionStatus.NO_SHOW)

    async def _finish(
        self, actor: Actor, request_id: int, act: Act, outcome: SessionStatus
    ) -> Result[RequestView]:
        now = self.clock.now()
        wanted = "marked done" if outcome is SessionStatus.COMPLETED else "reported as a no-show"
        async with self.db.transaction() as session:
            view = await self._load(session, actor, request_id, act)
            if isinstance(view, Refused):
                return view
            if outcome is SessionStatus.NO_SHOW and view.status is Status.COMPLETED:
                late = await self._late_no_show(session, view, now)
                if isinstance(late, Refused):
                    return late
                self._owed()
                return Ok(late)
            if view.status is not Status.SCHEDULED or view.session is None:
                return self._refuse_state(view, wanted)
            if now < view.session.starts_at:
                return Refused(
                    "too_early", "The session hasn't started yet; you can mark it after it starts.", view
                )
            after = await self._complete_session(session, view, outcome, now)
            if after is None:
                current = await repo.request_view(session, request_id)
                assert current is not None
                return self._refuse_state(current, wanted)
        self._owed()
        return Ok(after)

    async def _late_no_show(
        self, session: AsyncSession, view: RequestView, now: datetime
    ) -> RequestView | Refused:
        """A no-show reported after the session was marked done (by the sweep, 10 minutes after
        its end, or by the mentor): while the student has not rated it, within LATE_NO_SHOW."""
        done = view.session
        if done is None or done.status is SessionStatus.NO_SHOW:
            return Refused("wrong_state", "This session is already reported as a no-show.", view)
        if done.status is not SessionStatus.COMPLETED:
            return self._refuse_state(view, "reported as a no-show")
        if done.rating is not None:
            return Refused(
                "already_rated",
                "The student has already rated this session, so it can't be reported as a no-show.",
                view,
            )
        if now > done.ends_at + LATE_NO_SHOW:
            return Refused(
                "too_late",
                f"A no-show can be reported up to {LATE_NO_SHOW.days} days after the session; "
                "this one ended longer ago. Please tell your organisers instead.",
                view,
            )
        # The request row first (as every use case takes it), then the session: only from done
        # and unrated, so a rating committed meanwhile wins and this changes nothing.
        held = await repo.transition(session, view.id, [Status.COMPLETED])
        if not held or not await repo.update_session(
            session,
            done.id,
            [SessionStatus.COMPLETED],
            unrated=True,
            status=SessionStatus.NO_SHOW.value,
            updated_at=now,
        ):
            current = await repo.request_view(session, view.id)
            assert current is not None and current.session is not None
            if current.session.rating is not None:
                return Refused(
                    "already_rated",
                    "The student has just rated this session, so it can't be reported as a no-show.",
                    current,
                )
            return Refused("wrong_state", "This session is already reported as a no-show.", current)
        # A rating prompt not sent yet is no longer owed; one already sent is refused when used.
        await repo.retire_pending(
            session, status="superseded", session_id=done.id, kinds=[Kind.RATING_PROMPT.value]
        )
        after = await self._card_changed(session, view.id, now)
        await _owe_outcome(session, after, SessionStatus.NO_SHOW, now)
        return after

    async def _complete_session(
        self, session: AsyncSession, view: RequestView, outcome: SessionStatus, now: datetime
    ) -> RequestView | None:
        if not await repo.transition(
            session,
            view.id,
            [Status.SCHEDULED],
            status=Status.COMPLETED.value,
            completed_at=now,
            proposal_id=None,
        ):
            return None
        await repo.supersede_proposals(session, view.id, now)
        await self._close_session(session, view, outcome, now)
        after = await self._card_changed(session, view.id, now)
        await _owe_outcome(session, after, outcome, now)
        return after

    async def rate(
        self,
        actor: Actor,
        request_id: int,
        rating: int,
        review: str | None = None,
        *,
        once: str | None = None,
    ) -> Result[RequestView]:
        """`once` as for create_request (the review form; star buttons are safe by themselves)."""
        now = self.clock.now()
        if not 1 <= rating <= 5:
            return Invalid({"rating": "Please choose 1 to 5 stars."})
        if review is not None and len(review.strip()) > forms.REVIEW_LENGTH:
            return Invalid({"review": f"Please keep it to {forms.REVIEW_LENGTH} characters."})
        review = (review or "").strip() or None
        async with self.db.transaction() as session:
            if once is not None and (earlier := await self._replayed(session, actor, once)) is not None:
                return earlier
            view = await self._load(session, actor, request_id, Act.RATE)
            if isinstance(view, Refused):
                return view
            s = view.session
            if view.status is not Status.COMPLETED or s is None or s.status is not SessionStatus.COMPLETED:
                return Refused("not_rateable", "You can rate a session once it has taken place.", view)
            first = await repo.rate_session(session, s.id, rating, review, now)
            if not first:
                if review and await repo.add_review(session, s.id, review, rating, now):
                    pass  # rated earlier from the buttons; this adds the review
                elif await repo.session_status(session, s.id) is SessionStatus.NO_SHOW:
                    # The mentor reported a no-show just before: nothing to rate.
                    return Refused("not_rateable", "You can rate a session once it has taken place.", view)
                else:
                    return Refused("already_rated", "You've already rated this session. Thank you!", view)
            if first and view.late_no_show_open(now):
                # The card offered a late No-show; rated, the session took place: it goes.
                await repo.transition(session, request_id, [Status.COMPLETED])
                after = await self._card_changed(session, request_id, now)
            else:
                found = await repo.request_view(session, request_id)
                assert found is not None
                after = found
            assert after.session is not None
            await owe_dm(
                session,
                request=after,
                to=s.mentor,
                kind=Kind.RATED,
                now=now,
                key=f"session:{s.id}:{'review' if after.session.review else 'stars'}",
                payload={"rating": after.session.rating, "review": after.session.review},
            )
            if once is not None:
                await repo.record_submission(session, once, request_id, now)
        self._owed()
        return Ok(after)

    # Mentor profile ----------------------------------------------------------------------

    async def profile(self, actor: Actor) -> profiles.ProfileView:
        """The actor's profile (defaults when never saved) with their current load."""
        async with self.db.transaction() as session:
            me = await self._me(session, actor)
            return await profiles.profile_of(
                session,
                me,
                default_capacity=self.settings.mentor_default_capacity,
                today=self.today_for(self.tz_of(me, actor)),
            )

    async def save_profile(self, actor: Actor, values: forms.Values) -> Result[profiles.ProfileView]:
        if refused := authorize(Act.PROFILE, actor):
            return refused
        # "Away until" is a date in the mentor's own zone, not the server's default.
        parsed = forms.parse_profile(values, today=self.today_for(await self._zone_of(actor)))
        if isinstance(parsed, dict):
            return Invalid(parsed)
        async with self.db.transaction() as session:
            me = await self._me(session, actor)
            saved = await profiles.save_profile(
                session,
                me,
                skills=parsed.skills,
                capacity=parsed.capacity,
                away_until=parsed.away_until,
                now=self.clock.now(),
            )
        return Ok(saved)

    # Availability ------------------------------------------------------------------------

    async def set_availability(self, actor: Actor, values: forms.Values) -> Result[list[Availability]]:
        parsed = forms.parse_availability(values)
        if isinstance(parsed, dict):
            return Invalid(parsed)
        async with self.db.transaction() as session:
            if refused := authorize(Act.AVAILABILITY, actor):
                return refused
            me = await self._me(session, actor)
            await repo.replace_availability(session, me.id, parsed)
            await repo.set_member_timezone(session, me.id, str(values.get("timezone")).strip())
        return Ok(parsed)

    async def get_availability(self, actor: Actor) -> tuple[list[Availability], str]:
        """The actor's weekly windows and time zone. Read-only: looking never records anyone."""
        async with self.db.transaction() as session:
            me = await repo.find_member(session, actor.platform, actor.workspace, actor.user_id)
            windows = await repo.availability(session, me.id) if me is not None else []
            return windows, self.tz_of(me, actor)

    async def set_timezone(self, actor: Actor, timezone: str) -> Result[str]:
        if not forms.is_timezone(timezone):
            return Invalid({"timezone": "Please give an IANA zone such as Europe/Berlin."})
        async with self.db.transaction() as session:
            me = await self._me(session, actor)
            await repo.set_member_timezone(session, me.id, timezone)
        return Ok(timezone)

    # Sweeps (called by jobs/) ------------------------------------------------------------

    async def expire_due(self, limit: int = 200) -> int:
        """Open requests past expires_at become expired; the student is told."""
        now = self.clock.now()
        count = 0
        async with self.db.transaction() as session:
            for request_id in await repo.due_request_ids(session, Request.expires_at, now, limit):
                if not await repo.transition(
                    session,
                    request_id,
                    [Status.OPEN],
                    status=Status.EXPIRED.value,
                    expired_at=now,
                    nudge_due_at=None,
                ):
                    continue
                view = await self._card_changed(session, request_id, now)
                await owe_dm(
                    session,
                    request=view,
                    to=view.student,
                    kind=Kind.REQUEST_EXPIRED,
                    now=now,
                    key=f"request:{view.id}",
                )
                count += 1
        if count:
            self._owed()
        return count

    async def nudge_due(self, limit: int = 200) -> int:
        """The escalation ladder's due steps (bot/escalation.py): widen, escalate, count a miss."""
        return await escalation.run_due(self, limit)

    async def complete_due(self, limit: int = 200) -> int:
        """Sessions that ended (+10 min) are completed; the student is asked for a rating."""
        now = self.clock.now()
        count = 0
        async with self.db.transaction() as session:
            for session_id in await repo.due_session_ids(session, now - COMPLETE_AFTER_END, limit):
                request_id = await repo.session_request_id(session, session_id)
                view = await repo.request_view(session, request_id) if request_id else None
                if view is None or view.session is None or view.session.id != session_id:
                    continue
                if await self._complete_session(session, view, SessionStatus.COMPLETED, now):
                    count += 1
        if count:
            self._owed()
        return count

    async def digest_due(self) -> int:
        """Today's digest for each feed, once DIGEST_TIME has passed (bot/digest.py)."""
        return await digest.owe_due(self)

    # Stats -------------------------------------------------------------------------------

    async def stats_allowed(self, actor: Actor) -> Refused | None:
        return authorize(Act.STATS, actor)


async def _owe_outcome(
    session: AsyncSession, after: RequestView, outcome: SessionStatus, now: datetime
) -> None:
    """The student's DM once a session is over: the rating prompt, or the no-show notice."""
    assert after.session is not None
    await owe_dm(
        session,
        request=after,
        to=after.student,
        kind=Kind.RATING_PROMPT if outcome is SessionStatus.COMPLETED else Kind.NO_SHOW,
        now=now,
        key=f"session:{after.session.id}",
        session_id=after.session.id,
    )


DAY_BEFORE = timedelta(hours=24)
END_OF_DAY = "23:59"  # how an availability window ending at 24:00 is stored (forms._clock_time)


def day_before_offset(offsets: list[timedelta]) -> timedelta | None:
    """The reminder that carries "Can't make it": the 24-hour one, or else the largest offset
    under 24 hours (so `REMINDER_OFFSETS=2h,15m` puts it on the 2-hour reminder)."""
    return max((o for o in offsets if o <= DAY_BEFORE), default=None)


def _repost_input(old: RequestView, now: datetime, tz_name: str) -> forms.RequestInput:
    """The copy of an expired or cancelled request: the same request, on the student's own dates
    from today while a session still fits in them (never past the last day they said they are
    free); once not, the same span again from today, at least a week (at most the form's range)."""
    today = now.astimezone(forms.zone(tz_name)).date()
    if _session_fits(old.available_until, tz_name, old.duration_minutes, now):
        start, end = max(old.available_from, today), old.available_until
    else:
        span = (old.available_until - old.available_from).days
        start, end = today, today + timedelta(days=max(span, 7))
    return forms.RequestInput(
        title=old.title,
        session_type=old.session_type,
        description=old.description,
        duration_minutes=old.duration_minutes,
        available_from=start,
        available_until=min(end, start + timedelta(days=forms.MAX_RANGE_DAYS)),
        urgency=old.urgency,
        tags=old.tags,
    )


def _cancel_ics(booked: RequestView, now: datetime) -> dict[str, str]:
    """The file that removes the booked session from a calendar, made when it is called off (as
    `payload["ics"]`): by delivery the request may have a newer session (booked again, or
    released and claimed again), which is not the one to remove. Empty when nothing was booked."""
    live = booked.session
    if live is None or live.status is not SessionStatus.SCHEDULED:
        return {}
    return {"ics": ics_file(booked, live, now, cancel=True).decode()}


def booking_token(view: RequestView) -> str:
    """The booked session and its version ("0" if none): a schedule form carries it from opening
    to submitting, so it can tell whether the booking changed in between."""
    live = view.session if view.session and view.session.status is SessionStatus.SCHEDULED else None
    return f"{live.id}_{live.schedule_version}" if live else "0"  # fits Discord's custom-id pattern


def _minutes(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _soonest_first(request: RequestView) -> tuple[bool, datetime]:
    """Booked sessions by their time, then the claims with no time yet, oldest claim first."""
    if request.status is Status.SCHEDULED and request.session is not None:
        return (False, request.session.starts_at)
    return (True, request.claimed_at or request.created_at)


def _dates_end(available_until: date, tz_name: str) -> datetime:
    """The end of the student's last free day, in their zone."""
    return datetime.combine(available_until + timedelta(days=1), time(0), forms.zone(tz_name)).astimezone(UTC)


def _session_fits(available_until: date, tz_name: str, duration_minutes: int, now: datetime) -> bool:
    """Whether a session of this length can still end before the student's dates do."""
    return now + timedelta(minutes=duration_minutes) <= _dates_end(available_until, tz_name)


def compute_slots(
    windows: list[Availability],
    start: datetime,
    end: datetime,
    duration: timedelta,
    busy: list[tuple[datetime, datetime]],
    *,
    earliest: datetime,
    leave_out: Iterable[datetime] = (),
) -> list[Slot]:
    """Every SLOT_STEP-aligned slot of `duration` inside a weekly window (in the window's own
    zone, so daylight-saving changes keep 18:00 at 18:00), inside [start, end), after `earliest`,
    overlapping no busy span, and starting at none of `leave_out`."""
    slots: list[Slot] = []
    if not windows:
        return slots
    # Windows saved before overlaps were merged may repeat a slot; `leave_out` counts as seen.
    seen: set[datetime] = set(leave_out)
    # Local days of the window's zone that can touch [start, end): zones are up to 26 hours
    # apart (Kiritimati, UTC+14, and Pago Pago, UTC-11, are 25), so a day either side of the
    # UTC dates.
    day = start.astimezone(UTC).date() - timedelta(days=1)
    while day <= end.astimezone(UTC).date() + timedelta(days=1) and len(slots) < MAX_SLOTS:
        for window in windows:
            if window.weekday != day.weekday():
                continue
            zone = forms.zone(window.timezone)
            # Stepped in UTC: aware arithmetic in one zone is wall-clock arithmetic, which on a
            # daylight-saving night gives repeated slots and slots that end before they start.
            w_start = datetime.combine(day, time.fromisoformat(window.start), zone).astimezone(UTC)
            # "…-24:00" is stored as 23:59, a clock time: the window still runs to midnight.
            w_end = (
                datetime.combine(day + timedelta(days=1), time(0), zone)
                if window.end == END_OF_DAY
                else datetime.combine(day, time.fromisoformat(window.end), zone)
            ).astimezone(UTC)
            cursor = w_start
            while cursor + duration <= w_end:
                slot_end = cursor + duration
                if (
                    cursor >= start
                    and slot_end <= end
                    and cursor >= earliest
                    and cursor not in seen
                    and not any(b_start < slot_end and b_end > cursor for b_start, b_end in busy)
                ):
                    seen.add(cursor)
                    slots.append(Slot(cursor.astimezone(UTC), slot_end.astimezone(UTC)))
                cursor += SLOT_STEP
        day += timedelta(days=1)
    slots.sort(key=lambda s: s.starts_at)
    return slots[:MAX_SLOTS]
