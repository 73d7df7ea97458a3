"""The controller's HTTP server on a real socket: probes, metrics and the GitHub webhook's signature check."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from reconciler.controller.http import MAX_BODY, ControllerServer, Endpoints, parse_listen, signature_ok
from tests.controller.conftest import WEBHOOK_SECRET, signed

HTTP = httpx.Client(timeout=10)
"""One client for the module (each `httpx.get` would build its own TLS context, a tenth of a second)."""


@dataclass
class Probe:
    alive: bool = True
    ready: bool = False
    pushes: list[str] = field(default_factory=list)


@pytest.fixture
def served() -> Iterator[tuple[str, Probe]]:
    probe = Probe()
    endpoints = Endpoints(
        alive=lambda: probe.alive,
        ready=lambda: probe.ready,
        metrics=lambda: b"reconciler_leader 1.0\n",
        on_push=probe.pushes.append,
        branch="main",
        webhook_secret=WEBHOOK_SECRET,
    )
    server = ControllerServer("127.0.0.1", 0, endpoints)
    server.start()
    yield f"http://127.0.0.1:{server.port}", probe
    server.stop()


def post(url: str, body: bytes, event: str = "push", signature: str | None = "sign") -> httpx.Response:
    headers = {"X-GitHub-Event": event}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signed(body) if signature == "sign" else signature
    return HTTP.post(f"{url}/webhook/github", content=body, headers=headers, timeout=10)


PUSH = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()


def test_probes_follow_the_loop(served: tuple[str, Probe]) -> None:
    url, probe = served
    assert HTTP.get(f"{url}/healthz").status_code == 200
    assert HTTP.get(f"{url}/readyz").status_code == 503
    probe.ready, probe.alive = True, False
    assert HTTP.get(f"{url}/readyz").status_code == 200
    assert HTTP.get(f"{url}/healthz").status_code == 503
    metrics = HTTP.get(f"{url}/metrics")
    assert metrics.status_code == 200 and metrics.text == "reconciler_leader 1.0\n"
    assert HTTP.get(f"{url}/nope").status_code == 404


def test_a_signed_push_to_the_branch_triggers_a_poll(served: tuple[str, Probe]) -> None:
    url, probe = served
    assert post(url, PUSH).status_code == 202
    assert probe.pushes == ["a" * 40]


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        signed(PUSH, "another-secret"),
        signed(PUSH + b" ")[:-1],
        signed(PUSH).upper(),
    ],
)
def test_a_bad_or_missing_signature_is_401_and_polls_nothing(served: tuple[str, Probe], signature: str | None) -> None:
    url, probe = served
    answer = post(url, PUSH, signature=signature)
    assert answer.status_code == 401
    assert probe.pushes == []
    assert WEBHOOK_SECRET not in answer.text


def test_a_body_changed_after_signing_is_refused(served: tuple[str, Probe]) -> None:
    url, probe = served
    other = json.dumps({"ref": "refs/heads/main", "after": "b" * 40}).encode()
    answer = post(url, other, signature=signed(PUSH))
    assert answer.status_code == 401 and probe.pushes == []


def test_other_events_and_branches_do_nothing(served: tuple[str, Probe]) -> None:
    url, probe = served
    assert post(url, b'{"zen": "hi"}', event="ping").status_code == 200
    assert post(url, b'{"action": "opened"}', event="pull_request").status_code == 204
    feature = json.dumps({"ref": "refs/heads/feature", "after": "c" * 40}).encode()
    assert post(url, feature).status_code == 204
    tag = json.dumps({"ref": "refs/tags/main", "after": "c" * 40}).encode()
    assert post(url, tag).status_code == 204
    assert post(url, b"not json").status_code == 400
    assert probe.pushes == []


def test_a_body_over_a_mebibyte_is_refused_unread(served: tuple[str, Probe]) -> None:
    url, probe = served
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(
            b"POST /webhook/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
            + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
        )
        answer = raw.recv(1024)
    assert answer.startswith(b"HTTP/1.1 413")
    assert probe.pushes == []


def test_without_a_secret_the_webhook_is_not_configured() -> None:
    endpoints = Endpoints(lambda: True, lambda: True, lambda: b"", lambda _c: None, "main", None)
    server = ControllerServer("127.0.0.1", 0, endpoints)
    server.start()
    try:
        answer = post(f"http://127.0.0.1:{server.port}", PUSH)
        assert (answer.status_code, answer.text) == (404, "webhook not configured\n")
    finally:
        server.stop()


def test_signature_check_and_listen_parsing() -> None:
    assert signature_ok("s", b"body", signed(b"body", "s"))
    assert not signature_ok("s", b"body", None)
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    for bad in ("8080", "host:", "host:99999", "host:http"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


def test_a_client_that_stops_sending_is_cut_off(
    served: tuple[str, Probe], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from reconciler.controller import http as server_module

    monkeypatch.setattr(server_module._Handler, "timeout", 0.3)
    url, probe = served
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST /webhook/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nContent-Length: 100\r\n\r\n{")
        assert raw.recv(1024) == b""  # closed by the server, without an answer
    assert probe.pushes == []
    assert HTTP.get(f"{url}/healthz").status_code == 200  # and it still serves
    assert "Traceback" not in capfd.readouterr().err
