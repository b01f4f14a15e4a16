"""One webhook request: a POST to an address that was checked, within a timeout, and
no redirects (``http.client`` never follows one: a 3xx is a failure like a 5xx)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from django.utils.translation import gettext as _

from integrations.webhooks.addresses import Target

# What is read of an answer: its status, and a little of its body for the log.
BODY_LIMIT = 1024


@dataclass(frozen=True)
class Outcome:
    response_code: int | None
    duration_ms: int
    error: str  # "" when the receiver answered 2xx

    @property
    def succeeded(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (already checked), sends ``Host: host``."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to ``address`` with the certificate checked against the host name (SNI)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _summary(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Outcome:
    """POST ``body``; the whole exchange (connect, send, answer) within ``timeout``."""
    started = time.monotonic()
    deadline = started + timeout
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    connection = connection_class(target.host, target.port, target.addresses[0], timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        if connection.sock is not None:
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response = connection.getresponse()
        # Read a little of the body, still within the deadline, then hang up.
        if connection.sock is not None:
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response.read(BODY_LIMIT)
        code = response.status
    except TimeoutError:
        return Outcome(
            None,
            elapsed_ms(),
            _("Timeout: no answer within %(seconds)s s") % {"seconds": f"{timeout:g}"},
        )
    except (OSError, http.client.HTTPException, ssl.SSLError) as error:
        return Outcome(None, elapsed_ms(), _summary(error))
    finally:
        connection.close()
    if 200 <= code < 300:
        return Outcome(code, elapsed_ms(), "")
    if 300 <= code < 400:
        return Outcome(
            code,
            elapsed_ms(),
            _("Redirect (%(code)s): webhooks do not follow redirects") % {"code": code},
        )
    return Outcome(code, elapsed_ms(), _("HTTP %(code)s") % {"code": code})
