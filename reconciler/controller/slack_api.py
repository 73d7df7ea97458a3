"""The notifier's edge to Slack: posts and edits through slack-sdk, paced, with Retry-After honoured.

`SlackNotifier` (controller/slack.py) decides what to say; a `SlackChannel` here says it: a
`BotChannel` through the Web API with a bot token (can post, reply in a thread and edit), or a
`WebhookChannel` through an incoming webhook (can only post: Slack returns no `ts`). Both pace
themselves with token buckets (new messages at most 1 per second per channel, Slack's
`chat.postMessage` limit; edits, Tier 3, about 50 a minute), wait out a 429's `Retry-After` and
try again (a 429 means Slack did nothing, so a retry cannot duplicate), and turn every failure
into a `SlackError` holding Slack's error code only: never the token, which stays inside the
slack-sdk client. slack-sdk's own retry handlers are switched off: its connection-error retry
would post again after a lost answer. Instead every message carries its alert key as Slack message
metadata, and after a post whose answer was lost, a 5xx or a page that is no Slack answer (a proxy's
HTML), or an `ok` without a `ts`, the channel's latest messages are searched for it
(`conversations.history`, scope `channels:history`): found, it counts as posted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from reconciler.errors import ApiError
from reconciler.render.slack import SlackMessage

POSTS_PER_SECOND = 1.0
POST_BURST = 1.0
UPDATES_PER_SECOND = 50 / 60
UPDATE_BURST = 5.0
MAX_RATE_LIMIT_WAITS = 5
"""429 answers waited out per call; then the call fails (the notifier tries again next cycle)."""
MAX_RETRY_AFTER = 120.0
"""A Retry-After longer than this fails the call at once rather than stall the controller's loop."""
EVENT_TYPE = "reconciler_alert"
"""The metadata event type of the controller's messages; their payload holds the alert key."""
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"})

_QUIET = logging.getLogger("reconciler.controller.slack_sdk")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_QUIET.setLevel(logging.CRITICAL)
"""slack-sdk's own logger: silenced, since at debug it prints a webhook's URL (a credential) and request bodies;
the notifier logs what happened itself."""

MessageCallback = Callable[[str, str], None]
"""`on_message(method, result)`: method "chat.postMessage" | "chat.update" | "webhook"; result "ok" |
"ratelimited" | "error" (a metric's labels, so never an open-ended error code)."""


class Stopped(Exception):
    """The controller is shutting down: a wait for Slack's rate limit was cut short."""


class SlackError(ApiError):
    """Slack refused a call or could not be reached; `code` is Slack's error code (`invalid_auth`...)."""

    def __init__(
        self,
        method: str,
        code: str,
        *,
        status: int | None = None,
        transient: bool | None = None,
        ambiguous: bool = False,
    ) -> None:
        self.method = method
        self.code = code
        self.ambiguous = ambiguous
        """No answer came: Slack may or may not have done it."""
        hint = " (check RECONCILER_SLACK_TOKEN; its value is not shown)" if code in AUTH_ERRORS else ""
        super().__init__("slack", f"{method} failed: {code}{hint}", status=status, transient=transient)

    @property
    def auth(self) -> bool:
        return self.code in AUTH_ERRORS


class Clock(Protocol):
    """Time for the buckets: `now()` in seconds and `sleep(seconds)`; tests pass a fake one."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Monotonic time; a sleep ends early (raising `Stopped`) when `stop` is set."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self._stop = stop

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if self._stop is None:
            time.sleep(seconds)
        elif self._stop.wait(seconds):
            raise Stopped()


class TokenBucket:
    """At most `rate` takes per second on average, `burst` at once; `take()` waits for a token."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock.now()

    def take(self) -> None:
        while True:
            now = self._clock.now()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0 - 1e-9:  # float sums of waits land a hair under a whole token
                self._tokens -= 1.0
                return
            self._clock.sleep(max(0.001, (1.0 - self._tokens) / self._rate))

    def penalise(self, seconds: float) -> None:
        """Slack said 429: no token for `seconds`."""
        self._tokens = min(self._tokens, 0.0) - seconds * self._rate


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(1.0, float(raw))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


MAX_ERROR = 200
"""Characters of an error code kept: a proxy's error page stands in for Slack's code, cut short."""


def _masked(text: str, secret: str | None) -> str:
    """An answer's text as an error code: a credential it echoes (a debug page with the request's headers)
    masked, then cut to `MAX_ERROR`."""
    if secret:
        text = text.replace(secret, "***")
    return text[:MAX_ERROR]


def _later(ts: str, after: str) -> bool:
    """Whether Slack timestamp `ts` ("seconds.micros") comes after `after` ("" comes before every ts)."""
    if not after:
        return True
    try:
        return tuple(map(int, ts.split("."))) > tuple(map(int, after.split(".")))
    except ValueError:
        return False


@dataclass(frozen=True)
class Posted:
    """Where a posted message landed: the channel's id (chat.update wants the id, not a name) and its ts."""

    channel: str
    ts: str
    """"" when the message cannot be edited (an incoming webhook's)."""


class SlackChannel(Protocol):
    """Where messages go: `post` says where the message landed; `update` edits one (bot tokens only)."""

    @property
    def can_update(self) -> bool: ...

    @property
    def channel(self) -> str: ...

    def post(self, message: SlackMessage, *, thread_ts: str | None = None, key: str | None = None) -> Posted: ...

    def update(self, channel: str, ts: str, message: SlackMessage) -> None: ...

    def find(self, key: str, *, after: str = "") -> Posted | None:
        """The newest message carrying alert `key` in its metadata and posted after ts `after`, among the
        channel's latest; None when there is none, or when it cannot be told (a webhook, no channel id)."""
        ...

    def remember_channel_id(self, channel_id: str) -> None:
        """The channel's id as an earlier post recorded it (a restart knows a channel given by name only after
        its first post; the search for a post whose answer was lost needs the id)."""
        ...

    def check(self) -> None:
        """Raise `SlackError` when Slack refuses the credentials (a bot token is asked; a webhook cannot be
        without posting, so it is not)."""
        ...


class _Paced:
    """Shared by both channels: buckets, 429 handling and the metrics callback."""

    def __init__(self, clock: Clock, on_message: MessageCallback | None) -> None:
        self._clock = clock
        self._on_message = on_message
        self._post_buckets: dict[str, TokenBucket] = {}
        self._updates = TokenBucket(UPDATES_PER_SECOND, UPDATE_BURST, clock)

    def _count(self, method: str, result: str) -> None:
        if self._on_message is not None:
            self._on_message(method, result)

    def _post_bucket(self, channel: str) -> TokenBucket:
        bucket = self._post_buckets.get(channel)
        if bucket is None:
            bucket = self._post_buckets[channel] = TokenBucket(POSTS_PER_SECOND, POST_BURST, self._clock)
        return bucket

    def _call(self, method: str, bucket: TokenBucket, send: Callable[[], Any]) -> Any:
        """`send()` after a token, again after each 429 (up to `MAX_RATE_LIMIT_WAITS`); errors as `SlackError`."""
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            bucket.take()
            try:
                return send()
            except _RateLimited as limited:
                self._count(method, "ratelimited")
                if limited.seconds > MAX_RETRY_AFTER:
                    raise SlackError(method, f"ratelimited (Retry-After {limited.seconds:.0f} s)", status=429) from None
                bucket.penalise(limited.seconds)
            except SlackError:
                self._count(method, "error")
                raise
        self._count(method, "error")
        raise SlackError(method, "ratelimited", status=429)


class _RateLimited(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited for {seconds} s")
        self.seconds = seconds


class BotChannel(_Paced):
    """The Web API with a bot token: `chat.postMessage` (threads too) and `chat.update` of its own messages."""

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        base_url: str = WebClient.BASE_URL,
        clock: Clock | None = None,
        on_message: MessageCallback | None = None,
        timeout: int = 15,
    ) -> None:
        super().__init__(clock or RealClock(), on_message)
        self._client = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[], logger=_QUIET)
        self._channel = channel
        self._channel_id: str | None = channel if CHANNEL_ID.fullmatch(channel) else None

    @property
    def can_update(self) -> bool:
        return True

    @property
    def channel(self) -> str:
        """The channel's id once known (from a post, or given so), else the name it was given."""
        return self._channel_id or self._channel

    def _send(self, method: str, call: Callable[[], Any]) -> Any:
        try:
            response = call()
        except SlackApiError as exc:
            answer = exc.response
            if answer.status_code == 429:
                raise _RateLimited(_retry_after(answer.headers)) from None
            data = answer.data if isinstance(answer.data, dict) else {}
            code = _masked(str(data.get("error") or f"HTTP {answer.status_code}"), self._client.token)
            if answer.status_code >= 500 or not data:
                # a 5xx or a page that is no Slack answer (a proxy's HTML): Slack may have done it
                raise SlackError(method, code, status=answer.status_code, transient=True, ambiguous=True) from None
            raise SlackError(method, code, status=answer.status_code if answer.status_code != 200 else None) from None
        except (SlackClientError, OSError) as exc:
            code = f"unreachable ({type(exc).__name__})"
            raise SlackError(method, code, transient=True, ambiguous=True) from None
        self._count(method, "ok")
        return response

    def check(self) -> None:
        """`auth.test`: raises `SlackError` (`invalid_auth`...) when Slack refuses the token."""
        self._send("auth.test", self._client.auth_test)

    def post(self, message: SlackMessage, *, thread_ts: str | None = None, key: str | None = None) -> Posted:
        arguments: dict[str, Any] = {
            "channel": self._channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            arguments["thread_ts"] = thread_ts
        if key:
            arguments["metadata"] = {"event_type": EVENT_TYPE, "event_payload": {"key": key}}
        method = "chat.postMessage"
        try:
            response = self._call(
                method,
                self._post_bucket(self._channel),
                lambda: self._send(method, lambda: self._client.chat_postMessage(**arguments)),
            )
        except SlackError as exc:
            found = self._find_posted(key, message.text, thread_ts) if exc.ambiguous and key else None
            if found is None:
                raise
            return found
        self._channel_id = str(response.get("channel") or self._channel)
        ts = response.get("ts")
        if not isinstance(ts, str) or not ts:
            # `ok: true` without a `ts`: posted, but where? Find it by its key, else record it uneditable
            found = self._find_posted(key, message.text) if key else None
            return found if found is not None else Posted(self._channel_id, "")
        return Posted(self._channel_id, ts)

    def remember_channel_id(self, channel_id: str) -> None:
        if self._channel_id is None and CHANNEL_ID.fullmatch(channel_id):
            self._channel_id = channel_id

    def find(self, key: str, *, after: str = "") -> Posted | None:
        for candidate in self._history():
            metadata = candidate.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            ts = str(candidate.get("ts") or "")
            if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == key and _later(ts, after):
                return Posted(str(self._channel_id), ts)
        return None

    def _history(self) -> list[dict[str, Any]]:
        """The channel's latest top-level messages with their metadata, newest first; [] when unknown."""
        if self._channel_id is None:
            return []
        try:
            history = self._client.conversations_history(channel=self._channel_id, limit=20, include_all_metadata=True)
        except (SlackApiError, SlackClientError, OSError):
            return []
        return [m for m in history.get("messages") or [] if isinstance(m, dict)]

    def _find_posted(self, key: str, text: str, thread_ts: str | None = None) -> Posted | None:
        """After a post whose answer was lost: the message, if Slack did post it (found by its metadata key
        and text among the channel's latest, or the thread's replies for a reply). Needs the `channels:history`
        scope and the channel's id, known from an earlier post or given as `slack.channel`; without them the
        post counts as not made."""
        if self._channel_id is None:
            return None
        try:
            if thread_ts:
                history = self._client.conversations_replies(
                    channel=self._channel_id, ts=thread_ts, limit=100, include_all_metadata=True
                )
            else:
                history = self._client.conversations_history(
                    channel=self._channel_id, limit=20, include_all_metadata=True
                )
        except (SlackApiError, SlackClientError, OSError):
            return None
        for candidate in history.get("messages") or []:
            metadata = candidate.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == key and candidate.get("text") == text:
                return Posted(self._channel_id, str(candidate["ts"]))
        return None

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        method = "chat.update"
        self._call(
            method,
            self._updates,
            lambda: self._send(
                method,
                lambda: self._client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks),
            ),
        )


class WebhookChannel(_Paced):
    """An incoming webhook: posts only (its answer is the text `ok`, with no `ts` to edit later)."""

    def __init__(
        self, url: str, *, clock: Clock | None = None, on_message: MessageCallback | None = None, timeout: int = 15
    ) -> None:
        super().__init__(clock or RealClock(), on_message)
        self._client = WebhookClient(url, timeout=timeout, retry_handlers=[], logger=_QUIET)

    @property
    def can_update(self) -> bool:
        return False

    @property
    def channel(self) -> str:
        return "webhook"

    def _send(self, message: SlackMessage) -> None:
        try:
            response = self._client.send(text=message.text, blocks=message.blocks)
        except (SlackClientError, OSError) as exc:
            raise SlackError("webhook", f"unreachable ({type(exc).__name__})", transient=True) from None
        if response.status_code == 429:
            raise _RateLimited(_retry_after(response.headers))
        if response.status_code != 200:
            path = urlsplit(self._client.url).path  # the webhook's secret part
            code = _masked(_masked(response.body or "", self._client.url), path)[:100] or "error"
            raise SlackError("webhook", code, status=response.status_code)
        self._count("webhook", "ok")

    def post(self, message: SlackMessage, *, thread_ts: str | None = None, key: str | None = None) -> Posted:
        self._call("webhook", self._post_bucket("webhook"), lambda: self._send(message))
        return Posted("webhook", "")

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        raise SlackError("webhook", "an incoming webhook cannot edit a message")

    def find(self, key: str, *, after: str = "") -> Posted | None:
        return None

    def remember_channel_id(self, channel_id: str) -> None:
        return None

    def check(self) -> None:
        return None
