"""Local stand-in for the Slack Web API and an incoming webhook, for the controller's tests and the demo.

It answers what the controller's notifier sends through `slack-sdk` (`WebClient(token,
base_url=origin + "/api/")` and `WebhookClient(origin + "/services/...")`) as real Slack does:
every Web API answer is HTTP 200 with `ok: false` and an error code when it fails
(`not_authed` without a token, `invalid_auth` for an unknown one, `channel_not_found`,
`message_not_found`, `cant_update_message` when a token edits a message another token posted,
`no_text`, `invalid_blocks` with Slack's json-pointer messages for a section over 3,000
characters, a header over 150 or more than 50 blocks); a rate limit is HTTP 429 with
`Retry-After` and `{"ok": false, "error": "ratelimited"}`. An incoming webhook answers the text
`ok` (no `ts`: a webhook's message cannot be edited) or Slack's webhook errors (`invalid_payload`,
`no_text`, `no_service`).

Instruments for tests: a storm (the next N calls answered 429), a lost response (the next call is
carried out and its connection dropped), an odd answer (the next call is carried out and answered
with what the test gives: a proxy's HTML 502 page, `ok: true` without a `ts`), and a record of every
request with its raw body, so a test counts posts and updates or looks for a canary in what was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.sandbox.http_util import DropConnection, JsonHttpServer, Request, Response, json_response

DEFAULT_TOKEN = "xoxb-standin-0000000000-reconciler"
DEFAULT_CHANNELS = {"data-platform": "C0DATAPLAT"}
WEBHOOK_PATH = "/services/T0STANDIN/B0STANDIN/standinwebhooksecret000"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_TEXT = 40000


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received: the API method (or "webhook"), how it was answered, and its raw body."""

    method: str
    status: int
    ok: bool
    error: str | None
    params: Mapping[str, Any]
    body: bytes
    headers: Mapping[str, str]


@dataclass
class StoredMessage:
    """A message in a channel: what was posted or last edited, by which token, in which thread."""

    ts: str
    channel: str
    text: str
    blocks: list[Any]
    poster: str
    """The token that posted it (only that token may edit it); "webhook" for a webhook post."""
    thread_ts: str | None = None
    metadata: Mapping[str, Any] | None = None
    edits: int = 0
    replies: list[str] = field(default_factory=list)

    def as_slack(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": self.text,
            "blocks": self.blocks,
            "ts": self.ts,
            "bot_id": "B0STANDIN",
        }
        if self.thread_ts is not None:
            message["thread_ts"] = self.thread_ts
        if self.replies:
            message["reply_count"] = len(self.replies)
            message["latest_reply"] = self.replies[-1]
        if self.edits:
            message["edited"] = {"user": "U0STANDIN", "ts": self.ts}
        if self.metadata:
            message["metadata"] = dict(self.metadata)
        return message


def _slack_error(error: str, **extra: Any) -> Response:
    return json_response(200, {"ok": False, "error": error, **extra})


def _invalid_blocks(problem: str, pointer: str) -> Response:
    message = f"{problem} [json-pointer:{pointer}]"
    return _slack_error("invalid_blocks", errors=[message], response_metadata={"messages": [f"[ERROR] {message}"]})


def _text_of(element: Any) -> str:
    return str(element.get("text", "")) if isinstance(element, Mapping) else ""


def check_blocks(blocks: Any) -> Response | None:
    """Slack's Block Kit limits the notifier could break: None when the blocks would be accepted."""
    if not isinstance(blocks, list):
        return _slack_error("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS:
        return _invalid_blocks(f"must provide an array with no more than {MAX_BLOCKS} items", "/blocks")
    for index, block in enumerate(blocks):
        if not isinstance(block, Mapping) or "type" not in block:
            return _invalid_blocks("missing required field: type", f"/blocks/{index}")
        kind = block["type"]
        if kind == "header" and len(_text_of(block.get("text"))) > MAX_HEADER_TEXT:
            return _invalid_blocks(f"must be less than {MAX_HEADER_TEXT + 1} characters", f"/blocks/{index}/text/text")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                return _invalid_blocks("must provide at least one of: text, fields", f"/blocks/{index}")
            if len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
                problem = f"must be less than {MAX_SECTION_TEXT + 1} characters"
                return _invalid_blocks(problem, f"/blocks/{index}/text/text")
            fields = block.get("fields", [])
            if len(fields) > MAX_FIELDS:
                return _invalid_blocks(
                    f"must provide an array with no more than {MAX_FIELDS} items", f"/blocks/{index}/fields"
                )
            for position, item in enumerate(fields):
                if len(_text_of(item)) > MAX_FIELD_TEXT:
                    problem = f"must be less than {MAX_FIELD_TEXT + 1} characters"
                    return _invalid_blocks(problem, f"/blocks/{index}/fields/{position}/text")
    return None


class SlackStandIn:
    """Serves `/api/<method>` (the Web API) and one incoming-webhook path on host:port."""

    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        channels: Mapping[str, str] | None = None,
        *,
        webhook_channel: str = "data-platform",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self.tokens = dict(tokens) if tokens is not None else {DEFAULT_TOKEN: "U0STANDIN"}
        """Accepted bot tokens -> the bot user each one is."""
        self.channels = dict(channels) if channels is not None else dict(DEFAULT_CHANNELS)
        """Channel names (without `#`) -> channel ids."""
        self.webhook_channel = webhook_channel
        self._messages: dict[str, list[StoredMessage]] = {}
        self._requests: list[RecordedRequest] = []
        self._clock = 1_760_000_000_000_000  # microseconds: a ts is "seconds.micros", unique and increasing
        self._storm = 0
        self._retry_after = 1
        self._lose_responses = 0
        self._lose_method: str | None = None
        self._odd_answers: list[Response] = []
        self._server = JsonHttpServer(self._handle, host, port)

    # --- life cycle ---

    def start(self) -> SlackStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """The `base_url` for slack-sdk's WebClient."""
        return f"{self._server.origin}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self._server.origin}{WEBHOOK_PATH}"

    # --- fault injection ---

    def storm(self, calls: int, retry_after: int = 1) -> None:
        """Answer the next `calls` requests (API or webhook) with 429 and `Retry-After: retry_after`."""
        with self._lock:
            self._storm = calls
            self._retry_after = retry_after

    def lose_responses(self, calls: int, method: str | None = None) -> None:
        """Carry out the next `calls` requests (to `method` only, when given), then drop their connections
        without answering."""
        with self._lock:
            self._lose_responses = calls
            self._lose_method = method

    def answer_oddly(self, *answers: Response) -> None:
        """Carry out the next `len(answers)` requests, then answer each with the given response instead."""
        with self._lock:
            self._odd_answers.extend(answers)

    # --- read-back for tests ---

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, method: str, *, ok: bool | None = True) -> list[RecordedRequest]:
        """The requests to one API method ("chat.postMessage", "chat.update", "webhook"); by default the successful."""
        return [r for r in self.requests if r.method == method and (ok is None or r.ok == ok)]

    def messages(self, channel: str = "data-platform") -> list[StoredMessage]:
        """Top-level messages of a channel (name or id), oldest first; thread replies are in `thread`."""
        channel_id = self._channel_id(channel) or channel
        with self._lock:
            return [m for m in self._messages.get(channel_id, []) if m.thread_ts is None]

    def thread(self, ts: str, channel: str = "data-platform") -> list[StoredMessage]:
        """The replies in the thread under message `ts`, oldest first."""
        channel_id = self._channel_id(channel) or channel
        with self._lock:
            return [m for m in self._messages.get(channel_id, []) if m.thread_ts == ts]

    # --- the HTTP side ---

    def _channel_id(self, channel: str) -> str | None:
        name = channel.removeprefix("#")
        if name in self.channels:
            return self.channels[name]
        return channel if channel in self.channels.values() else None

    def _next_ts(self) -> str:
        self._clock += 100
        return f"{self._clock // 1_000_000}.{self._clock % 1_000_000:06d}"

    def _handle(self, request: Request) -> Response:
        with self._lock:
            method = "webhook" if request.path.startswith("/services/") else request.path.removeprefix("/api/")
            params = self._params(request)
            if self._storm > 0:
                self._storm -= 1
                response = json_response(429, {"ok": False, "error": "ratelimited"})
                if method == "webhook":
                    response = Response(429, b"rate_limited", "text/plain")
                response.headers["Retry-After"] = str(self._retry_after)
            elif method == "webhook":
                response = self._webhook(request)
            else:
                response = self._api(method, request, params)
            if self._odd_answers:
                response = self._odd_answers.pop(0)
            self._record(method, request, params, response)
            if self._lose_responses > 0 and self._lose_method in (None, method):
                self._lose_responses -= 1
                raise DropConnection()
            return response

    def _record(self, method: str, request: Request, params: Mapping[str, Any], response: Response) -> None:
        ok, error = response.status == 200, None
        if response.content_type and response.content_type.startswith("application/json"):
            answer = json.loads(response.body)
            ok, error = bool(answer.get("ok")), answer.get("error")
            ok = ok and response.status == 200
        elif response.status != 200:
            error = response.body.decode()
        self._requests.append(
            RecordedRequest(method, response.status, ok, error, params, request.body, request.headers)
        )

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {name: values[-1] for name, values in request.query.items()}
        content_type = request.headers.get("content-type", "")
        try:
            if content_type.startswith("application/json"):
                body = request.json()
                params.update(body if isinstance(body, dict) else {})
            elif request.body:
                params.update(request.form())
        except ValueError:
            params["__unparsable__"] = True
        for name in ("blocks", "metadata"):  # form-encoded requests carry them as JSON strings
            if isinstance(params.get(name), str):
                try:
                    params[name] = json.loads(params[name])
                except ValueError:
                    params[name] = None
        return params

    def _token(self, request: Request, params: Mapping[str, Any]) -> str | None:
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            return authorization.removeprefix("Bearer ")
        token = params.get("token")
        return str(token) if token else None

    def _api(self, method: str, request: Request, params: dict[str, Any]) -> Response:
        if params.get("__unparsable__"):
            return _slack_error("invalid_json")
        token = self._token(request, params)
        if token is None:
            return _slack_error("not_authed")
        if token not in self.tokens:
            return _slack_error("invalid_auth")
        handlers = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
        }
        handler = handlers.get(method)
        if handler is None:
            return json_response(404, {"ok": False, "error": "unknown_method", "req_method": method})
        return handler(token, params)

    def _auth_test(self, token: str, params: Mapping[str, Any]) -> Response:
        user = self.tokens[token]
        return json_response(
            200,
            {
                "ok": True,
                "url": "https://standin.slack.com/",
                "team": "Stand-in",
                "user": "reconciler",
                "team_id": "T0STANDIN",
                "user_id": user,
                "bot_id": "B0STANDIN",
                "is_enterprise_install": False,
            },
        )

    def _content(self, params: Mapping[str, Any]) -> tuple[str, list[Any]] | Response:
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks:
            return _slack_error("no_text")
        if blocks is not None:
            problem = check_blocks(blocks)
            if problem is not None:
                return problem
        text = str(text or "")
        if len(text) > MAX_TEXT:
            return _slack_error("msg_too_long")
        return text, list(blocks or [])

    def _post_message(self, token: str, params: Mapping[str, Any]) -> Response:
        channel = self._channel_id(str(params.get("channel", "")))
        if channel is None:
            return _slack_error("channel_not_found")
        content = self._content(params)
        if isinstance(content, Response):
            return content
        text, blocks = content
        thread_ts = params.get("thread_ts") or None
        message = StoredMessage(self._next_ts(), channel, text, blocks, token, thread_ts, params.get("metadata"))
        stored = self._messages.setdefault(channel, [])
        if thread_ts is not None:
            parent = next((m for m in stored if m.ts == thread_ts), None)
            if parent is not None:
                parent.replies.append(message.ts)
        stored.append(message)
        return json_response(200, {"ok": True, "channel": channel, "ts": message.ts, "message": message.as_slack()})

    def _find(self, params: Mapping[str, Any]) -> StoredMessage | Response:
        """The message `ts` in `channel`, which must be an id here (chat.update refuses a channel's name)."""
        channel = str(params.get("channel", ""))
        if channel not in self.channels.values():
            return _slack_error("channel_not_found")
        ts = str(params.get("ts", ""))
        message = next((m for m in self._messages.get(channel, []) if m.ts == ts), None)
        return message if message is not None else _slack_error("message_not_found")

    def _update(self, token: str, params: Mapping[str, Any]) -> Response:
        found = self._find(params)
        if isinstance(found, Response):
            return found
        if found.poster != token:
            return _slack_error("cant_update_message")
        content = self._content(params)
        if isinstance(content, Response):
            return content
        found.text, found.blocks = content
        found.edits += 1
        answer = {"ok": True, "channel": found.channel, "ts": found.ts, "text": found.text, "message": found.as_slack()}
        return json_response(200, answer)

    def _replies(self, token: str, params: Mapping[str, Any]) -> Response:
        found = self._find(params)
        if isinstance(found, Response):
            error = json.loads(found.body)["error"]
            return found if error == "channel_not_found" else _slack_error("thread_not_found")
        thread = [m for m in self._messages[found.channel] if m.thread_ts == found.ts]
        return json_response(200, {"ok": True, "messages": [m.as_slack() for m in [found, *thread]], "has_more": False})

    def _history(self, token: str, params: Mapping[str, Any]) -> Response:
        channel = self._channel_id(str(params.get("channel", "")))
        if channel is None:
            return _slack_error("channel_not_found")
        messages = [m.as_slack() for m in reversed(self._messages.get(channel, [])) if m.thread_ts is None]
        if str(params.get("include_all_metadata", "")).lower() not in ("true", "1"):
            messages = [{k: v for k, v in message.items() if k != "metadata"} for message in messages]
        limit = int(params.get("limit") or 100)
        return json_response(200, {"ok": True, "messages": messages[:limit], "has_more": len(messages) > limit})

    def _webhook(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, b"invalid_method", "text/html")
        if request.path != WEBHOOK_PATH:
            return Response(404, b"no_service", "text/html")
        try:
            payload = request.json()
        except ValueError:
            return Response(400, b"invalid_payload", "text/html")
        if not isinstance(payload, dict):
            return Response(400, b"invalid_payload", "text/html")
        if not payload.get("text") and not payload.get("blocks"):
            return Response(400, b"no_text", "text/html")
        if payload.get("blocks") is not None and check_blocks(payload["blocks"]) is not None:
            return Response(400, b"invalid_blocks", "text/html")
        channel = self._channel_id(self.webhook_channel) or self.webhook_channel
        message = StoredMessage(
            self._next_ts(), channel, str(payload.get("text", "")), list(payload.get("blocks") or []), "webhook"
        )
        self._messages.setdefault(channel, []).append(message)
        return Response(200, b"ok", "text/html")
