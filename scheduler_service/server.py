"""The waitress server of `scheduler-service run`: its limits from settings, and the SPEC §3
JSON body for the errors waitress answers itself.

Waitress reads a whole request, body included, before a thread runs the app; so a body over
the limit must be refused by waitress: it answers 413 as soon as a Content-Length says so (the
body is not read) and, for a chunked body, as soon as the limit is passed. A connection that
sends nothing, or a request that never completes, holds no thread, only one of the
``connection_limit`` places until ``channel_timeout`` closes it.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask


def adjustments(config: dict[str, Any]) -> dict[str, Any]:
    """Return waitress' adjustments for the limits in settings."""
    return {
        # Waitress refuses a body of this many bytes or more; the setting is the largest kept.
        "max_request_body_size": config["SCHEDULER_MAX_BODY_BYTES"] + 1,
        "max_request_header_size": config["SCHEDULER_SERVER_MAX_HEADER_BYTES"],
        # Idle or unfinished connections cost a file descriptor and a few kB each, no thread:
        # allow many, and close them after channel_timeout (checked every cleanup_interval).
        "connection_limit": config["SCHEDULER_SERVER_CONNECTION_LIMIT"],
        "channel_timeout": config["SCHEDULER_SERVER_CHANNEL_TIMEOUT"],
        "cleanup_interval": config["SCHEDULER_SERVER_CLEANUP_INTERVAL"],
        "asyncore_use_poll": True,  # select() cannot watch file descriptors above 1023
    }


class _JsonErrorTask(ErrorTask):
    """Waitress' answer to a request it refused (body too large, bad request line, headers too
    large...), in the service's one error body instead of text."""

    def execute(self) -> None:
        error = self.request.error
        message = error.body
        if error.code == 413:
            limit = self.channel.adj.max_request_body_size - 1
            message = f"the body is over {limit} bytes (SCHEDULER_MAX_BODY_BYTES)"
        body = json.dumps(
            {"error_message": message, "code": error.code, "status": HTTPStatus(error.code).phrase}
        ).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


def _answer_errors_in_json(server: Any) -> None:
    # Waitress has no public hook for the body of its own error answers. Read from waitress
    # 3.0.2: each listening BaseWSGIServer makes connections of its `channel_class`, whose
    # `error_task_class` writes the answer to a refused request (`request.error`: code,
    # reason, body). With several listening sockets create_server returns a
    # MultiSocketServer whose `map` holds them.
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = _JsonErrorChannel


def create_server(app: Flask, *, host: str, port: int, threads: int) -> Any:
    """Bind a waitress server for ``app`` with the limits of its settings.

    :raises OSError: the address cannot be bound.
    """
    import waitress

    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="scheduler-service",
        **adjustments(app.config),
    )
    _answer_errors_in_json(server)
    return server
