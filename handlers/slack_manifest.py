"""The Slack app manifest (YAML) for `mini-mentorship manifest`: paste it at api.slack.com/apps →
Create New App → From a manifest.

The scopes are exactly the Web API methods handlers/slack*.py call:
  commands        /mini-session
  chat:write      chat.postMessage, chat.update, chat.postEphemeral
  im:write        conversations.open (DMs)
  mpim:write      conversations.open with student and mentor (their shared group DM)
  users:read      users.info (time zone, display name, workspace admin)
  channels:read   conversations.members of a public mentors' channel
  groups:read     conversations.members of a private mentors' channel
  files:write     files upload v2 (.ics invites, the stats CSV, the chart PNGs that
                  `slack_file` image blocks show)
  channels:history, groups:history, im:history, mpim:history
                  conversations.history, only after a crash, to find a message that may
                  already have been sent (so it is not sent twice)
views.open / views.publish and app_home_opened need no scope. docs/configuration.md explains each
scope for admins, and why no narrower lookup can replace the *:history ones.
"""

from __future__ import annotations

from bot.config import Settings

COMMAND = "/mini-session"
BOT_SCOPES = (
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "im:write",
    "mpim:history",
    "mpim:write",
    "users:read",
)
BOT_EVENTS = ("app_home_opened",)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def manifest(settings: Settings | None = None, *, base_url: str | None = None) -> str:
    """Socket Mode by default: the app needs no public URL, and the manifest is printed before
    any token exists (README, "Set up Slack"). With `base_url` (e.g. https://bot.example.org),
    HTTP mode instead, every request URL pointing at `<base_url>/slack/events`. `settings` is
    accepted for the CLI's contract; nothing in it changes the manifest."""
    socket_mode = base_url is None
    events_url = (base_url or "").rstrip("/") + "/slack/events"
    lines = [
        "display_information:",
        "  name: Mini Mentorship",
        "  description: Quick, one-off mentorship sessions between students and mentors",
        '  background_color: "#2e5e4e"',
        "features:",
        "  app_home:",
        "    home_tab_enabled: true",
        "    messages_tab_enabled: true",
        "    messages_tab_read_only_enabled: true",
        "  bot_user:",
        "    display_name: Mini Mentorship",
        "    always_online: true",
        "  slash_commands:",
        f"    - command: {COMMAND}",
    ]
    if not socket_mode:
        lines.append(f"      url: {_quote(events_url)}")
    lines += [
        "      description: Ask a mentor for a 30–60 minute session",
        f"      usage_hint: {_quote('[request | list | availability | profile | stats | help]')}",
        "      should_escape: false",
        "oauth_config:",
        "  scopes:",
        "    bot:",
        *(f"      - {scope}" for scope in BOT_SCOPES),
        "settings:",
        "  event_subscriptions:",
    ]
    if not socket_mode:
        lines.append(f"    request_url: {_quote(events_url)}")
    lines += [
        "    bot_events:",
        *(f"      - {event}" for event in BOT_EVENTS),
        "  interactivity:",
        "    is_enabled: true",
    ]
    if not socket_mode:
        lines.append(f"    request_url: {_quote(events_url)}")
    lines += [
        "  org_deploy_enabled: false",
        f"  socket_mode_enabled: {'true' if socket_mode else 'false'}",
        "  token_rotation_enabled: false",
    ]
    return "\n".join(lines) + "\n"
