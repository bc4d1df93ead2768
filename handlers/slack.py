"""The Slack adapter: Bolt listeners that turn slash commands, clicks and form submissions into
core calls with plain values, and render what comes back (Block Kit lives in modals/slack.py).

Acknowledge first: every listener acks at once (Bolt runs with process_before_response, so the
ack is the HTTP answer) and hands the work to a tracked background task; only form submissions
do their work before answering, because field errors must go back in the answer itself.
Problems are reported to the person ephemerally; a failure (the database away, Slack down)
never crashes a listener.

Public API (the CLI relies on it): build_app, runtime_of, web_app, serve, SlackSender, manifest;
`idle(app)` waits for background work (tests, graceful shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot import insight
from bot.authz import Act, authorize
from bot.charts import ChartSet
from bot.config import Settings
from bot.domain import Actor, Invalid, Ok, Refused, RequestView, SessionStatus, Status
from bot.messages import Action
from bot.metrics import healthz_view, metrics_view
from bot.profiles import ProfileView
from bot.runtime import Runtime
from bot.workflow import Mentorship, booking_token
from handlers.slack_directory import Directory
from handlers.slack_http import SlackHTTP
from handlers.slack_manifest import manifest
from handlers.slack_sender import SlackSender, make_client
from modals import forms
from modals import slack as ui
from modals.slack_mrkdwn import escape

__all__ = ["SlackSender", "build_app", "idle", "manifest", "runtime_of", "serve", "web_app"]

log = logging.getLogger(__name__)


class _NoTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that the client we
    give it (made from that same token) wins; there is no argument that avoids it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_NoTokenWarning())

COMMAND = "/mini-session"
ACTION_ID = re.compile(r"^mm_(" + "|".join(a.value for a in Action) + r")(?:\.\d+)?$")
SHUTDOWN_GRACE = 5.0
CUT_SHORT_GRACE = 2.0  # then, for work cut short to say "try again"
# Background interactions doing their work at once. Acks don't wait for the work, so a burst can
# start thousands; unbounded, they all queue for a database connection and those waiting longer
# than the pool's timeout fail ("try again"). Bounded below the pool size, the rest wait here,
# without a timeout, and are merely late.
MAX_CONCURRENT_WORK = 20
# Request ids are 32-bit integers in the database; a bigger one from a forged button or form is
# no request at all, rather than an error out of the driver.
MAX_ID = 2**31 - 1

# What the clicker is told after a use case succeeds (the card and DMs tell everyone else).
# A release once the student's dates are over expires the request rather than reopening it.
RELEASED_AFTER_DATES = (
    "You released “{title}”. The student's dates are over, so it has expired; they can post it again."
)
CONFIRMATIONS: dict[Action, str] = {
    Action.CLAIM: "✅ You claimed “{title}”. Propose times on the card or schedule directly; "
    "the student has been told.",
    Action.RELEASE: "You released “{title}”. It's back in the mentors' feed.",
    Action.CANCEL: "Your request “{title}” is cancelled.",
    Action.CANCEL_SESSION: "The session for “{title}” is cancelled and the student has been told. "
    "Use Propose times or Schedule directly on the card for a new time.",
    Action.COMPLETE: "Marked “{title}” as done. Thank you for mentoring!",
    Action.NO_SHOW: "Recorded “{title}” as a no-show; the student has been told.",
    Action.REPOST: "Posted again as request #{id}: “{title}”.",
}


def parse_id(text: str) -> int | None:
    """A request id from a button value: ASCII digits within the database's range, else None."""
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID))):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


FOREIGN = (
    "Sorry, Mini Mentorship only serves members of the workspace it is installed in, so it can't "
    "act for accounts from another workspace or organisation (such as Slack Connect guests)."
)
NO_USER = "Sorry, I couldn't tell who sent that, so I didn't act on it."


class NotServed(Exception):
    """The sender is not a member of the installed workspace (or not named where Slack names
    them): refused politely before anything is read or written for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def acting_user(body: Mapping[str, Any]) -> str | None:
    """Who acts, only from where Slack puts it: a slash command's `user_id`, an interaction's
    `user.id`. Never from `message.user` or a bare string where the object belongs."""
    if "command" in body and "type" not in body:  # a slash command (interactions have a type)
        user_id = body.get("user_id")
    else:
        user = body.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
    return user_id if isinstance(user_id, str) and user_id else None


def claimed_teams(body: Mapping[str, Any]) -> list[object]:
    """Every workspace the payload says the sender belongs to or acts in. A Slack Connect user
    from another organisation carries their own `user.team_id` even where `team.id` is ours."""
    teams: list[object] = []
    if "team_id" in body:
        teams.append(body.get("team_id"))
    team, user = body.get("team"), body.get("user")
    if team is not None:
        teams.append(team.get("id") if isinstance(team, dict) else team)
    if isinstance(user, dict) and "team_id" in user:
        teams.append(user.get("team_id"))
    return teams


def form_body(raw: str) -> dict[str, Any]:
    """A form-encoded body as Slack means it: a JSON `payload` field for interactions, plain
    fields for slash commands. Raises ValueError on a `payload` that isn't a JSON object."""
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" not in fields:
        return fields
    payload = json.loads(fields["payload"])
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    return payload


class FormBodyRequest(AsyncBoltRequest):
    """Works around slack_bolt's parse_body (slack_bolt/request/internals.py, 1.30): it takes
    any form body in which the text "payload" appears anywhere for an interactive payload, and
    when there is no `payload` field it returns {} (so `/mini-session help payload`, or any
    command run in a channel named `payload-team`, matched no listener and got 404). We parse
    the fields ourselves; `raw_body` is left as sent, so Bolt's signature check still runs on
    the exact bytes Slack signed."""

    def __init__(self, *, body: str, **kwargs: Any) -> None:
        super().__init__(body=body, **kwargs)
        if not body.lstrip().startswith("{") and self.content_type != "application/json":
            self.body = form_body(self.raw_body)
            self.context = build_async_context(AsyncBoltContext({}), self.body)

    def to_copyable(self) -> FormBodyRequest:
        return FormBodyRequest(
            body=self.raw_body, query=self.query, headers=self.headers, context=self.context.to_copyable()
        )


def why(result: Refused | Invalid) -> str:
    """What to tell the person when a use case said no (plain text, escaped when sent)."""
    if isinstance(result, Refused):
        return result.message
    return " ".join(result.errors.values()) or "That didn't work; please try again."


@dataclass(frozen=True)
class Reply:
    """Where to tell the person who acted: the interaction's response_url, else an ephemeral
    in its channel, else (App Home clicks) a notice on their Home tab."""

    team_id: str
    user_id: str
    response_url: str | None = None
    channel_id: str | None = None
    home: bool = False


class _TimedApp(AsyncApp):
    """The Bolt app, each request it dispatches (HTTP or Socket Mode) timed into the
    interactions histogram: the whole answer, listener included. (A middleware cannot do it:
    Bolt runs the listeners after the middleware chain has returned.)"""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._interactions = runtime.metrics.interactions

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        body = req.body if isinstance(req.body, dict) else {}
        kind = "command" if "command" in body else str(body.get("type") or "other")
        started = time.perf_counter()
        try:
            return await super().async_dispatch(req)
        finally:
            self._interactions.labels(platform="slack", kind=kind).observe(time.perf_counter() - started)


class SlackBot:
    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.http = SlackHTTP()  # one connection pool for the Web API and response_url replies
        self.client = make_client(settings, interactive=True, http=self.http)
        self.directory = Directory(self.client, settings)
        runtime.mentorship.use_directory("slack", self.directory)
        self.sender = SlackSender(settings, http=self.http)
        runtime.delivery.add_sender(self.sender)
        self._tasks: set[asyncio.Task[None]] = set()
        self._working = asyncio.Semaphore(MAX_CONCURRENT_WORK)
        self._team: str | None = None
        self._team_lock = asyncio.Lock()
        # The chart files each admin was last sent, per range, with the drawing they show.
        self._chart_files: dict[tuple[str, str, int], tuple[ChartSet, list[str]]] = {}
        self.app = _TimedApp(
            runtime,
            name="mini-mentorship",
            client=self.client,
            signing_secret=settings.slack_signing_secret or "",
            # Listeners ack and spawn the work, so answering after them is answering at once;
            # form submissions validate first, because their errors travel in the answer.
            process_before_response=True,
        )
        self._register()

    @property
    def mentorship(self) -> Mentorship:
        return self.runtime.mentorship

    def _register(self) -> None:
        app = self.app
        app.command(COMMAND)(self.on_command)
        app.action(ACTION_ID)(self.on_action)
        app.action(ui.OPEN_REQUEST)(self.on_open_request)
        app.action(ui.OPEN_AVAILABILITY)(self.on_open_availability)
        app.action(ui.OPEN_PROFILE)(self.on_open_profile)
        app.view(ui.PROFILE_VIEW)(self.on_profile_submitted)
        app.view(ui.REQUEST_VIEW)(self.on_request_submitted)
        app.view(ui.SCHEDULE_VIEW)(self.on_schedule_submitted)
        app.view(ui.PROPOSE_VIEW)(self.on_propose_submitted)
        app.view(ui.NONE_WORK_VIEW)(self.on_none_work_submitted)
        app.view(ui.RESCHEDULE_ASK_VIEW)(self.on_reschedule_ask_submitted)
        app.view(ui.CANT_MAKE_IT_VIEW)(self.on_cant_make_it_submitted)
        app.view(ui.AVAILABILITY_VIEW)(self.on_availability_submitted)
        app.view(ui.REVIEW_VIEW)(self.on_review_submitted)
        app.event("app_home_opened")(self.on_home_opened)
        app.error(self.on_error)

    async def on_error(self, error: Exception) -> BoltResponse:
        """A signed payload Bolt couldn't make sense of (its middleware raised on the shape):
        answer 400, which Slack doesn't retry, instead of 500."""
        log.warning("could not handle a Slack request: %s: %s", type(error).__name__, error)
        return BoltResponse(status=400, body='{"error": "malformed request"}')

    # Background work ---------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], reply: Reply | None) -> None:
        async def run() -> None:
            try:
                async with self._working:
                    await work
            except NotServed as refused:
                if reply is not None:
                    with contextlib.suppress(Exception):
                        # generic: on a Home tab, the notice alone (building it would record them)
                        await self.tell(reply, refused.message, generic=True)
            except asyncio.CancelledError:
                # Stopping, and the grace ran out (close()): Slack had its 200 and won't retry.
                log.warning(
                    "slack interaction cut short by shutdown after %g s; the person was asked to try again",
                    SHUTDOWN_GRACE,
                )
                if reply is not None:
                    with contextlib.suppress(Exception):
                        await self.tell(reply, ui.GENERIC_ERROR, generic=True)
                raise
            except Exception:
                log.exception("slack interaction failed")
                if reply is not None:
                    with contextlib.suppress(Exception):
                        await self.tell(reply, ui.GENERIC_ERROR, generic=True)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # Who and where -----------------------------------------------------------------------

    async def installed_team(self) -> str:
        """The workspace the bot is installed in, as auth.test reports it (asked once, at start)."""
        if self._team is None:
            async with self._team_lock:
                if self._team is None:
                    answer = await self.client.auth_test()
                    team = answer.get("team_id")
                    if not isinstance(team, str) or not team:
                        raise RuntimeError("auth.test named no team")
                    self._team = team
        return self._team

    async def actor(self, context: AsyncBoltContext, body: Mapping[str, Any]) -> Actor:
        """The person acting, if they belong to the installed workspace; else NotServed."""
        user_id = acting_user(body)
        if user_id is None:
            raise NotServed(NO_USER)
        team = await self.installed_team()
        teams = claimed_teams(body)
        if not teams or any(t != team for t in teams):
            raise NotServed(FOREIGN)
        user = body.get("user")
        name = body.get("user_name") or (user.get("name") if isinstance(user, dict) else None) or ""
        return await self.directory.actor(team, user_id, str(name))

    @staticmethod
    def reply_for(body: Mapping[str, Any], context: AsyncBoltContext) -> Reply:
        container = body.get("container")
        view = body.get("view")
        home = (
            isinstance(container, dict)
            and container.get("type") == "view"
            and isinstance(view, dict)
            and view.get("type") == "home"
        )
        channel = body.get("channel")
        channel_id = body.get("channel_id") or (channel.get("id") if isinstance(channel, dict) else None)
        response_url = body.get("response_url")
        return Reply(
            team_id=context.team_id or context.enterprise_id or "",
            user_id=context.user_id or "",
            response_url=response_url if isinstance(response_url, str) and response_url else None,
            channel_id=str(channel_id) if channel_id else None,
            home=home,
        )

    async def tell(
        self,
        reply: Reply,
        text: str,
        *,
        blocks: list[ui.Block] | None = None,
        generic: bool = False,
    ) -> None:
        """Tell one person something, privately. `text` is plain (escaped here)."""
        if reply.home:
            await self.publish_home(reply.team_id, reply.user_id, notice=text, fallback_only=generic)
            return
        safe = escape(text)
        if reply.response_url:
            response = await self.http.webhook(reply.response_url).send(
                text=safe, blocks=blocks, response_type="ephemeral", replace_original=False
            )
            if response.status_code == 200:
                return
            log.warning("response_url answered %s; trying chat.postEphemeral", response.status_code)
        if reply.channel_id:
            await self.client.chat_postEphemeral(
                channel=reply.channel_id, user=reply.user_id, text=safe, blocks=blocks
            )
            return
        # Nowhere else to say it (a form closed long ago): a DM.
        await self.client.chat_postMessage(channel=reply.user_id, text=safe, blocks=blocks)

    async def publish_home(
        self, team_id: str, user_id: str, *, notice: str | None = None, fallback_only: bool = False
    ) -> None:
        view: ui.View
        try:
            if fallback_only:
                raise RuntimeError("showing the notice alone")
            actor = await self.directory.actor(team_id, user_id)
            board = await self.mentorship.dashboard(actor)
            view = ui.home_view(
                board,
                user_id,
                notice=notice,
                feed_channel=self.settings.slack_mentor_channel,
                program=await self.program(actor),
            )
        except Exception:
            if not fallback_only:
                log.exception("could not build the home tab for %s", user_id)
            view = {
                "type": "home",
                "blocks": [
                    ui.header("Mini Mentorship"),
                    *ui.notice_blocks(notice if fallback_only and notice else ui.GENERIC_ERROR),
                ],
            }
        await self.client.views_publish(user_id=user_id, view=view)

    async def program(self, actor: Actor) -> list[ui.Block]:
        """The Program section of an admin's App Home (nothing for anyone else)."""
        try:
            charts = await self.runtime.stats.charts(actor)
            if not isinstance(charts, Ok):
                return []
            return ui.program_blocks(charts.value, await self.chart_files(actor, charts.value))
        except Exception:
            # The rest of the Home is worth showing without its charts.
            log.exception("could not show the charts on the home tab of %s", actor.user_id)
            return []

    # Slash command -------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        reply = self.reply_for(body, context)
        self.spawn(self.command(body, context, reply), reply)

    async def command(self, body: dict[str, Any], context: AsyncBoltContext, reply: Reply) -> None:
        text = str(body.get("text") or "").strip()
        word = text.split()[0].lower() if text else ""
        actor = await self.actor(context, body)
        trigger_id = str(body.get("trigger_id") or "")
        if word in ("", "request", "new"):
            await self.open_request_modal(actor, trigger_id, reply, from_home=False)
        elif word in ("list", "dashboard", "status"):
            board = await self.mentorship.dashboard(actor)
            blocks = ui.list_blocks(board, actor.user_id, feed_channel=self.settings.slack_mentor_channel)
            await self.tell(reply, "Your mentorship dashboard", blocks=blocks)
        elif word == "availability":
            await self.open_availability_modal(actor, trigger_id, reply, from_home=False)
        elif word == "profile":
            await self.open_profile_modal(actor, trigger_id, reply, from_home=False)
        elif word == "stats":
            await self.stats(actor, reply, text.split()[1] if len(text.split()) > 1 else None)
        else:
            blocks = ui.help_blocks(
                is_mentor=actor.is_mentor,
                is_admin=actor.is_admin,
                unknown=None if word == "help" else text,
            )
            await self.tell(reply, "How to use Mini Mentorship", blocks=blocks)

    async def open_request_modal(
        self, actor: Actor, trigger_id: str, reply: Reply, *, from_home: bool
    ) -> None:
        try:
            refused = await self.mentorship.request_refusal(actor)
        except Exception:  # the submit checks again (and says what is wrong); the form opens
            log.warning("no request-cap check for %s; opening the form", actor.user_id, exc_info=True)
            refused = None
        if refused is not None:
            await self.tell(reply, refused.message)  # before the form, not after it is filled in
            return
        today = self.mentorship.today_for(self.mentorship.tz_of(None, actor))
        view = ui.request_modal(today, metadata={"home": from_home})
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def open_availability_modal(
        self, actor: Actor, trigger_id: str, reply: Reply, *, from_home: bool
    ) -> None:
        if refused := authorize(Act.AVAILABILITY, actor):
            await self.tell(reply, refused.message)
            return
        windows, timezone = await self.mentorship.get_availability(actor)
        view = ui.availability_modal(windows, timezone, metadata={"home": from_home})
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def open_profile_modal(
        self, actor: Actor, trigger_id: str, reply: Reply, *, from_home: bool
    ) -> None:
        if refused := authorize(Act.PROFILE, actor):
            await self.tell(reply, refused.message)
            return
        profile = await self.mentorship.profile(actor)
        await self.client.views_open(
            trigger_id=trigger_id, view=ui.profile_modal(profile, metadata={"home": from_home})
        )

    async def on_open_profile(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        reply = self.reply_for(body, context)

        async def work() -> None:
            actor = await self.actor(context, body)
            await self.open_profile_modal(
                actor, str(body.get("trigger_id") or ""), reply, from_home=reply.home
            )

        self.spawn(work(), reply)

    async def on_profile_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(actor: Actor, values: dict[str, str | None], _: dict[str, Any], __: str | None) -> Any:
            return await self.mentorship.save_profile(actor, values)  # the same again is the same

        def done(profile: ProfileView) -> ui.View:
            return ui.notice_view(forms.PROFILE_FORM.title, "Saved: " + profile.summary)

        await self.submitted(ack, body, context, forms.PROFILE_FORM, run, done)

    async def stats(self, actor: Actor, reply: Reply, range_text: str | None = None) -> None:
        if refused := await self.mentorship.stats_allowed(actor):
            await self.tell(reply, refused.message)
            return
        weeks = insight.parse_range(range_text)
        if weeks is None:
            await self.tell(reply, "Choose a range of 4, 12 or 52 weeks, like `/mini-session stats 12`.")
            return
        # The report (summary, CSVs) and the charts at once: the database writes the CSV while
        # the charts are drawn.
        result = await self.runtime.stats.reply(actor, weeks)
        if not isinstance(result, Ok):
            await self.tell(reply, why(result))
            return
        report, drawn = result.value
        note = "No CSV: there are no requests yet."
        # The CSV and the charts go to the admin's DM: the command may have been typed in a
        # public channel, and an image block can only show a file its reader can see.
        dm = str((await self.client.conversations_open(users=actor.user_id))["channel"]["id"])
        if report.total:
            stamp = self.runtime.clock.now().strftime("%Y%m%d-%H%M")
            await self.client.files_upload_v2(
                channel=dm,
                file_uploads=[
                    {
                        "content": report.csv,
                        "filename": f"mentorship-stats-{stamp}.csv",
                        "title": "Mentorship requests (CSV)",
                    },
                    {
                        "content": report.summary_csv,
                        "filename": f"mentorship-summary-{stamp}.csv",
                        "title": "Claims within target, demand and supply, mentor load (CSV)",
                    },
                ],
            )
            note = (
                "The CSV export of every request, a summary CSV of these figures and the charts "
                "are in your DM with me."
            )
        file_ids = await self.chart_files(actor, drawn, dm=dm)
        blocks = ui.stats_blocks(report, csv_note=note) + ui.chart_blocks(drawn, file_ids)
        await self.tell(reply, "Mentorship stats", blocks=blocks)

    async def chart_files(self, actor: Actor, charts: ChartSet, *, dm: str | None = None) -> list[str]:
        """The charts uploaded once per drawing, and their file ids for `slack_file` images.

        For the stats reply they are shared in the admin's DM (theirs to keep and open full
        size); for the App Home they stay the bot's own files, unshared, which an image block
        posted by the bot may show. A drawing served from the cache reuses its files."""
        key = (actor.workspace, actor.user_id if dm else "", charts.weeks)
        known = self._chart_files.get(key)
        if known is not None and known[0] is charts:
            return known[1]
        if not charts.charts:
            return []
        response = await self.client.files_upload_v2(
            channel=dm,
            file_uploads=[
                {
                    "content": png,
                    "filename": name,
                    "title": chart.title,
                    "alt_txt": ui.alt_text(chart.alt_text, 1000),
                }
                for chart, (name, png) in zip(charts.charts, charts.files(), strict=True)
            ],
            initial_comment=f"Program charts, last {charts.weeks} weeks." if dm else None,
        )
        files = response.get("files") or []
        ids = [str(f["id"]) for f in files if isinstance(f, dict)]
        self._chart_files[key] = (charts, ids)
        return ids

    # Buttons -------------------------------------------------------------------------------

    async def on_action(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        reply = self.reply_for(body, context)
        actions = body.get("actions")
        clicked = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        match = ACTION_ID.match(str(clicked.get("action_id") or ""))
        if match is None:
            return
        action = Action(match.group(1))
        value = str(clicked.get("value") or "")
        self.spawn(self.click(action, value, body, context, reply), reply)

    async def click(
        self, action: Action, value: str, body: dict[str, Any], context: AsyncBoltContext, reply: Reply
    ) -> None:
        actor = await self.actor(context, body)
        request_part, _, extra = value.partition(":")
        request_id = parse_id(request_part)
        if request_id is None:
            await self.tell(reply, "I couldn't find that request.")
            return
        trigger_id = str(body.get("trigger_id") or "")
        if action in (Action.SCHEDULE, Action.RESCHEDULE):
            await self.open_schedule_modal(actor, request_id, trigger_id, reply)
            return
        if action is Action.REVIEW:
            await self.open_review_modal(actor, request_id, trigger_id, reply)
            return
        if action is Action.PROPOSE:
            await self.open_propose_modal(actor, request_id, trigger_id, reply)
            return
        if action in (Action.PICK_TIME, Action.NONE_WORK):
            await self.proposal_click(actor, action, request_id, extra, trigger_id, reply)
            return
        if action in (Action.ASK_RESCHEDULE, Action.CANT_MAKE_IT):
            await self.session_form_click(actor, action, request_id, extra, trigger_id, reply)
            return
        if action in (Action.ASK_PROPOSE, Action.KEEP_TIME):
            await self.ask_click(actor, action, request_id, extra, trigger_id, reply)
            return
        if action is Action.RATE:
            stars = forms.parse_rating(extra)
            if stars is None:
                await self.tell(reply, "Please choose 1 to 5 stars.")
                return
            result = await self.mentorship.rate(actor, request_id, stars)
            message = "Thanks for your rating! You can add a short review with “Write a review”."
        else:
            use_case: Callable[[Actor, int], Awaitable[Ok[RequestView] | Refused | Invalid]] = {
                Action.CLAIM: self.mentorship.claim,
                Action.RELEASE: self.mentorship.release,
                Action.CANCEL: self.mentorship.cancel,
                Action.CANCEL_SESSION: self.mentorship.cancel_session,
                Action.COMPLETE: self.mentorship.complete,
                Action.NO_SHOW: self.mentorship.no_show,
                Action.REPOST: self.mentorship.repost,
            }[action]
            result = await use_case(actor, request_id)
            message = CONFIRMATIONS[action]
            if action is Action.RELEASE and isinstance(result, Ok) and result.value.status is Status.EXPIRED:
                message = RELEASED_AFTER_DATES
        if isinstance(result, Ok):
            await self.tell(reply, message.format(title=result.value.title, id=result.value.id))
        else:
            await self.tell(reply, why(result))

    async def open_schedule_modal(self, actor: Actor, request_id: int, trigger_id: str, reply: Reply) -> None:
        slots = await self.mentorship.suggest_slots(actor, request_id)
        if not isinstance(slots, Ok):
            await self.tell(reply, why(slots))
            return
        found = await self.mentorship.get_request(actor, request_id)
        if not isinstance(found, Ok):
            await self.tell(reply, why(found))
            return
        request: RequestView = found.value
        _, timezone = await self.mentorship.get_availability(actor)
        live = (
            request.session if request.session and request.session.status is SessionStatus.SCHEDULED else None
        )
        view = ui.schedule_modal(
            request.title,
            (request.available_from, request.available_until),
            slots.value,
            forms.zone(timezone),
            metadata={"r": request.id, "home": reply.home, "o": booking_token(request)},
            current=live.starts_at if live else None,
            note=live.note if live else "",
        )
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def open_propose_modal(
        self, actor: Actor, request_id: int, trigger_id: str, reply: Reply, *, ask_id: int | None = None
    ) -> None:
        slots = await self.mentorship.suggest_slots(actor, request_id)
        if not isinstance(slots, Ok):
            await self.tell(reply, why(slots))
            return
        found = await self.mentorship.get_request(actor, request_id)
        if not isinstance(found, Ok):
            await self.tell(reply, why(found))
            return
        request: RequestView = found.value
        _, timezone = await self.mentorship.get_availability(actor)
        metadata: dict[str, Any] = {"r": request.id, "home": reply.home}
        if ask_id is not None:
            metadata["a"] = ask_id  # answering the student's ask: settled with the proposal
        view = ui.propose_modal(
            request.title,
            (request.available_from, request.available_until),
            slots.value,
            forms.zone(timezone),
            metadata=metadata,
        )
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def proposal_click(
        self, actor: Actor, action: Action, request_id: int, extra: str, trigger_id: str, reply: Reply
    ) -> None:
        """A time button (`request:proposal:index`) or None of these work (`request:proposal`)."""
        proposal_part, _, index_part = extra.partition(":")
        proposal_id = parse_id(proposal_part)
        if proposal_id is None:
            await self.tell(reply, "Those times are no longer on offer; nothing changed.")
            return
        if action is Action.NONE_WORK:
            # Checked before the form opens: a note typed for times no longer on offer is lost.
            found = await self.mentorship.check_proposal(actor, request_id, proposal_id)
            if not isinstance(found, Ok):
                await self.tell(reply, why(found))
                return
            view = ui.none_work_modal(
                found.value.title, metadata={"r": request_id, "p": proposal_id, "home": reply.home}
            )
            await self.client.views_open(trigger_id=trigger_id, view=view)
            return
        index = int(index_part) if index_part in ("0", "1", "2") else -1
        result = await self.mentorship.pick_time(actor, request_id, proposal_id, index)
        if isinstance(result, Ok):
            await self.tell(reply, f"📅 Booked “{result.value.title}”. The invite is on its way to you both.")
        else:
            await self.tell(reply, why(result))

    async def session_form_click(
        self, actor: Actor, action: Action, request_id: int, extra: str, trigger_id: str, reply: Reply
    ) -> None:
        """Ask to reschedule / Can't make it (`request:session:version`): checked, then the form."""
        session_part, _, version_part = extra.partition(":")
        session_id, version = parse_id(session_part), parse_id(version_part)
        if session_id is None or version is None:
            await self.tell(reply, "That button is out of date; nothing changed.")
            return
        act = Act.ASK_RESCHEDULE if action is Action.ASK_RESCHEDULE else Act.CANT_MAKE_IT
        checked = await self.mentorship.check_session_button(actor, request_id, session_id, version, act)
        if not isinstance(checked, Ok):
            await self.tell(reply, why(checked))
            return
        metadata = {"r": request_id, "s": session_id, "v": version, "home": reply.home}
        modal = ui.reschedule_ask_modal if action is Action.ASK_RESCHEDULE else ui.cant_make_it_modal
        await self.client.views_open(
            trigger_id=trigger_id, view=modal(checked.value.title, metadata=metadata)
        )

    async def ask_click(
        self, actor: Actor, action: Action, request_id: int, extra: str, trigger_id: str, reply: Reply
    ) -> None:
        """The mentor's answer to an ask (`request:ask`): new times (the propose form) or keep."""
        ask_id = parse_id(extra)
        if ask_id is None:
            await self.tell(reply, "I couldn't find that reschedule ask; nothing changed.")
            return
        if action is Action.KEEP_TIME:
            result = await self.mentorship.keep_time(actor, request_id, ask_id)
            if isinstance(result, Ok):
                await self.tell(
                    reply, f"Kept the time for “{result.value.title}”; the student has been told."
                )
            else:
                await self.tell(reply, why(result))
            return
        checked = await self.mentorship.check_ask(actor, request_id, ask_id)
        if not isinstance(checked, Ok):
            await self.tell(reply, why(checked))
            return
        await self.open_propose_modal(actor, request_id, trigger_id, reply, ask_id=ask_id)

    async def open_review_modal(self, actor: Actor, request_id: int, trigger_id: str, reply: Reply) -> None:
        found = await self.mentorship.get_request(actor, request_id)
        if not isinstance(found, Ok):
            await self.tell(reply, why(found))
            return
        request: RequestView = found.value
        if refused := authorize(Act.RATE, actor, request):
            await self.tell(reply, refused.message)
            return
        rating = request.session.rating if request.session else None
        view = ui.review_modal(request.title, metadata={"r": request.id, "home": reply.home}, rating=rating)
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def on_open_request(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        reply = self.reply_for(body, context)

        async def work() -> None:
            actor = await self.actor(context, body)
            await self.open_request_modal(
                actor, str(body.get("trigger_id") or ""), reply, from_home=reply.home
            )

        self.spawn(work(), reply)

    async def on_open_availability(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        reply = self.reply_for(body, context)

        async def work() -> None:
            actor = await self.actor(context, body)
            await self.open_availability_modal(
                actor, str(body.get("trigger_id") or ""), reply, from_home=reply.home
            )

        self.spawn(work(), reply)

    # Form submissions ----------------------------------------------------------------------

    async def submitted(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        spec: forms.FormSpec,
        run: Callable[[Actor, dict[str, str | None], dict[str, Any], str | None], Awaitable[Any]],
        done: Callable[[Any], ui.View | None] = lambda _: None,
    ) -> None:
        """Validate and act before answering: errors go back inline on their fields, a refusal
        replaces the form with its explanation, success closes it (or shows `done`)."""
        view = body.get("view") if isinstance(body.get("view"), dict) else {}
        assert isinstance(view, dict)
        metadata = ui.metadata_of(view)
        try:
            actor = await self.actor(context, body)
            result = await run(actor, ui.view_values(view, spec), metadata, self.submission_key(view))
        except NotServed as refused:
            await ack(response_action="update", view=ui.notice_view(spec.title, refused.message))
            return
        except Exception:
            log.exception("form %s failed", spec.id)
            # Keep the form (and what was typed): the error sits on its first field.
            await ack(response_action="errors", errors=ui.view_errors(view, {"": ui.GENERIC_ERROR}))
            return
        if isinstance(result, Invalid):
            await ack(response_action="errors", errors=ui.view_errors(view, result.errors))
            return
        if isinstance(result, Refused):
            await ack(response_action="update", view=ui.notice_view(spec.title, result.message))
            return
        confirmation = done(result.value)
        if confirmation is None:
            await ack()
        else:
            await ack(response_action="update", view=confirmation)
        if metadata.get("home") is True:
            self.spawn(self.publish_home(actor.workspace, actor.user_id), None)

    @staticmethod
    def submission_key(view: Mapping[str, Any]) -> str | None:
        """Slack's identity of one submission: the view's id and hash (the hash changes whenever
        the view does). The same pair again is the same submission replayed."""
        view_id, view_hash = view.get("id"), view.get("hash")
        if not (isinstance(view_id, str) and view_id and isinstance(view_hash, str) and view_hash):
            return None
        return f"slack:view:{view_id}:{view_hash}"[:200]

    @staticmethod
    def _id(metadata: Mapping[str, Any], key: str) -> int:
        value = metadata.get(key)
        return value if isinstance(value, int) and 0 < value <= MAX_ID else 0

    @staticmethod
    def _request_id(metadata: Mapping[str, Any]) -> int:
        value = metadata.get("r")
        return value if isinstance(value, int) and 0 < value <= MAX_ID else 0

    async def on_request_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(
            actor: Actor, values: dict[str, str | None], _: dict[str, Any], once: str | None
        ) -> Any:
            return await self.mentorship.create_request(actor, values, once=once)

        await self.submitted(ack, body, context, forms.REQUEST_FORM, run)

    async def on_schedule_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(
            actor: Actor, values: dict[str, str | None], metadata: dict[str, Any], once: str | None
        ) -> Any:
            opened = metadata.get("o")  # absent in forms opened before the check existed
            return await self.mentorship.schedule(
                actor,
                self._request_id(metadata),
                values,
                once=once,
                opened_for=opened if isinstance(opened, str) else None,
            )

        await self.submitted(ack, body, context, forms.SCHEDULE_FORM, run)

    async def on_propose_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(
            actor: Actor, values: dict[str, str | None], metadata: dict[str, Any], once: str | None
        ) -> Any:
            ask = self._id(metadata, "a")
            if ask:
                return await self.mentorship.propose_for_ask(
                    actor, self._request_id(metadata), ask, values, once=once
                )
            return await self.mentorship.propose_times(actor, self._request_id(metadata), values, once=once)

        await self.submitted(ack, body, context, forms.PROPOSE_FORM, run)

    async def on_none_work_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(
            actor: Actor, values: dict[str, str | None], metadata: dict[str, Any], _: str | None
        ) -> Any:
            # A replay finds the proposal no longer pending and is refused; nothing changes.
            proposal = metadata.get("p")
            proposal_id = proposal if isinstance(proposal, int) and 0 < proposal <= MAX_ID else 0
            return await self.mentorship.none_work(actor, self._request_id(metadata), proposal_id, values)

        await self.submitted(ack, body, context, forms.NONE_WORK_FORM, run)

    async def on_reschedule_ask_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await self._session_form_submitted(
            ack,
            body,
            context,
            forms.RESCHEDULE_ASK_FORM,
            self.mentorship.ask_reschedule,
            "Your mentor has been asked, with your reason. Until they answer, the session stays booked.",
        )

    async def on_cant_make_it_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await self._session_form_submitted(
            ack,
            body,
            context,
            forms.CANT_MAKE_IT_FORM,
            self.mentorship.cant_make_it,
            "The session is cancelled and the other person told. Check your DMs for the calendar update.",
        )

    async def _session_form_submitted(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        form: forms.FormSpec,
        use_case: Callable[..., Awaitable[Any]],
        done_text: str,
    ) -> None:
        """A form about one booked time (request, session, version in its metadata)."""

        async def run(
            actor: Actor, values: dict[str, str | None], metadata: dict[str, Any], once: str | None
        ) -> Any:
            request_id, session_id = self._request_id(metadata), self._id(metadata, "s")
            return await use_case(actor, request_id, session_id, self._id(metadata, "v"), values, once=once)

        def done(_: Any) -> ui.View:
            return ui.notice_view(form.title, done_text)

        await self.submitted(ack, body, context, form, run, done)

    async def on_availability_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(actor: Actor, values: dict[str, str | None], _: dict[str, Any], __: str | None) -> Any:
            return await self.mentorship.set_availability(actor, values)  # the same again is the same

        def done(windows: list[Any]) -> ui.View:
            text = (
                f"Saved. Your weekly availability, in {windows[0].timezone}: "
                f"{forms.format_availability(windows)}."
                if windows
                else "Saved. You have no weekly availability now; set some to get suggested times."
            )
            return ui.notice_view(forms.AVAILABILITY_FORM.title, text)

        await self.submitted(ack, body, context, forms.AVAILABILITY_FORM, run, done)

    async def on_review_submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def run(
            actor: Actor, values: dict[str, str | None], metadata: dict[str, Any], once: str | None
        ) -> Any:
            parsed = forms.parse_review(values)
            if isinstance(parsed, dict):
                return Invalid(parsed)
            rating, review = parsed
            return await self.mentorship.rate(actor, self._request_id(metadata), rating, review, once=once)

        def done(rated: RequestView) -> ui.View:
            what = "rating and review" if rated.session and rated.session.review else "rating"
            return ui.notice_view(forms.REVIEW_FORM.title, f"Thank you! Your mentor will see your {what}.")

        await self.submitted(ack, body, context, forms.REVIEW_FORM, run, done)

    # App Home ------------------------------------------------------------------------------

    async def on_home_opened(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("tab", "home") != "home" or not context.user_id:
            return
        team_id = context.team_id or context.enterprise_id or ""
        user = event.get("user")

        async def work() -> None:
            if team_id == await self.installed_team() and isinstance(user, str) and user:
                await self.publish_home(team_id, user)

        self.spawn(work(), None)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await self.idle()
        # The grace over, the work still running was cancelled; it tells its clicker to try again.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CUT_SHORT_GRACE):
                await self.idle()
        await self.http.close()


_ATTRIBUTE = "_mini_mentorship_bot"
# The app built for each runtime, so `serve` reuses the one the CLI built (same caches, same
# sender) instead of wiring a second. Weak: a dropped app and its bot go away together.
_BY_RUNTIME: weakref.WeakValueDictionary[int, SlackBot] = weakref.WeakValueDictionary()


def _bot(app: AsyncApp) -> SlackBot:
    bot = getattr(app, _ATTRIBUTE, None)
    if not isinstance(bot, SlackBot):
        raise ValueError("this AsyncApp was not made by handlers.slack.build_app")
    return bot


def build_app(settings: Settings, *, runtime: Runtime | None = None) -> AsyncApp:
    """The Bolt app with every listener; registers a SlackSender on the runtime's outbox."""
    bot = SlackBot(settings, runtime or Runtime(settings))
    setattr(bot.app, _ATTRIBUTE, bot)
    _BY_RUNTIME[id(bot.runtime)] = bot
    return bot.app


def runtime_of(app: AsyncApp) -> Runtime:
    return _bot(app).runtime


async def idle(app: AsyncApp) -> None:
    """Wait until the work that interactions started in the background is done."""
    await _bot(app).idle()


def web_app(app: AsyncApp) -> web.Application:
    """HTTP mode: POST /slack/events (signed requests only), GET /healthz and GET /metrics."""
    bot = _bot(app)
    verifier = SignatureVerifier(bot.settings.slack_signing_secret or "")

    def unauthorized() -> web.Response:
        return web.json_response({"error": "invalid request"}, status=401)

    async def events(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        # Checked here as well as in Bolt so that a forged or garbled request is refused before
        # anything parses its body; Bolt would crash on a non-numeric timestamp.
        if not (bot.settings.slack_signing_secret and timestamp.isdigit() and signature):
            return unauthorized()
        try:
            if not verifier.is_valid(body, timestamp, signature):
                return unauthorized()
        except ValueError:  # not UTF-8: it can't have been signed by Slack
            return unauthorized()
        try:
            bolt_request = FormBodyRequest(
                body=body.decode("utf-8"), query=request.query_string, headers=dict(request.headers)
            )
            bolt_response = await app.async_dispatch(bolt_request)
        except Exception as exc:  # unparseable payload JSON, a payload of the wrong shape
            log.warning("malformed Slack request: %s: %s", type(exc).__name__, exc)
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.StreamResponse:
        return await healthz_view(bot.runtime)

    async def metrics(_: web.Request) -> web.StreamResponse:
        return await metrics_view(bot.runtime)

    async def learn_team(_: web.Application) -> None:
        try:
            await bot.installed_team()
        except Exception as exc:  # asked again at the first request; until then nothing is served
            log.warning("slack: auth.test failed at start: %s", exc)

    application = web.Application()
    application.on_startup.append(learn_team)
    application.router.add_post("/slack/events", events)
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/metrics", metrics)
    return application


def _unavailable(exc: SlackApiError) -> str | None:
    """Slack itself failing (5xx, 429, a body that is no JSON object), as opposed to refusing."""
    status = exc.response.status_code
    if status >= 500 or status == 429 or not isinstance(exc.response.data, dict):
        return f"HTTP {status}"
    return None


async def preflight(settings: Settings, *, socket_mode: bool = False) -> str | None:
    """Ask Slack whether the bot token works, the bot is in the mentors' channel and (for Socket
    Mode) the app-level token opens a connection, before serving. None when all is well, else one
    message for the operator saying what to fix."""
    client = AsyncWebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url or AsyncWebClient.BASE_URL
    )
    channel = settings.slack_mentor_channel or ""
    try:
        me = await client.auth_test()
    except SlackApiError as exc:
        if settings.slack_api_url and exc.response.status_code == 404:
            return (
                f"SLACK_API_URL={settings.slack_api_url} answered 404 to auth.test: is it the Web API's "
                "base URL, ending in /api/? Unset it to use Slack's own."
            )
        if busy := _unavailable(exc):
            return f"Slack could not check SLACK_BOT_TOKEN just now ({busy}); start again in a moment."
        error = exc.response.get("error", "error")
        return (
            f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-…) again from "
            '"OAuth & Permissions", and reinstall the app to the workspace if it was removed.'
        )
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        if settings.slack_api_url:  # a set API URL is the likelier culprit than the network
            return (
                f"Cannot reach Slack at SLACK_API_URL={settings.slack_api_url} to check SLACK_BOT_TOKEN "
                f"({type(exc).__name__}): check that URL (it ends in /api/), or unset it to use Slack's own."
            )
        return f"Cannot reach Slack to check SLACK_BOT_TOKEN ({type(exc).__name__}): is the network up?"
    bot_name = me.get("user") or "the bot"
    try:
        info = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        if busy := _unavailable(exc):
            return (
                f"Slack could not describe SLACK_MENTOR_CHANNEL just now ({busy}); start again in a moment."
            )
        error = exc.response.get("error", "error")
        if error == "channel_not_found":
            return (
                f"SLACK_MENTOR_CHANNEL={channel}: no such channel the bot can see. Check the id (channel "
                "name → About tab, at the bottom); for a private channel, first type "
                f"`/invite @{bot_name}` in it."
            )
        return f"Slack refused to describe SLACK_MENTOR_CHANNEL={channel} ({error})."
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        return f"Cannot reach Slack to check SLACK_MENTOR_CHANNEL ({type(exc).__name__})."
    described: dict[str, Any] = info.get("channel") or {}
    if not described.get("is_member"):
        return (
            f"The bot is not a member of the mentors' channel {channel} (SLACK_MENTOR_CHANNEL): type "
            f"`/invite @{bot_name}` in that channel, then start again."
        )
    if socket_mode and settings.slack_app_token:
        try:
            # Only hands out a one-off websocket URL (unused here; it expires on its own).
            await client.apps_connections_open(app_token=settings.slack_app_token)
        except SlackApiError as exc:
            error = exc.response.get("error", "error")
            return (
                f"Slack refused SLACK_APP_TOKEN ({error}): create an app-level token with the "
                'connections:write scope under "Basic Information" → App-Level Tokens, and check '
                'that Socket Mode is on ("Socket Mode" page); or unset it to serve HTTP instead.'
            )
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            return f"Cannot reach Slack to check SLACK_APP_TOKEN ({type(exc).__name__})."
    return None


async def serve(runtime: Runtime, *, http: bool, port: int) -> None:
    """Run until cancelled: Socket Mode if SLACK_APP_TOKEN is set and `http` is not asked for,
    else HTTP on 0.0.0.0:`port`. Delivery of owed messages is the caller's
    (`runtime.delivery.run_forever()`)."""
    built = _BY_RUNTIME.get(id(runtime))
    app = (
        built.app
        if built is not None and built.runtime is runtime
        else build_app(runtime.settings, runtime=runtime)
    )
    bot = _bot(app)
    forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        with contextlib.suppress(Exception):  # asked again at the first request
            await bot.installed_team()
        if runtime.settings.slack_app_token and not http:
            handler = AsyncSocketModeHandler(app, runtime.settings.slack_app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack: connected in Socket Mode")
            try:
                await forever
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]
        else:
            runner = web.AppRunner(web_app(app), access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, "0.0.0.0", port).start()
                bound = runner.addresses[0][1] if runner.addresses else port  # --port 0: the one taken
                log.info("slack: listening on http://0.0.0.0:%s/slack/events", bound)
                await forever
            except OSError as exc:
                from bot.preflight import cannot_listen  # alembic with it: only on this path

                raise cannot_listen(port, "--port", exc) from None
            finally:
                await runner.cleanup()
    finally:
        await bot.close()
