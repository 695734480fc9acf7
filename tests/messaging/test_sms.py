"""SMS through the generic gateway and the SMS.ru adapter, against a local HTTP gateway that
records what it was sent and answers as the provider would."""

import json
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from kopilka.config import Settings
from kopilka.messaging.domain import Encoding
from kopilka.messaging.sms import Sms, SmsConfig, SmsFailed, gateway
from tests.fixtures.local_http import free_port
from tests.messaging.conftest import Gateway


def generic(url: str, **extra: Any) -> SmsConfig:
    return SmsConfig(provider="generic", url=url, sender="Shop", token="t0ken", **extra)


async def test_the_generic_gateway_takes_json(local_gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        sent = await gateway(generic(local_gateway.url), session).send(
            Sms("+79161234567", "Вам начислено 5 баллов", "msg-1")
        )
    assert sent.provider_id == "gw-1"
    assert (sent.length.encoding, sent.length.segments) == (Encoding.UCS2, 1)
    [request] = local_gateway.received
    assert request["type"] == "application/json" and request["auth"] == "Bearer t0ken"
    assert request["body"] == {
        "to": "+79161234567",
        "text": "Вам начислено 5 баллов",
        "id": "msg-1",
        "from": "Shop",
    }


async def test_the_generic_gateway_takes_a_form_with_its_own_field_names(
    local_gateway: Gateway,
) -> None:
    local_gateway.answer = (202, '{"message_id": 42}')
    config = generic(
        local_gateway.url,
        body_format="form",
        fields={"to": "phone", "text": "message", "from": "sender", "reference": "client_id"},
        answer_id="message_id",
    )
    async with aiohttp.ClientSession() as session:
        sent = await gateway(config, session).send(Sms("+79161234567", "Hi", "msg-2"))
    assert sent.provider_id == "42" and sent.length.encoding is Encoding.GSM7
    [request] = local_gateway.received
    assert request["type"] == "application/x-www-form-urlencoded"
    assert request["body"] == {
        "phone": "+79161234567",
        "message": "Hi",
        "client_id": "msg-2",
        "sender": "Shop",
    }


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (422, True), (503, False)])
async def test_a_gateways_refusal_says_whether_to_try_again(
    local_gateway: Gateway, status: int, permanent: bool
) -> None:
    local_gateway.answer = (status, '{"error": "no"}')
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SmsFailed) as failed:
            await gateway(generic(local_gateway.url), session).send(Sms("+7916", "x", "m"))
    assert failed.value.permanent is permanent and str(status) in failed.value.detail


async def test_no_gateway_is_a_failure_to_try_again() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SmsFailed) as failed:
            await gateway(generic(f"http://127.0.0.1:{free_port()}/send"), session).send(
                Sms("+7916", "x", "m")
            )
    assert not failed.value.permanent


def smsru_answer(number: str, code: int, **extra: Any) -> str:
    result = {"status": "OK" if code == 100 else "ERROR", "status_code": code, **extra}
    return json.dumps({"status": "OK", "status_code": 100, "sms": {number: result}})


async def test_smsru_sends_a_form_and_reads_its_answer(local_gateway: Gateway) -> None:
    local_gateway.answer = (200, smsru_answer("79161234567", 100, sms_id="000000-10000001"))
    config = SmsConfig(provider="smsru", url=local_gateway.url, sender="Shop", token="api-id")
    async with aiohttp.ClientSession() as session:
        sent = await gateway(config, session).send(Sms("+79161234567", "б" * 71, "msg-3"))
    assert sent.provider_id == "000000-10000001" and sent.length.segments == 2
    [request] = local_gateway.received
    assert request["body"] == {
        "api_id": "api-id",
        "to": "79161234567",
        "msg": "б" * 71,
        "json": "1",
        "from": "Shop",
    }


async def test_smsru_refusing_a_number_is_permanent(local_gateway: Gateway) -> None:
    local_gateway.answer = (
        200,
        smsru_answer("79161234567", 207, status_text="На этот номер нельзя отправлять"),
    )
    config = SmsConfig(provider="smsru", url=local_gateway.url, sender=None, token="api-id")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SmsFailed) as failed:
            await gateway(config, session).send(Sms("+79161234567", "x", "msg-4"))
    assert failed.value.permanent and "нельзя" in failed.value.detail
    local_gateway.answer = (200, "<html>maintenance</html>")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SmsFailed) as odd:
            await gateway(config, session).send(Sms("+79161234567", "x", "msg-5"))
    assert not odd.value.permanent


def test_the_gateway_comes_from_settings() -> None:
    assert SmsConfig.from_settings(Settings()) is None
    smsru = SmsConfig.from_settings(Settings(sms_provider="smsru", sms_token=SecretStr("k")))
    assert smsru is not None and smsru.url == "https://sms.ru/sms/send" and smsru.token == "k"
    with pytest.raises(ValueError, match="KOPILKA_SMS_URL"):
        SmsConfig.from_settings(Settings(sms_provider="generic"))
    custom = SmsConfig.from_settings(
        Settings(sms_provider="generic", sms_url="http://gw/send", sms_fields={"to": "phone"})
    )
    assert custom is not None and custom.fields["to"] == "phone" and custom.fields["text"] == "text"
