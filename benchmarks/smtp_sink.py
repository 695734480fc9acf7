"""The SMTP server the messages benchmark sends to: aiosmtpd in a process of its own that
takes every message and writes one line per message (its Message-ID) to a file, so the
benchmark can count what arrived, and tell a repeat.

  python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Counter FILE   (benchmarks/ on the path)
"""

from typing import Any


class Counter:
    def __init__(self, path: str) -> None:
        self.out = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the server

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> "Counter":
        if len(args) != 1:
            parser.error("give the file to count messages in")
        return cls(args[0])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_id = "?"
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode(errors="replace")
        self.out.write(message_id + "\n")
        return "250 Message accepted for delivery"
