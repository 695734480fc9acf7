"""A real HTTP server on 127.0.0.1 (a thread) that records webhook requests and answers
with the statuses it is told to."""

import base64
import hashlib
import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: deque[int] = deque()  # statuses to give first; then ``default``
        self.default = 200
        self.delay = 0.0  # seconds each answer waits
        self.huge = 0  # bytes of body to answer with (a receiver that never stops talking)
        self.body: bytes | None = None  # the answer's body instead of the usual one
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.answers.popleft() if receiver.answers else receiver.default
                answer = b'{"ok": true}' if status < 300 else b"receiver is down"
                if receiver.body is not None:
                    answer = receiver.body
                self.send_response(status)
                if receiver.huge:
                    self.send_header("content-length", str(receiver.huge))
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        for _ in range(receiver.huge // len(chunk)):
                            self.wfile.write(chunk)
                    except OSError:
                        pass  # the sender stopped reading, as it should
                    return
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, written here from the specification, independently of
    the code under test: HMAC-SHA256 over ``id.timestamp.body`` with the base64-decoded
    secret after ``whsec_``; any of the space-separated ``v1,<sig>`` values may match."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = b".".join(
        [headers["webhook-id"].encode(), headers["webhook-timestamp"].encode(), body]
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False
