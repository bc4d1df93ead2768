"""Tests for the fake Slack Web API, driven by the real slack_sdk AsyncWebClient."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from fakes.slack_api import FakeSlack

pytestmark = pytest.mark.asyncio

TOKEN = "xoxb-test-token"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        f.add_user("U1", name="ada", tz="Europe/London", is_admin=True)
        f.add_user("U2", name="grace", tz="America/New_York")
        f.add_user("UGONE", deleted=True)
        f.add_user("UOTHERBOT", is_bot=True)
        f.add_channel("C1", members=["U1", "U2", "UBOT"])
        yield f


def client_for(fake: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.url, **kwargs)


async def slack_error(coro: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


# -- basics -----------------------------------------------------------------


async def test_url_and_auth_test(fake: FakeSlack) -> None:
    assert fake.url.startswith("http://127.0.0.1:") and fake.url.endswith("/api/")
    resp = await client_for(fake).auth_test()
    assert resp["user_id"] == "UBOT" and resp["team_id"] == "T1" and resp["bot_id"]
    assert [c.method for c in fake.calls] == ["auth.test"]
    assert fake.calls[0].ok and fake.calls[0].error is None


async def test_post_and_update_message(fake: FakeSlack) -> None:
    client = client_for(fake)
    first = await client.chat_postMessage(channel="C1", text="hello", blocks=[section("*hello*")])
    second = await client.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
    assert first["channel"] == "C1" and first["message"]["text"] == "hello"
    assert first["ts"] == "1700000000.000100"
    assert second["ts"] > first["ts"]

    await client.chat_update(channel="C1", ts=first["ts"], text="edited")
    msgs = fake.messages["C1"]
    assert [m["text"] for m in msgs] == ["edited", "reply"]
    assert msgs[0]["blocks"] == [section("*hello*")]  # omitted blocks are kept, like Slack
    assert msgs[1]["thread_ts"] == first["ts"] and msgs[1]["user"] == "UBOT"

    await client.chat_update(channel="C1", ts=first["ts"], text="plain", blocks=[])
    assert msgs[0]["blocks"] == []

    err = await slack_error(client.chat_update(channel="C1", ts="1.000000", text="x"))
    assert err.response["error"] == "message_not_found"
    err = await slack_error(client.chat_postMessage(channel="CNOPE", text="x"))
    assert err.response["error"] == "channel_not_found"
    link = await client.chat_getPermalink(channel="C1", message_ts=first["ts"])
    assert link["permalink"].endswith("/archives/C1/p1700000000000100")
    assert fake.validation_errors == []


async def test_form_encoded_body_is_accepted(fake: FakeSlack) -> None:
    await client_for(fake).api_call("chat.postMessage", data={"channel": "C1", "text": "via form"})
    assert fake.messages["C1"][-1]["text"] == "via form"


async def test_open_dm(fake: FakeSlack) -> None:
    client = client_for(fake)
    first = await client.conversations_open(users="U1")
    again = await client.conversations_open(users=["U1"])
    assert first["channel"]["id"] == again["channel"]["id"] == "DU1"
    assert again["already_open"] is True

    await client.chat_postMessage(channel="DU1", text="hi in DM")
    await client.chat_postMessage(channel="U2", text="to a user id")  # Slack routes this to the DM
    assert fake.messages["DU1"][0]["text"] == "hi in DM"
    assert fake.messages["DU2"][0]["text"] == "to a user id"

    info = await client.conversations_info(channel="DU1")
    assert info["channel"]["is_im"] is True and info["channel"]["user"] == "U1"

    for user, error in [
        ("UNOPE", "user_not_found"),
        ("UOTHERBOT", "cannot_dm_bot"),
        ("UBOT", "cannot_dm_bot"),
    ]:
        err = await slack_error(client.conversations_open(users=user))
        assert err.response["error"] == error
    assert fake.validation_errors == []


async def test_open_group_dm(fake: FakeSlack) -> None:
    """Several users: one group DM (mpim) with the bot, the same id for the same set of people."""
    client = client_for(fake)
    first = await client.conversations_open(users="U1,U2")
    again = await client.conversations_open(users="U2,U1")
    channel = first["channel"]["id"]
    assert channel.startswith("G") and again["channel"]["id"] == channel and again["already_open"] is True
    assert set(fake.channels[channel]["members"]) == {"U1", "U2", "UBOT"}
    assert fake.channels[channel]["is_mpim"] is True
    await client.chat_postMessage(channel=channel, text="hello both")
    history = await client.conversations_history(channel=channel)
    assert [m["text"] for m in history["messages"]] == ["hello both"]
    fake.add_user("U3", name="linus")
    assert (await client.conversations_open(users="U1,U3"))["channel"]["id"] != channel

    err = await slack_error(client.conversations_open(users="U1,UGONE"))
    assert err.response["error"] == "user_disabled"
    fake.missing_scopes.add("mpim:write")  # an install from before the app asked for it
    err = await slack_error(client.conversations_open(users="U1,U2"))
    assert err.response["error"] == "missing_scope" and err.response["needed"] == "mpim:write"
    assert (await client.conversations_open(users="U1"))["channel"]["id"] == "DU1"  # DMs still open
    assert fake.validation_errors == []


async def test_members_pagination(fake: FakeSlack) -> None:
    fake.add_channel("CBIG", members=[f"U{i:03d}" for i in range(7)])
    client = client_for(fake)
    first = await client.conversations_members(channel="CBIG", limit=3)
    assert first["members"] == ["U000", "U001", "U002"]
    assert first["response_metadata"]["next_cursor"]

    pages = [page["members"] async for page in await client.conversations_members(channel="CBIG", limit=3)]
    assert pages == [["U000", "U001", "U002"], ["U003", "U004", "U005"], ["U006"]]

    err = await slack_error(client.conversations_members(channel="CBIG", cursor="bogus"))
    assert err.response["error"] == "invalid_cursor"
    assert fake.validation_errors == ["conversations.members: cursor 'bogus' was not issued by Slack"]


async def test_users_info(fake: FakeSlack) -> None:
    user = (await client_for(fake).users_info(user="U1"))["user"]
    assert user["id"] == "U1" and user["name"] == "ada"
    assert user["tz"] == "Europe/London" and user["tz_offset"] in (0, 3600)
    assert user["is_admin"] is True and user["is_bot"] is False and user["deleted"] is False
    assert user["profile"]["display_name"] == "ada" and user["real_name"] == "Ada"
    gone = (await client_for(fake).users_info(user="UGONE"))["user"]
    assert gone["deleted"] is True
    err = await slack_error(client_for(fake).users_info(user="UNOPE"))
    assert err.response["error"] == "user_not_found"


# -- auth, unknown methods, validation -----------------------------------------


async def test_missing_and_invalid_token(fake: FakeSlack) -> None:
    err = await slack_error(AsyncWebClient(base_url=fake.url).auth_test())
    assert err.response["error"] == "not_authed"
    err = await slack_error(AsyncWebClient(token="nope", base_url=fake.url).auth_test())
    assert err.response["error"] == "invalid_auth"
    assert len(fake.validation_errors) == 2


async def test_unknown_method(fake: FakeSlack) -> None:
    err = await slack_error(client_for(fake).api_call("chat.flyToTheMoon", json={"channel": "C1"}))
    assert err.response["error"] == "unknown_method"
    assert fake.validation_errors == ["chat.flyToTheMoon: unknown API method 'chat.flyToTheMoon'"]


async def test_missing_required_argument(fake: FakeSlack) -> None:
    err = await slack_error(client_for(fake).api_call("chat.postMessage", json={"text": "no channel"}))
    assert err.response["error"] == "invalid_arguments"
    err = await slack_error(client_for(fake).api_call("chat.postMessage", json={"channel": "C1"}))
    assert err.response["error"] == "no_text"
    assert len(fake.validation_errors) == 2


def modal(title: str = "Book a session", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "book",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Book"},
        "blocks": [
            {
                "type": "input",
                "block_id": "topic",
                "label": {"type": "plain_text", "text": "Topic"},
                "element": {"type": "plain_text_input", "action_id": "topic", "max_length": 200},
            }
        ],
        **extra,
    }


async def test_views_open_rejects_long_title(fake: FakeSlack) -> None:
    err = await slack_error(client_for(fake).views_open(trigger_id="trig", view=modal("x" * 30)))
    assert err.response["error"] == "invalid_arguments"
    assert "must be less than 25 characters" in err.response["response_metadata"]["messages"][0]
    assert err.response.status_code == 200
    assert fake.validation_errors == [
        "views.open: must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    assert fake.views == {}


async def test_views_lifecycle(fake: FakeSlack) -> None:
    client = client_for(fake)
    opened = (await client.views_open(trigger_id="t1", view=modal(external_id="ext-1")))["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "book"
    updated = (await client.views_update(view_id=opened["id"], view=modal("Updated")))["view"]
    assert updated["id"] == opened["id"] and fake.views[opened["id"]]["title"]["text"] == "Updated"
    await client.views_update(external_id="ext-1", view=modal("By external id", external_id="ext-1"))
    assert fake.views[opened["id"]]["title"]["text"] == "By external id"
    err = await slack_error(client.views_update(view_id=opened["id"], view=modal(), hash="stale"))
    assert err.response["error"] == "hash_conflict"
    pushed = (await client.views_push(trigger_id="t2", view=modal("Step 2")))["view"]
    assert pushed["id"] != opened["id"]

    home = {"type": "home", "blocks": [section("Welcome, mentor!")]}
    published = (await client.views_publish(user_id="U1", view=home))["view"]
    assert fake.home_tabs["U1"]["id"] == published["id"]
    assert fake.home_tabs["U1"]["blocks"] == home["blocks"]
    assert fake.validation_errors == []


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([section(str(i)) for i in range(51)], "no more than 50 items allowed [json-pointer:/blocks]"),
        ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "must be plain_text"),
        ([section("a", block_id="b"), section("b", block_id="b")], "duplicate block_id 'b'"),
        (
            [
                {
                    "type": "input",
                    "label": {"type": "plain_text", "text": "l"},
                    "element": {"type": "plain_text_input"},
                }
            ],
            "input blocks are only allowed in modals",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "y" * 76}, "action_id": "a"}
                    ],
                }
            ],
            "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "a"}, "action_id": "same"},
                        {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": "same"},
                    ],
                }
            ],
            "duplicate action_id 'same' in block",
        ),
        (
            [
                section(
                    "pick",
                    accessory={
                        "type": "static_select",
                        "action_id": "s",
                        "options": [{"text": {"type": "plain_text", "text": "A"}, "value": "a"}],
                        "initial_option": {"text": {"type": "plain_text", "text": "B"}, "value": "b"},
                    },
                )
            ],
            "must match one of the provided options",
        ),
        ([section("t", accessory={"type": "plain_text_input"})], "is not allowed here"),
        ([{"type": "carousel"}], "unknown block type 'carousel'"),
        ([section("e", fields=[{"type": "mrkdwn", "text": "f", "emoji": True}])], "emoji is only allowed"),
    ],
)
async def test_message_block_validation(fake: FakeSlack, blocks: list[dict[str, Any]], problem: str) -> None:
    err = await slack_error(client_for(fake).chat_postMessage(channel="C1", text="fallback", blocks=blocks))
    assert err.response["error"] == "invalid_blocks"
    assert any(problem in p for p in err.response["errors"]), err.response["errors"]
    assert any(problem in v for v in fake.validation_errors)
    assert fake.messages["C1"] == []


async def test_valid_rich_message_passes(fake: FakeSlack) -> None:
    option = {"text": {"type": "plain_text", "text": "Python"}, "value": "py"}
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Mentors", "emoji": True}},
        section(
            "*Ada*",
            block_id="m1",
            accessory={
                "type": "button",
                "action_id": "request",
                "text": {"type": "plain_text", "text": "Request"},
            },
        ),
        # The same action_id in another block is fine for Slack.
        section(
            "*Grace*",
            block_id="m2",
            accessory={
                "type": "button",
                "action_id": "request",
                "text": {"type": "plain_text", "text": "Request"},
            },
        ),
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "2 mentors"}]},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "static_select",
                    "action_id": "topic",
                    "options": [option],
                    "initial_option": option,
                },
                {"type": "overflow", "action_id": "more", "options": [option]},
                {"type": "datepicker", "action_id": "day", "initial_date": "2024-02-29"},
            ],
        },
    ]
    await client_for(fake).chat_postMessage(channel="C1", text="Mentors", blocks=blocks)
    assert fake.validation_errors == []
    assert fake.messages["C1"][0]["blocks"] == blocks


async def test_modal_with_inputs_needs_submit(fake: FakeSlack) -> None:
    view = modal()
    del view["submit"]
    err = await slack_error(client_for(fake).views_open(trigger_id="t", view=view))
    assert err.response["error"] == "invalid_arguments"
    assert "submit" in fake.validation_errors[0]


# -- ephemerals, response_url, files -------------------------------------------


async def test_post_ephemeral_requires_membership(fake: FakeSlack) -> None:
    fake.add_user("U3")
    client = client_for(fake)
    resp = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert resp["message_ts"]
    err = await slack_error(client.chat_postEphemeral(channel="C1", user="U3", text="nope"))
    assert err.response["error"] == "user_not_in_channel"
    await client.chat_postEphemeral(channel="DU3", user="U3", text="in a DM")
    assert [(e["channel"], e["user"], e["text"]) for e in fake.ephemerals] == [
        ("C1", "U1", "only you"),
        ("DU3", "U3", "in a DM"),
    ]


async def test_response_url(fake: FakeSlack) -> None:
    url = fake.response_url("interaction-1")
    resp = await AsyncWebhookClient(url).send(text="Done!", replace_original=True, response_type="ephemeral")
    assert resp.status_code == 200 and resp.body == "ok"
    assert fake.ephemerals[-1]["key"] == "interaction-1"
    assert fake.ephemerals[-1]["text"] == "Done!" and fake.ephemerals[-1]["replace_original"] is True
    assert fake.response_url() != fake.response_url()
    assert fake.calls_to("response_url")[0].ok


async def test_files_upload_v2_end_to_end(fake: FakeSlack) -> None:
    resp = await client_for(fake).files_upload_v2(
        channel="C1",
        content="name,topic\nada,python\n",
        filename="sessions.csv",
        title="Sessions",
        initial_comment="Here is the export",
    )
    assert resp["file"]["id"].startswith("F") and resp["file"]["title"] == "Sessions"
    assert fake.files == [
        {
            "id": resp["file"]["id"],
            "filename": "sessions.csv",
            "title": "Sessions",
            "content": b"name,topic\nada,python\n",
            "alt_txt": None,
            "image_type": "",
            "channel_id": "C1",
            "channels": ["C1"],
            "initial_comment": "Here is the export",
            "thread_ts": None,
        }
    ]
    assert [c.method for c in fake.calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert fake.messages["C1"][-1]["text"] == "Here is the export"
    assert fake.validation_errors == []


async def test_multipart_upload_is_accepted(fake: FakeSlack) -> None:
    client = client_for(fake)
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    form = aiohttp.FormData()
    form.add_field("file", b"abc", filename="a.txt")
    async with aiohttp.ClientSession() as session, session.post(url["upload_url"], data=form) as resp:
        assert resp.status == 200
    await client.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "A"}])
    assert fake.files[0]["content"] == b"abc" and fake.files[0]["channel_id"] is None


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


async def test_image_blocks_may_show_uploaded_images_by_slack_file(fake: FakeSlack) -> None:
    client = client_for(fake)
    chart = await client.files_upload_v2(
        file_uploads=[{"content": PNG, "filename": "chart.png", "title": "Chart", "alt_txt": "3 requests"}],
        channel="C1",
    )
    text = await client.files_upload_v2(content="a,b\n", filename="chart.png", title="Not an image")
    image_id, text_id = chart["file"]["id"], text["file"]["id"]
    assert fake.files[0]["alt_txt"] == "3 requests" and fake.files[0]["image_type"] == "png"

    def image(source: dict[str, Any]) -> dict[str, Any]:
        return {"type": "image", "alt_text": "3 requests", **source}

    good = [
        image({"slack_file": {"id": image_id}}),
        image({"slack_file": {"url": f"https://x/{image_id}/c.png"}}),
    ]
    await client.chat_postMessage(channel="C1", text="charts", blocks=good)
    await client.views_publish(user_id="U1", view={"type": "home", "blocks": good})
    for bad, problem in [
        (image({"slack_file": {"id": "FNOPE"}}), "invalid slack file: not found"),
        (image({"slack_file": {"id": text_id}}), "only png, jpg, jpeg and gif"),
        (image({"slack_file": {"id": image_id, "url": "u"}}), "either url or id"),
        (image({"slack_file": {"id": image_id}, "image_url": "https://x/a.png"}), "not both"),
    ]:
        err = await slack_error(client.chat_postMessage(channel="C1", text="x", blocks=[bad]))
        assert err.response["error"] == "invalid_blocks"
        assert any(problem in p for p in err.response["response_metadata"]["messages"]), err.response
        err = await slack_error(client.views_publish(user_id="U1", view={"type": "home", "blocks": [bad]}))
        assert any(problem in p for p in err.response["response_metadata"]["messages"]), err.response


async def test_complete_upload_without_upload_fails(fake: FakeSlack) -> None:
    client = client_for(fake)
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    err = await slack_error(client.files_completeUploadExternal(files=[{"id": url["file_id"]}]))
    assert err.response["error"] == "file_not_found"


# -- faults -----------------------------------------------------------------


async def test_429_is_surfaced_with_retry_after(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=7)
    err = await slack_error(client_for(fake).chat_postMessage(channel="C1", text="hi"))
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "7"
    assert err.response["error"] == "ratelimited"
    assert fake.messages["C1"] == []
    assert fake.calls[-1].error == "ratelimited" and not fake.calls[-1].ok
    # The fault was used up: the next call goes through.
    await client_for(fake).chat_postMessage(channel="C1", text="hi")
    assert fake.validation_errors == []


async def test_retry_handler_recovers_from_429(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    client = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    resp = await client.chat_postMessage(channel="C1", text="eventually")
    assert resp["ok"]
    assert [c.ok for c in fake.calls_to("chat.postMessage")] == [False, True]
    assert len(fake.messages["C1"]) == 1


async def test_500_and_scripted_errors(fake: FakeSlack) -> None:
    fake.fail_next(None, status=500)
    fake.fail_next("conversations.open", error="user_not_found", times=2)
    client = client_for(fake)
    err = await slack_error(client.auth_test())
    assert err.response.status_code == 500
    for _ in range(2):
        err = await slack_error(client.conversations_open(users="U1"))
        assert err.response["error"] == "user_not_found"
    assert (await client.conversations_open(users="U1"))["channel"]["id"] == "DU1"
    assert [c.error for c in fake.calls] == ["http_500", "user_not_found", "user_not_found", None]


async def test_delay_causes_timeout_but_the_call_still_lands(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", delay=0.4)
    client = client_for(fake, timeout=0.1)
    with pytest.raises(TimeoutError):
        await client.chat_postMessage(channel="C1", text="slow")
    # Like real Slack, the message is posted even though the client gave up.
    for _ in range(50):
        if fake.messages["C1"]:
            break
        await asyncio.sleep(0.02)
    assert [m["text"] for m in fake.messages["C1"]] == ["slow"]


async def test_stop_does_not_wait_for_injected_delays() -> None:
    fake = FakeSlack()
    await fake.start()
    fake.fail_next(None, delay=30)
    client = AsyncWebClient(token=TOKEN, base_url=fake.url, timeout=0.1)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await client.auth_test()
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 1.5


async def test_rate_limit_per_channel(fake: FakeSlack) -> None:
    fake.add_channel("C2", members=["UBOT"])
    fake.rate_limit("chat.postMessage", per_channel_per_second=2)
    client = client_for(fake)
    await client.chat_postMessage(channel="C1", text="1")
    await client.chat_postMessage(channel="C1", text="2")
    err = await slack_error(client.chat_postMessage(channel="C1", text="3"))
    assert err.response.status_code == 429
    assert int(err.response.headers["Retry-After"]) >= 1
    await client.chat_postMessage(channel="C2", text="other channel is fine")
    await client.chat_update(channel="C1", ts=fake.messages["C1"][0]["ts"], text="other method is fine")

    # Honouring Retry-After is enough to get through: the value is correct.
    retrying = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    await retrying.chat_postMessage(channel="C1", text="3 again")
    assert [m["text"] for m in fake.messages["C1"]] == ["other method is fine", "2", "3 again"]
    assert fake.validation_errors == []


async def run_chaos(seed: int) -> list[tuple[bool, str | None]]:
    async with FakeSlack() as fake:
        fake.fail_randomly(0.5, seed=seed, methods={"auth.test"}, max_delay=0.02)
        client = AsyncWebClient(token=TOKEN, base_url=fake.url)
        for _ in range(16):
            with contextlib.suppress(SlackApiError):
                await client.auth_test()
        await client.users_info(user="UBOT")  # not in `methods`: never fails
        return [(c.ok, c.error) for c in fake.calls]


async def test_fail_randomly_is_deterministic() -> None:
    first, again, other = await run_chaos(1), await run_chaos(1), await run_chaos(2)
    assert first == again
    assert first != other
    errors = {error for _, error in first}
    assert {None, "ratelimited", "http_500"} <= errors
    assert first[-1] == (True, None)


# -- mentions ---------------------------------------------------------------


async def test_raw_mentions(fake: FakeSlack) -> None:
    client = client_for(fake)
    await client.chat_postMessage(
        channel="C1",
        text="hi <@U1> and &lt;!channel&gt; and <!subteam^S123|@mentors>",
        blocks=[section("ping <!here>"), section("safe &lt;@U2&gt;")],
    )
    await client.chat_postEphemeral(channel="C1", user="U1", text="<!everyone>")
    await client.views_publish(user_id="U1", view={"type": "home", "blocks": [section("<@W42|bob>")]})
    await client.chat_postMessage(channel="C1", text="hey @channel", link_names=True)
    await client.chat_postMessage(channel="C1", text="hey @channel")  # no link_names: harmless
    assert sorted(fake.raw_mentions()) == sorted(
        ["<@U1>", "<!subteam^S123|@mentors>", "<!here>", "<!everyone>", "<@W42|bob>", "@channel"]
    )


async def test_extra_methods(fake: FakeSlack) -> None:
    client = client_for(fake)
    first = await client.chat_postMessage(channel="C1", text="one")
    await client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    last = await client.chat_postMessage(channel="C1", text="two")
    history = await client.conversations_history(channel="C1")
    assert [m["text"] for m in history["messages"]] == ["two", "one"]  # newest first, no replies
    await client.chat_delete(channel="C1", ts=last["ts"])
    assert [m["text"] for m in fake.messages["C1"]] == ["one", "in thread"]
    names = [u["name"] async for page in await client.users_list(limit=2) for u in page["members"]]
    assert names == ["bot", "ada", "grace", "ugone", "uotherbot"]
    # A view sent form-encoded (a JSON string) is decoded like Slack does.
    await client.api_call(
        "views.open",
        data={
            "trigger_id": "t",
            "view": '{"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []}',
        },
    )
    assert fake.validation_errors == []
