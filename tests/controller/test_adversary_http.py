"""The controller's HTTP surface against careless and hostile clients: GitHub's form-encoded deliveries, a
replayed delivery, a drip-feeding client, huge headers, odd methods, a standby replica's readiness, and
/metrics with thousands of resources with unicode names."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.controller.app import build
from reconciler.controller.http import ControllerServer, Endpoints
from reconciler.controller.metrics import OUT_OF_SYNC, SYNCED, ControllerMetrics
from reconciler.core.model import ResourceKey
from reconciler.sandbox.launch import StandIns
from tests.controller.conftest import WEBHOOK_SECRET, GitRepo, RecordingNotifier, RunningController, signed, wait_for
from tests.controller.test_loop import GatedLeader, polling_qa

HTTP = httpx.Client(timeout=10)
SAFETY_SECONDS = 30  # only so that a broken build fails instead of hanging; nothing is timed
PUSH = {"ref": "refs/heads/main", "after": "a" * 40}


@pytest.fixture
def served() -> Iterator[tuple[str, list[str]]]:
    pushes: list[str] = []
    endpoints = Endpoints(lambda: True, lambda: True, lambda: b"", pushes.append, "main", WEBHOOK_SECRET)
    server = ControllerServer("127.0.0.1", 0, endpoints)
    server.start()
    yield f"http://127.0.0.1:{server.port}", pushes
    server.stop()


def test_a_form_encoded_delivery_githubs_default_content_type_triggers_a_poll(served: tuple[str, list[str]]) -> None:
    """GitHub's webhook form preselects `application/x-www-form-urlencoded`: the JSON is the `payload` field."""
    url, pushes = served
    body = urllib.parse.urlencode({"payload": json.dumps(PUSH)}).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": signed(body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answer = HTTP.post(f"{url}/webhook/github", content=body, headers=headers)
    assert answer.status_code == 202
    assert pushes == ["a" * 40]
    other = urllib.parse.urlencode({"payload": json.dumps({**PUSH, "ref": "refs/heads/feature"})}).encode()
    answer = HTTP.post(
        f"{url}/webhook/github", content=other, headers={**headers, "X-Hub-Signature-256": signed(other)}
    )
    assert answer.status_code == 204 and pushes == ["a" * 40]
    for junk in (b"payload=%7Bnot-json", b"nothing=here", b"payload=1&payload=2"):
        answer = HTTP.post(
            f"{url}/webhook/github", content=junk, headers={**headers, "X-Hub-Signature-256": signed(junk)}
        )
        assert answer.status_code == 400, junk
    assert pushes == ["a" * 40]


def test_a_json_body_is_read_whatever_content_type_it_claims(served: tuple[str, list[str]]) -> None:
    url, pushes = served
    body = json.dumps(PUSH).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body), "Content-Type": "text/plain"}
    assert HTTP.post(f"{url}/webhook/github", content=body, headers=headers).status_code == 202
    assert pushes == ["a" * 40]


def test_odd_methods_and_huge_headers_do_nothing(served: tuple[str, list[str]]) -> None:
    url, pushes = served
    assert HTTP.head(f"{url}/webhook/github").status_code in (404, 405, 501)
    assert HTTP.get(f"{url}/webhook/github").status_code == 404
    assert HTTP.head(f"{url}/healthz").status_code == 200
    many = {f"X-Junk-{n}": "x" * 100 for n in range(200)}
    body = json.dumps(PUSH).encode()
    answer = HTTP.post(
        f"{url}/webhook/github",
        content=body,
        headers={**many, "X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)},
    )
    assert answer.status_code == 431
    assert pushes == []
    assert HTTP.get(f"{url}/healthz").status_code == 200


def test_a_client_dripping_its_headers_is_cut_off_whole_not_per_byte(
    served: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slowloris: a byte every tenth of a second never trips a per-read timeout; a deadline per request does."""
    from reconciler.controller import http as server_module

    monkeypatch.setattr(server_module, "REQUEST_DEADLINE_SECONDS", 1.0)
    url, _pushes = served
    host, port = url.removeprefix("http://").split(":")
    request = b"POST /webhook/github HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"x" * 10_000
    closed = False
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        deadline = time.monotonic() + SAFETY_SECONDS
        for byte in request:
            try:
                raw.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            raw.settimeout(0.1)
            try:
                if raw.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            if time.monotonic() > deadline:
                break
    assert closed, "a drip-feeding client kept its connection (and a server thread) open"
    assert HTTP.get(f"{url}/healthz").status_code == 200


def test_a_replayed_older_delivery_never_takes_the_branch_back(
    repo: GitRepo, start_controller: Callable[..., RunningController]
) -> None:
    first = repo.git("rev-parse", "HEAD")
    running = start_controller(poll=30.0)  # webhooks only, in practice
    wait_for(lambda: running.applied("qa", first), "the first commit applied")
    second = repo.commit("next", repo.replace("environments/qa.yaml", "*/6", "*/4"))
    assert running.push_webhook(second).status_code == 202
    wait_for(lambda: running.applied("qa", second), "the pushed commit applied")
    polls = running.app.metrics.git_requests.labels(request_type="ls-remote")._value.get()
    assert running.push_webhook(first).status_code == 202  # the older delivery, validly signed, sent again
    wait_for(
        lambda: running.app.metrics.git_requests.labels(request_type="ls-remote")._value.get() > polls,
        "the poll the replay triggered",
    )
    assert running.push_webhook(first).status_code == 202
    assert running.app.controller.statuses["qa"].applied == second
    assert len(running.applied("qa", first)) == 1 and len(running.applied("qa", second)) == 1


def test_a_standby_replica_is_ready_so_a_rollout_or_a_drain_of_two_replicas_can_proceed(
    repo: GitRepo, standins: StandIns, tmp_path: Path
) -> None:
    """The chart runs 2 replicas with a PodDisruptionBudget and a rolling update that waits for the new pod to
    be ready: a standby that is never ready would stall every upgrade and block drains."""
    leader = GatedLeader()
    settings = polling_qa(repo, standins, tmp_path)
    app = build(settings, leadership=leader, notifier=RecordingNotifier())
    port = app.start_server()
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: app.controller.waiting_to_lead, "waiting for the lease")
        assert HTTP.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert HTTP.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        app.controller.shutdown()
        thread.join(timeout=SAFETY_SECONDS)
    assert not thread.is_alive()


def test_metrics_hold_five_thousand_resources_with_unicode_names_and_drop_them_when_they_go() -> None:
    metrics = ControllerMetrics()
    odd = ["données-été", "名前", 'quote"d', "back\\slash", "new\nline", "emoji-🚀", "x" * 300]
    keys = [ResourceKey("airbyte", "connection", f"{odd[n % len(odd)]}-{n}") for n in range(5000)]
    metrics.set_resources("qa", {key: SYNCED if n % 2 else OUT_OF_SYNC for n, key in enumerate(keys)})
    text = metrics.render().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    series = families["reconciler_resource_info"].samples
    assert len(series) == 5000
    assert {sample.labels["name"] for sample in series} == {key.name for key in keys}
    metrics.set_resources("qa", {keys[0]: SYNCED})
    families = {family.name: family for family in text_string_to_metric_families(metrics.render().decode())}
    assert [sample.labels["name"] for sample in families["reconciler_resource_info"].samples] == [keys[0].name]


def test_a_delivery_replayed_many_times_triggers_one_poll(served: tuple[str, list[str]]) -> None:
    """A captured delivery is validly signed for ever: replayed in a loop it must not turn into a stream of
    ls-remote calls to GitHub (rate limits); GitHub's own redelivery keeps the id, so it is also one poll."""
    url, pushes = served
    body = json.dumps(PUSH).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)}
    first = {**headers, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    answers = [HTTP.post(f"{url}/webhook/github", content=body, headers=first).status_code for _ in range(5)]
    assert answers[0] == 202 and set(answers[1:]) == {200}
    assert pushes == ["a" * 40]
    other = {**headers, "X-GitHub-Delivery": "8a0f0b4e-cc78-11e3-81ab-4c9367dc0958"}
    assert HTTP.post(f"{url}/webhook/github", content=body, headers=other).status_code == 202
    assert pushes == ["a" * 40, "a" * 40]
