"""Buttons and modal submissions: Discord payload → Actor + plain values → core call → reply.

- Who is acting is decided here, server-side, on every click: a mentor holds
  DISCORD_MENTOR_ROLE_ID; an admin is in ADMIN_USER_IDS or has the Administrator permission.
  A click in a DM has no server: the request says which server, and the member is fetched there.
- Acknowledge first: a modal, or an ephemeral "thinking" defer; then the work; then a reply.
- A form the core rejects is answered with exactly what to fix and an "Edit and resubmit"
  button that reopens it with what was typed (kept in memory; after a restart it reopens empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import discord

from bot.authz import NOT_FOUND, Act, authorize
from bot.domain import Actor, Invalid, Ok, Refused, RequestView, Result, SessionStatus, Slot, Status
from bot.messages import Action, Button
from bot.workflow import Mentorship, booking_token
from modals import forms
from modals.discord import (
    NO_PINGS,
    OOPS,
    RequestChoices,
    availability_modal,
    button_view,
    escape,
    fix_view,
    form_errors,
    modal_values,
    none_work_modal,
    profile_modal,
    propose_modal,
    request_item,
    request_modal,
    review_modal,
    schedule_modal,
    session_form_modal,
    timestamp,
)

if TYPE_CHECKING:
    from handlers.discord import MentorBot

log = logging.getLogger(__name__)

PREPARE_TIMEOUT = 2.0  # a modal must be the first answer, within Discord's 3 s
FORMS = {
    spec.id: spec
    for spec in (
        forms.REQUEST_FORM,
        forms.SCHEDULE_FORM,
        forms.REVIEW_FORM,
        forms.AVAILABILITY_FORM,
        forms.PROPOSE_FORM,
        forms.NONE_WORK_FORM,
        forms.PROFILE_FORM,
        forms.RESCHEDULE_ASK_FORM,
        forms.CANT_MAKE_IT_FORM,
    )
}


def _opened_for(parts: list[str]) -> str | None:
    """The booking token after a schedule form's request id ("schedule:<id>:<token>"), if any."""
    token = parts[1] if len(parts) > 1 else ""
    return token if token and all(p.isdigit() for p in token.split("_")) else None


class Replies:
    """Ephemeral answers that never ping anyone, whether or not the interaction was deferred."""

    @staticmethod
    async def ack(interaction: discord.Interaction[Any]) -> bool:
        """An ephemeral "thinking…" within the 3 s; False when Discord no longer takes it."""
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException:
            log.warning("could not acknowledge interaction %s", interaction.id, exc_info=True)
            return False
        return True

    @staticmethod
    async def send(
        interaction: discord.Interaction[Any],
        content: str | None = None,
        *,
        embed: discord.Embed | None = None,
        embeds: list[discord.Embed] | None = None,
        view: discord.ui.View | None = None,
        file: discord.File | None = None,
        files: list[discord.File] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"ephemeral": True, "allowed_mentions": NO_PINGS}
        if content:
            kwargs["content"] = content
        if embed is not None:
            kwargs["embed"] = embed
        if embeds:
            kwargs["embeds"] = embeds[:10]
        if view is not None:
            kwargs["view"] = view
        if file is not None:
            kwargs["file"] = file
        if files:
            kwargs["files"] = files[:10]
        if interaction.response.is_done():
            await interaction.followup.send(**kwargs)
        else:
            await interaction.response.send_message(**kwargs)

    @staticmethod
    async def oops(interaction: discord.Interaction[Any], view: discord.ui.View | None = None) -> None:
        try:
            await Replies.send(interaction, OOPS, view=view)
        except discord.HTTPException:
            log.warning("could not tell the user something went wrong", exc_info=True)


class Drafts:
    """What people typed into forms the core rejected, so "Edit and resubmit" can refill them."""

    def __init__(self, capacity: int = 500) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, dict[str, str]] = OrderedDict()

    def put(self, values: Mapping[str, str]) -> str:
        token = secrets.token_hex(4)
        self._items[token] = dict(values)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> dict[str, str]:
        return dict(self._items.get(token, {}))


# A release once the student's dates are over expires the request rather than reopening it.
RELEASED_AFTER_DATES = (
    "You released request #{id}. The student's dates are over, so it has expired; they can post it again."
)
CONFIRMATIONS = {
    Action.CLAIM: "You claimed request #{id}. Next, **Propose times** or **Schedule directly**.",
    Action.RELEASE: "You released request #{id}; it's back in the mentors' feed.",
    Action.CANCEL: "Request #{id} is cancelled.",
    Action.CANCEL_SESSION: "The session for request #{id} is cancelled. The request is still yours: "
    "schedule a new time when you can.",
    Action.COMPLETE: "Request #{id} is marked done. The student will be asked for a rating.",
    Action.NO_SHOW: "Recorded a no-show for request #{id}.",
    Action.REPOST: "Posted again as request #{id}. Mentors have been told.",
    Action.RATE: "Thanks for rating your session {stars}! You can add a few words too.",
    Action.KEEP_TIME: "Kept the time for request #{id}; the student has been told.",
}
# The forms behind session buttons: Ask to reschedule, Can't make it.
SESSION_FORMS = {
    Action.ASK_RESCHEDULE: forms.RESCHEDULE_ASK_FORM,
    Action.CANT_MAKE_IT: forms.CANT_MAKE_IT_FORM,
}


SESSION_FORM_KINDS = ("reschedule_ask", "cant_make_it")

T = TypeVar("T")


def submission_key(interaction: discord.Interaction[Any]) -> str:
    """Discord's identity of one modal submission: its interaction id. The same interaction
    delivered again (a gateway replay after a resume, a second replica) takes effect once."""
    return f"discord:interaction:{interaction.id}"


class Components:
    def __init__(self, bot: MentorBot) -> None:
        self.bot = bot
        self.drafts = Drafts()

    @property
    def mentorship(self) -> Mentorship:
        return self.bot.runtime.mentorship

    # Who is acting ---------------------------------------------------------------------------

    def make_actor(self, workspace: str, user: discord.abc.User, member: discord.Member | None) -> Actor:
        settings = self.bot.settings
        role_id = settings.discord_mentor_role_id
        is_mentor = member is not None and role_id is not None and member.get_role(role_id) is not None
        is_admin = str(user.id) in settings.admin_ids or (
            member is not None and member.guild_permissions.administrator
        )
        return Actor(
            platform="discord",
            workspace=workspace,
            user_id=str(user.id),
            display_name=(member or user).display_name,
            timezone=None,  # Discord doesn't say; the core uses the zone set with /mini-session timezone
            is_mentor=is_mentor,
            is_admin=is_admin,
        )

    def guild_actor(self, interaction: discord.Interaction[Any]) -> Actor | None:
        if interaction.guild_id is None:
            return None
        member = interaction.user if isinstance(interaction.user, discord.Member) else None
        return self.make_actor(str(interaction.guild_id), interaction.user, member)

    async def actor_for(self, interaction: discord.Interaction[Any], request_id: int) -> Actor | None:
        """In a server, from the payload; in a DM, from the request's server and a member fetch."""
        actor = self.guild_actor(interaction)
        if actor is not None:
            return actor
        scope = await self.mentorship.workspace_of(request_id)
        if scope is None or scope[0] != "discord" or not scope[1].isdigit():
            return None
        member: discord.Member | None = None
        guild = self.bot.get_guild(int(scope[1]))
        if guild is not None:
            member = guild.get_member(interaction.user.id)
            if member is None:
                try:
                    member = await guild.fetch_member(interaction.user.id)
                except discord.NotFound:
                    member = None  # left the server: acts with no roles
        return self.make_actor(scope[1], interaction.user, member)

    async def quick_refusal(self, actor: Actor) -> Refused | None:
        """Whether a new request would be refused (at the cap), if the database answers at once;
        if not, the form opens and submitting it checks."""
        try:
            return await asyncio.wait_for(self.mentorship.request_refusal(actor), PREPARE_TIMEOUT / 4)
        except Exception:
            log.warning("no request-cap check for %s in time; opening the form", actor.user_id, exc_info=True)
            return None

    async def quick_rating(self, interaction: discord.Interaction[Any], request_id: int) -> int | None:
        """The stars already given to this session, if the database answers at once."""
        try:
            actor = await asyncio.wait_for(self.actor_for(interaction, request_id), PREPARE_TIMEOUT / 4)
            if actor is None:
                return None
            found = await asyncio.wait_for(
                self.mentorship.get_request(actor, request_id), PREPARE_TIMEOUT / 4
            )
        except Exception:
            log.warning("no rating for request %s in time; the review form starts empty", request_id)
            return None
        if isinstance(found, Ok) and found.value.session is not None:
            return found.value.session.rating
        return None

    async def quick_timezone(self, actor: Actor) -> str:
        """The member's zone if the database answers at once; the default otherwise."""
        try:
            _, tz = await asyncio.wait_for(self.mentorship.get_availability(actor), PREPARE_TIMEOUT / 2)
            return str(tz)
        except Exception:
            log.warning("no time zone for %s in time; using the default", actor.user_id, exc_info=True)
            return self.bot.settings.default_timezone

    # Plumbing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def timed(self, interaction: discord.Interaction[Any]) -> Iterator[None]:
        """Time handling an interaction into the interactions histogram, by its Discord type."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.bot.runtime.metrics.interactions.labels(
                platform="discord", kind=interaction.type.name
            ).observe(time.perf_counter() - started)

    async def guarded(self, interaction: discord.Interaction[Any], work: Coroutine[Any, Any, Any]) -> None:
        """Run a handler; anything unexpected (the database away…) becomes a polite ephemeral."""
        with self.timed(interaction):
            try:
                await work
            except Exception:
                log.exception("interaction %s failed", interaction.id)
                await Replies.oops(interaction)

    async def reply_result(
        self,
        interaction: discord.Interaction[Any],
        actor: Actor,
        result: Ok[RequestView] | Refused | Invalid,
        confirmation: str,
        *,
        extra_buttons: tuple[Button, ...] = (),
    ) -> None:
        if isinstance(result, Ok) and isinstance(result.value, RequestView):
            item = request_item(result.value, actor.user_id)
            view = item.view
            if extra_buttons:
                view = button_view(extra_buttons, view=view)
            await Replies.send(interaction, confirmation, embed=item.embed, view=view)
        elif isinstance(result, Refused):
            await Replies.send(interaction, escape(result.message))
        elif isinstance(result, Invalid):
            await Replies.send(interaction, "\n".join(escape(m) for m in result.errors.values()))
        else:
            await Replies.send(interaction, confirmation)

    # Buttons ---------------------------------------------------------------------------------

    async def on_action(self, interaction: discord.Interaction[Any], action: Action, value: str) -> None:
        request_id, _, extra = value.partition(":")
        rid = int(request_id)
        if action in (Action.SCHEDULE, Action.RESCHEDULE):
            await self.guarded(
                interaction,
                self.open_schedule(interaction, rid, {}, rescheduling=action is Action.RESCHEDULE),
            )
            return
        if action is Action.REVIEW:
            stars = await self.quick_rating(interaction, rid)  # the form starts at the stars given
            values = {"rating": str(stars)} if stars else {}
            await self.guarded(interaction, interaction.response.send_modal(review_modal(rid, values)))
            return
        if action is Action.PROPOSE:
            await self.guarded(interaction, self.open_propose(interaction, rid, {}))
            return
        if action is Action.NONE_WORK and extra.isdigit():
            # Who may refuse is checked on submit; the modal must be the first answer.
            await self.guarded(
                interaction, interaction.response.send_modal(none_work_modal(rid, int(extra), {}))
            )
            return
        session_part, _, version_part = extra.partition(":")
        if action in SESSION_FORMS and session_part.isdigit() and version_part.isdigit():
            # Who may ask and whether the time is still current are checked on submit.
            modal = session_form_modal(SESSION_FORMS[action], rid, int(session_part), int(version_part), {})
            await self.guarded(interaction, interaction.response.send_modal(modal))
            return
        if action is Action.ASK_PROPOSE and extra.isdigit():
            await self.guarded(interaction, self.open_propose(interaction, rid, {}, ask_id=int(extra)))
            return
        if not await Replies.ack(interaction):
            return
        await self.guarded(interaction, self._act(interaction, action, rid, extra))

    async def _act(self, interaction: discord.Interaction[Any], action: Action, rid: int, extra: str) -> None:
        actor = await self.actor_for(interaction, rid)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        m = self.mentorship
        calls = {
            Action.CLAIM: m.claim,
            Action.RELEASE: m.release,
            Action.CANCEL: m.cancel,
            Action.CANCEL_SESSION: m.cancel_session,
            Action.COMPLETE: m.complete,
            Action.NO_SHOW: m.no_show,
            Action.REPOST: m.repost,
        }
        extra_buttons: tuple[Button, ...] = ()
        stars = ""
        if action is Action.PICK_TIME:
            proposal, _, index = extra.partition(":")
            picked = await m.pick_time(actor, rid, int(proposal or 0), int(index or -1))
            await self.reply_result(
                interaction, actor, picked, f"Booked request #{rid}. You'll both get the invite in a DM."
            )
            return
        if action is Action.KEEP_TIME:
            result = await m.keep_time(actor, rid, int(extra or 0))
            await self.reply_result(interaction, actor, result, CONFIRMATIONS[action].format(id=rid))
            return
        if action in SESSION_FORMS or action is Action.ASK_PROPOSE:
            await Replies.send(interaction, "That button is out of date; nothing changed.")
            return
        if action is Action.RATE:
            rating = forms.parse_rating(extra) or 0
            stars = "★" * rating + "☆" * (5 - rating)
            result = await m.rate(actor, rid, rating)
            extra_buttons = (Button("Write a review", Action.REVIEW, str(rid), "primary"),)
        else:
            result = await calls[action](actor, rid)
        new_id = result.value.id if isinstance(result, Ok) else rid
        confirmation = CONFIRMATIONS[action].format(id=new_id, stars=stars)
        if action is Action.RELEASE and isinstance(result, Ok) and result.value.status is Status.EXPIRED:
            confirmation = RELEASED_AFTER_DATES.format(id=new_id)
        await self.reply_result(interaction, actor, result, confirmation, extra_buttons=extra_buttons)

    async def on_fix(self, interaction: discord.Interaction[Any], token: str, form: str) -> None:
        values = self.drafts.get(token)
        kind, *parts = form.split(":")
        work: Coroutine[Any, Any, Any]
        if kind == "request" and (choices := RequestChoices.parse(parts)) is not None:
            work = self.open_request(interaction, choices, values)
        elif kind == "schedule" and parts and parts[0].isdigit():
            opened = _opened_for(parts)  # a booked session's token: it was the Reschedule form
            work = self.open_schedule(
                interaction, int(parts[0]), values, rescheduling=opened not in (None, "0"), opened_for=opened
            )
        elif kind == "review" and parts and parts[0].isdigit():
            work = interaction.response.send_modal(review_modal(int(parts[0]), values))
        elif kind == "propose" and parts and all(p.isdigit() for p in parts[:2]):
            ask = int(parts[1]) if len(parts) > 1 else None
            work = self.open_propose(interaction, int(parts[0]), values, ask_id=ask)
        elif (
            kind in ("reschedule_ask", "cant_make_it") and len(parts) == 3 and all(p.isdigit() for p in parts)
        ):
            rid, sid, version = map(int, parts)
            work = interaction.response.send_modal(session_form_modal(FORMS[kind], rid, sid, version, values))
        elif kind == "none_work" and len(parts) == 2 and all(p.isdigit() for p in parts):
            work = interaction.response.send_modal(none_work_modal(int(parts[0]), int(parts[1]), values))
        elif kind == "availability":
            work = self.open_availability(interaction, values)
        elif kind == "profile":
            work = self.open_profile(interaction, values)
        else:
            work = Replies.send(interaction, "That form is no longer available.")
        await self.guarded(interaction, work)

    # Opening forms (the modal is the first answer, so only quick reads happen before it) ------

    async def open_request(
        self, interaction: discord.Interaction[Any], choices: RequestChoices, values: Mapping[str, str]
    ) -> None:
        actor = self.guild_actor(interaction)
        if actor is None:
            await Replies.send(interaction, "Please ask for a session from the server, not a DM.")
            return
        home = self.bot.home_guild_id()
        if home is not None and interaction.guild_id != home:
            await Replies.send(interaction, "This server isn't set up for Mini Mentorship.")
            return
        if refused := await self.quick_refusal(actor):
            await Replies.send(interaction, refused.message)  # before the form, not after it is filled in
            return
        tz = await self.quick_timezone(actor)
        today = self.mentorship.today_for(tz)
        await interaction.response.send_modal(request_modal(choices, values, tz=tz, today=today))

    async def open_schedule(
        self,
        interaction: discord.Interaction[Any],
        request_id: int,
        values: Mapping[str, str],
        *,
        rescheduling: bool = False,
        opened_for: str | None = None,
    ) -> None:
        """Suggested slots (the mentor's availability ∩ the student's dates) or a typed time.
        Who may schedule is checked now and again on submit; so is the booking the form was
        opened for (`opened_for`, kept when the form comes back to be fixed)."""
        try:
            prepared = await asyncio.wait_for(
                self._schedule_prep(interaction, request_id, booking=opened_for is None), PREPARE_TIMEOUT
            )
        except TimeoutError:
            log.warning("slot suggestions for request %s took too long; opening without", request_id)
            prepared = ([], "", None, "")  # no slots; the zone unknown, not named
        if isinstance(prepared, Refused):
            await Replies.send(interaction, escape(prepared.message))
            return
        slots, tz, booked, note = prepared
        if note and not values:  # a reschedule shows the session's note, to keep, change or empty
            values = {"note": note}
        modal = schedule_modal(
            request_id, slots, values, tz=tz, rescheduling=rescheduling, opened_for=opened_for or booked
        )
        await interaction.response.send_modal(modal)

    async def open_propose(
        self,
        interaction: discord.Interaction[Any],
        request_id: int,
        values: Mapping[str, str],
        *,
        ask_id: int | None = None,
    ) -> None:
        """The propose form, pre-filled from the same suggestions as the schedule form; for an
        ask to reschedule, only while the ask can still be answered (checked again on submit)."""
        try:
            prepared = await asyncio.wait_for(
                self._schedule_prep(interaction, request_id, ask_id), PREPARE_TIMEOUT
            )
        except TimeoutError:
            log.warning("slot suggestions for request %s took too long; opening without", request_id)
            prepared = ([], "", None, "")  # no slots; the zone unknown, not named
        if isinstance(prepared, Refused):
            await Replies.send(interaction, escape(prepared.message))
            return
        slots, tz, _, _ = prepared
        await interaction.response.send_modal(propose_modal(request_id, slots, values, tz=tz, ask_id=ask_id))

    async def _schedule_prep(
        self,
        interaction: discord.Interaction[Any],
        request_id: int,
        ask_id: int | None = None,
        *,
        booking: bool = False,
    ) -> tuple[list[Slot], str, str | None, str] | Refused:
        """Slots and zone for the form; with `booking`, also the booking it is opened for and
        that session's note."""
        actor = await self.actor_for(interaction, request_id)
        if actor is None:
            return NOT_FOUND
        if ask_id is not None:
            checked = await self.mentorship.check_ask(actor, request_id, ask_id)
            if isinstance(checked, Refused):
                return checked
        suggested, (_, tz) = await asyncio.gather(
            self.mentorship.suggest_slots(actor, request_id), self.mentorship.get_availability(actor)
        )
        if isinstance(suggested, Refused):
            return suggested
        booked, note = None, ""
        if booking and isinstance(found := await self.mentorship.get_request(actor, request_id), Ok):
            booked = booking_token(found.value)
            live = found.value.session
            if live is not None and live.status is SessionStatus.SCHEDULED:
                note = live.note
        slots = list(suggested.value) if isinstance(suggested, Ok) else []
        return slots, str(tz), booked, note

    async def _allowed(self, interaction: discord.Interaction[Any], act: Act) -> Actor | None:
        """The actor, if they may open this form; else they are told why and None is returned."""
        actor = self.guild_actor(interaction)
        refused = authorize(act, actor) if actor is not None else NOT_FOUND
        if refused is not None or actor is None:
            await Replies.send(interaction, escape(refused.message if refused else NOT_FOUND.message))
            return None
        return actor

    async def open_availability(
        self, interaction: discord.Interaction[Any], values: Mapping[str, str] | None
    ) -> None:
        actor = await self._allowed(interaction, Act.AVAILABILITY)
        if actor is None:
            return
        if not values:
            try:
                windows, tz = await asyncio.wait_for(
                    self.mentorship.get_availability(actor), PREPARE_TIMEOUT / 2
                )
                values = {"windows": forms.format_availability(windows), "timezone": str(tz)}
            except Exception:
                log.warning("couldn't load availability in time; opening the form empty", exc_info=True)
                values = {"timezone": self.bot.settings.default_timezone}
        await interaction.response.send_modal(availability_modal(values))

    async def open_profile(
        self, interaction: discord.Interaction[Any], values: Mapping[str, str] | None
    ) -> None:
        actor = await self._allowed(interaction, Act.PROFILE)
        if actor is None:
            return
        if not values:
            try:
                profile = await asyncio.wait_for(self.mentorship.profile(actor), PREPARE_TIMEOUT / 2)
                values = {
                    "skills": ", ".join(profile.skills),
                    "capacity": str(profile.capacity),
                    "away_until": profile.away_until.isoformat() if profile.away_until else "",
                }
            except Exception:
                log.warning("couldn't load the profile in time; opening the form empty", exc_info=True)
                values = {}
        await interaction.response.send_modal(profile_modal(values))

    # Modal submissions -------------------------------------------------------------------------

    async def on_modal_submit(self, interaction: discord.Interaction[Any]) -> None:
        with self.timed(interaction):
            await self._on_modal_submit(interaction)

    async def _on_modal_submit(self, interaction: discord.Interaction[Any]) -> None:
        data: Mapping[str, Any] = interaction.data or {}  # type: ignore[assignment]
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith("mm:form:"):
            return
        form = custom_id.removeprefix("mm:form:")
        values = modal_values(data)
        kind, *parts = form.split(":")
        if not await Replies.ack(interaction):
            return
        try:
            if kind == "request" and (choices := RequestChoices.parse(parts)) is not None:
                await self._submit_request(interaction, choices, values)
            elif kind == "schedule" and parts and parts[0].isdigit():
                await self._submit_schedule(interaction, int(parts[0]), values, _opened_for(parts))
            elif kind == "review" and parts and parts[0].isdigit():
                await self._submit_review(interaction, int(parts[0]), values)
            elif kind == "propose" and parts and all(p.isdigit() for p in parts[:2]):
                ask = int(parts[1]) if len(parts) > 1 else None
                await self._submit_proposal(interaction, form, int(parts[0]), None, values, ask_id=ask)
            elif kind in SESSION_FORM_KINDS and len(parts) == 3 and all(p.isdigit() for p in parts):
                rid, sid, version = map(int, parts)
                await self._submit_session_form(interaction, form, kind, rid, sid, version, values)
            elif kind == "none_work" and len(parts) == 2 and all(p.isdigit() for p in parts):
                await self._submit_proposal(interaction, form, int(parts[0]), int(parts[1]), values)
            elif kind == "availability":
                await self._submit_availability(interaction, values)
            elif kind == "profile":
                await self._submit_profile(interaction, values)
            else:
                await Replies.send(interaction, "That form is no longer available.")
        except Exception:
            # Keep what they typed: the database may be back in a moment.
            log.exception("form %s failed", form)
            await Replies.oops(interaction, view=fix_view(self.drafts.put(values), form, "Try again"))

    async def _rejected(
        self,
        interaction: discord.Interaction[Any],
        form: str,
        errors: Mapping[str, str],
        values: dict[str, str],
    ) -> None:
        spec = FORMS[form.split(":")[0]]
        token = self.drafts.put(values)
        await Replies.send(interaction, form_errors(spec, errors, values), view=fix_view(token, form))

    async def _submit_request(
        self, interaction: discord.Interaction[Any], choices: RequestChoices, values: dict[str, str]
    ) -> None:
        actor = self.guild_actor(interaction)
        if actor is None:
            await Replies.send(interaction, "Please ask for a session from the server, not a DM.")
            return
        result = await self.mentorship.create_request(
            actor, {**values, **choices.values()}, once=submission_key(interaction)
        )
        if isinstance(result, Invalid):
            await self._rejected(interaction, choices.form, result.errors, values)
            return
        confirmation = ""
        if isinstance(result, Ok):
            confirmation = (
                f"Your request #{result.value.id} is posted to the mentors. I'll DM you when one claims it."
            )
        await self.reply_result(interaction, actor, result, confirmation)

    async def _submit_schedule(
        self,
        interaction: discord.Interaction[Any],
        request_id: int,
        values: dict[str, str],
        opened_for: str | None,
    ) -> None:
        actor = await self.actor_for(interaction, request_id)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        result = await self.mentorship.schedule(
            actor, request_id, values, once=submission_key(interaction), opened_for=opened_for
        )
        if isinstance(result, Invalid):
            form = f"schedule:{request_id}" + (f":{opened_for}" if opened_for else "")
            await self._rejected(interaction, form, result.errors, values)
            return
        confirmation = ""
        if isinstance(result, Ok) and result.value.session is not None:
            starts = result.value.session.starts_at
            if opened_for not in (None, "0") and booking_token(result.value) == opened_for:
                # The same time, link and note it already had: the core changed nothing, sent nothing.
                confirmation = (
                    f"Nothing changed: request #{request_id} is already at {timestamp(starts)} "
                    "with that link, so nobody was messaged."
                )
            else:
                confirmation = (
                    f"Scheduled request #{request_id} for {timestamp(starts)} ({timestamp(starts, 'R')}). "
                    "You'll both get a DM with the link and a calendar file."
                )
        await self.reply_result(interaction, actor, result, confirmation)

    async def _submit_proposal(
        self,
        interaction: discord.Interaction[Any],
        form: str,
        request_id: int,
        proposal_id: int | None,
        values: dict[str, str],
        *,
        ask_id: int | None = None,
    ) -> None:
        """Times proposed by the mentor (no proposal id), or the student's "none of these work"."""
        actor = await self.actor_for(interaction, request_id)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        if proposal_id is None and ask_id is not None:
            result = await self.mentorship.propose_for_ask(
                actor, request_id, ask_id, values, once=submission_key(interaction)
            )
            confirmation = f"Sent new times for request #{request_id}; the current time holds until a pick."
        elif proposal_id is None:
            result = await self.mentorship.propose_times(
                actor, request_id, values, once=submission_key(interaction)
            )
            confirmation = f"Sent your times for request #{request_id}; I'll DM you when the student picks."
        else:
            result = await self.mentorship.none_work(actor, request_id, proposal_id, values)
            confirmation = "Your mentor has been told and can propose other times."
        if isinstance(result, Invalid):
            await self._rejected(interaction, form, result.errors, values)
            return
        await self.reply_result(interaction, actor, result, confirmation)

    async def _submit_session_form(
        self,
        interaction: discord.Interaction[Any],
        form: str,
        kind: str,
        request_id: int,
        session_id: int,
        version: int,
        values: dict[str, str],
    ) -> None:
        """Ask to reschedule, or Can't make it: both name the session and its version."""
        actor = await self.actor_for(interaction, request_id)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        once = submission_key(interaction)
        if kind == "reschedule_ask":
            result = await self.mentorship.ask_reschedule(
                actor, request_id, session_id, version, values, once=once
            )
            confirmation = (
                "Your mentor has been asked, with your reason. Until they answer, the session stays."
            )
        else:
            result = await self.mentorship.cant_make_it(
                actor, request_id, session_id, version, values, once=once
            )
            confirmation = (
                "The session is cancelled and the other person told; your DMs have the calendar update."
            )
        if isinstance(result, Invalid):
            await self._rejected(interaction, form, result.errors, values)
            return
        await self.reply_result(interaction, actor, result, confirmation)

    async def _submit_review(
        self, interaction: discord.Interaction[Any], request_id: int, values: dict[str, str]
    ) -> None:
        actor = await self.actor_for(interaction, request_id)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        parsed = forms.parse_review(values)
        if isinstance(parsed, dict):
            await self._rejected(interaction, f"review:{request_id}", parsed, values)
            return
        rating, review = parsed
        result = await self.mentorship.rate(
            actor, request_id, rating, review, once=submission_key(interaction)
        )
        if isinstance(result, Invalid):
            await self._rejected(interaction, f"review:{request_id}", result.errors, values)
            return
        await self.reply_result(interaction, actor, result, "Thank you for your feedback!")

    async def _saved(
        self, interaction: discord.Interaction[Any], form: str, values: dict[str, str], result: Result[T]
    ) -> T | None:
        """What a settings form saved, or None once the errors or the refusal have been answered."""
        if isinstance(result, Invalid):
            await self._rejected(interaction, form, result.errors, values)
            return None
        if isinstance(result, Refused):
            await Replies.send(interaction, escape(result.message))
            return None
        return result.value

    async def _submit_profile(self, interaction: discord.Interaction[Any], values: dict[str, str]) -> None:
        actor = self.guild_actor(interaction)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        profile = await self._saved(
            interaction, "profile", values, await self.mentorship.save_profile(actor, values)
        )
        if profile is not None:
            await Replies.send(interaction, f"Saved: {escape(profile.summary)}.")

    async def _submit_availability(
        self, interaction: discord.Interaction[Any], values: dict[str, str]
    ) -> None:
        actor = self.guild_actor(interaction)
        if actor is None:
            await Replies.send(interaction, NOT_FOUND.message)
            return
        saved = await self._saved(
            interaction, "availability", values, await self.mentorship.set_availability(actor, values)
        )
        if saved is None:
            return
        windows = forms.format_availability(saved)
        tz = values.get("timezone", "").strip()
        text = (
            f"Saved: {escape(windows)} ({escape(tz)}). I'll suggest times from these when you schedule."
            if windows
            else f"Cleared your weekly availability. Your time zone is {escape(tz)}."
        )
        await Replies.send(interaction, text)
