"""E-mail through a real SMTP server process (aiosmtpd) that delivers into a Maildir."""

from email.message import EmailMessage

import pytest
from pydantic import SecretStr

from kopilka.config import Settings
from kopilka.messaging.email import Email, SendFailed, SmtpChannel, SmtpConfig, mime
from tests.messaging.conftest import SmtpServer, free_port


def channel(port: int) -> SmtpChannel:
    config = SmtpConfig("127.0.0.1", port, "none", None, None, "Kopilka <club@shop.example>", 10)
    return SmtpChannel(config)


def by_id(server: SmtpServer, message_id: str) -> EmailMessage:
    found = [m for m in server.received() if m["Message-ID"] == message_id]
    assert len(found) == 1, f"{len(found)} messages with {message_id}"
    return found[0]


async def test_a_service_message_arrives_with_both_parts(smtp_server: SmtpServer) -> None:
    email = Email(
        to="anna@example.com",
        subject="Вам начислено 5 баллов",
        text="Анна, вам начислено 5 баллов.",
        html="<p>Анна, вам начислено <b>5 баллов</b>.</p>",
    )
    message_id = await channel(smtp_server.port).send(email)
    received = by_id(smtp_server, message_id)
    assert received["To"] == "anna@example.com"
    assert received["From"] == "Kopilka <club@shop.example>"
    assert received["Subject"] == "Вам начислено 5 баллов"
    assert received["List-Unsubscribe"] is None  # a service message
    text = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert text is not None and "вам начислено 5 баллов" in text.get_content()
    assert html is not None and "<b>5 баллов</b>" in html.get_content()
    assert message_id.endswith("@shop.example>")


async def test_marketing_mail_unsubscribes_in_one_click(smtp_server: SmtpServer) -> None:
    url = "https://club.example/u/abc123"
    email = Email(to="boris@example.com", subject="Sale", text="Sale!", unsubscribe_url=url)
    received = by_id(smtp_server, await channel(smtp_server.port).send(email))
    assert received["List-Unsubscribe"] == f"<{url}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not received.is_multipart()  # no HTML given: plain text only


async def test_a_refused_mailbox_is_a_permanent_failure(smtp_server: SmtpServer) -> None:
    before = len(smtp_server.received())
    with pytest.raises(SendFailed) as refused:
        await channel(smtp_server.port).send(Email("bounce@example.com", "Hi", "Hi"))
    assert refused.value.permanent and refused.value.code == 550
    assert "No such mailbox" in refused.value.detail
    with pytest.raises(SendFailed) as later:
        await channel(smtp_server.port).send(Email("later@example.com", "Hi", "Hi"))
    assert not later.value.permanent and later.value.code == 451
    assert len(smtp_server.received()) == before


async def test_no_server_is_a_failure_to_try_again() -> None:
    with pytest.raises(SendFailed) as failed:
        await channel(free_port()).send(Email("anna@example.com", "Hi", "Hi"))
    assert not failed.value.permanent and "cannot reach 127.0.0.1" in failed.value.detail


def test_the_configuration_comes_from_settings_and_never_shows_the_password() -> None:
    assert SmtpConfig.from_settings(Settings(smtp_host=None)) is None
    settings = Settings(
        smtp_host="smtp.example.com",
        smtp_port=465,
        smtp_security="tls",
        smtp_username="club",
        smtp_password=SecretStr("s3cret"),
        smtp_from="Club <club@example.com>",
    )
    config = SmtpConfig.from_settings(settings)
    assert config is not None and config.password == "s3cret" and config.security == "tls"
    assert "s3cret" not in config.shown() and "s3cret" not in repr(settings)
    assert config.shown() == "smtp://club@smtp.example.com:465 (tls), from Club <club@example.com>"


def test_a_message_without_html_is_plain_text() -> None:
    message = mime(Email("a@example.com", "Subject", "Body"), "Club <club@example.com>")
    assert message.get_content_type() == "text/plain"
    assert message["Date"] and message["Message-ID"].endswith("@example.com>")


async def test_connections_are_kept_and_a_dead_one_is_replaced(smtp_server: SmtpServer) -> None:
    config = SmtpConfig("127.0.0.1", smtp_server.port, "none", None, None, "Shop <s@x.example>", 10)
    sender = SmtpChannel(config, keep=2)
    first = await sender.send(Email("keep-1@example.com", "One", "One"))
    second = await sender.send(Email("keep-2@example.com", "Two", "Two"))
    assert len(sender._idle) == 1  # the second message went over the first's connection
    # The server drops the idle connection (a restart, an idle timeout): the next message
    # still goes, over a new connection.
    sender._idle[0][0].close()
    third = await sender.send(Email("keep-3@example.com", "Three", "Three"))
    await sender.close()
    got = {m["Message-ID"] for m in smtp_server.received()}
    assert {first, second, third} <= got
    assert sender._idle == []


async def test_a_long_unsubscribe_link_stays_one_link_and_a_subject_one_line(
    smtp_server: SmtpServer,
) -> None:
    link = "https://club.example/m/u/" + "A" * 160 + "." + "B" * 22
    config = SmtpConfig("127.0.0.1", smtp_server.port, "none", None, None, "Shop <s@x.example>", 10)
    sender = SmtpChannel(config)
    sent = await sender.send(
        Email(
            "long-link@example.com", "Скидки\r\nBcc: victim@example.com", "Hi", unsubscribe_url=link
        )
    )
    await sender.close()
    [raw] = [r for r in smtp_server.raw() if sent.encode() in r]
    assert f"List-Unsubscribe: <{link}>\r\n".encode() in raw.replace(b"\r\n", b"\n").replace(
        b"\n", b"\r\n"
    )
    [got] = [m for m in smtp_server.received() if m["Message-ID"] == sent]
    assert got["Subject"] == "Скидки Bcc: victim@example.com"
    assert got["Bcc"] is None
