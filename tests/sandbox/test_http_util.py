"""The stand-ins' HTTP server: a client that hangs up mid-request is routine, not a traceback on stderr."""

from __future__ import annotations

import pytest

from reconciler.sandbox.http_util import JsonHttpServer, Response


def test_a_client_hanging_up_prints_nothing_and_other_errors_still_print(capsys: pytest.CaptureFixture[str]) -> None:
    server = JsonHttpServer(lambda _request: Response(200, b"{}"))
    server.start()
    try:
        inner = server._server
        assert inner is not None
        for error in (ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe")):
            try:
                raise error
            except ConnectionError:
                inner.handle_error(None, ("127.0.0.1", 1))
        assert capsys.readouterr().err == ""
        try:
            raise ValueError("a bug in a handler")
        except ValueError:
            inner.handle_error(None, ("127.0.0.1", 1))
        assert "ValueError: a bug in a handler" in capsys.readouterr().err
    finally:
        server.stop()
