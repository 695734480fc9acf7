"""What the messaging tests share: a real SMTP server process (aiosmtpd) delivering into
a Maildir the tests read."""

import mailbox
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self, port: int, maildir: Path) -> None:
        self.port = port
        self.maildir = maildir

    def received(self) -> list[EmailMessage]:
        box = mailbox.Maildir(self.maildir, create=False)
        found = [
            message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()
        ]
        return [m for m in found if isinstance(m, EmailMessage)]


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    # Not made here: the server makes it, with the Maildir's three folders.
    maildir = tmp_path_factory.mktemp("smtp") / "maildir"
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "tests.messaging.smtp_server.Maildir",
            str(maildir),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    said = process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"the SMTP server did not start: {said!r}") from None
                time.sleep(0.05)
        yield SmtpServer(port, maildir)
    finally:
        process.terminate()
        process.wait(timeout=10)
