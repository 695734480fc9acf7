"""The SMTP server the e-mail tests send to: aiosmtpd in a process of its own, delivering
into a Maildir the tests read. Recipients whose address starts with ``bounce`` are refused
for good (550), ``later`` for now (451), as real servers do; a message to an address
starting with ``datafail`` is refused after its content (554), as a content filter does.

Started as ``python -m aiosmtpd -n -l HOST:PORT -c tests.messaging.smtp_server.Maildir DIR``.
"""

import mailbox
from typing import Any


class Maildir:
    def __init__(self, directory: str) -> None:
        self.box = mailbox.Maildir(directory, create=True)

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> "Maildir":
        if len(args) != 1:
            parser.error("give the Maildir directory")
        return cls(args[0])

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("bounce"):
            return "550 5.1.1 No such mailbox"
        if address.startswith("later"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(address.startswith("datafail") for address in envelope.rcpt_tos):
            return "554 5.7.1 Message content rejected"
        self.box.add(envelope.original_content)
        return "250 Message accepted for delivery"
