"""The reliability suite drives the Slack app the way tests/slack does: signed HTTP into the app
served on an ephemeral port, FakeSlack behind SLACK_API_URL. Its fixtures are reused from there."""

from __future__ import annotations

from tests.slack.conftest import fake, make_slack

__all__ = ["fake", "make_slack"]
