"""A Kubernetes API server that accepts connections and never answers: every call of reconciler's client must
end with a temporary KubeError, not wait forever (the official client waits without limit when a call gives no
`_request_timeout`, and only the Lease calls gave one). A hung state read would stop the controller's loop,
its drift checks and every other environment, for good."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clients.kube import calls as calls_module
from reconciler.clients.kube.calls import KubeError
from reconciler.clients.kube.client import KubeClient

SAFETY_SECONDS = 30  # only so that a broken build fails instead of hanging; nothing is timed


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts every connection, reads what comes, and never writes a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    listener.close()
    for connection in held:
        connection.close()


def kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
        f"clusters: [{{name: silent, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: silent, context: {cluster: silent, user: u, namespace: data}}]\n"
    )
    return path


@pytest.mark.slow  # a long end-to-end run: in make test, not make check
def test_every_call_to_an_api_that_never_answers_times_out(
    silent_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_module, "REQUEST_TIMEOUT_SECONDS", (0.5, 0.5))
    kube = KubeClient.from_kubeconfig(str(kubeconfig(tmp_path, silent_server)))
    outcomes: list[BaseException | object] = []

    def calls() -> None:
        for call in (
            lambda: kube.read_config_map("data", "reconciler-state-qa"),
            lambda: kube.list_config_maps("data", {"reconciler.io/state": "x"}),
            lambda: kube.read_lease_record("data", "reconciler-state-qa-lock"),
        ):
            try:
                outcomes.append(call())
            except BaseException as exc:  # the outcome is what is checked
                outcomes.append(exc)

    thread = threading.Thread(target=calls, daemon=True)
    thread.start()
    thread.join(timeout=SAFETY_SECONDS)
    assert not thread.is_alive(), "a call to an API that never answers is still waiting"
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert isinstance(outcome, KubeError) and outcome.retryable, outcome
