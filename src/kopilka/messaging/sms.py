"""SMS through a provider's HTTP API, behind one interface (``SmsGateway.send``).

Two adapters:

- ``generic``: any gateway that takes a POST of JSON or a form. The URL, the format, the
  names of its fields and of the id in its answer are settings; a bearer token is sent if
  one is set.
- ``smsru``: the API of SMS.ru (``POST /sms/send`` with ``api_id``, ``to``, ``msg``,
  ``from``, ``json=1``; the answer's per-number ``status_code`` 100 means taken).

A provider's refusal says whether trying again may help: a 4xx answer or a refusal of the
number is permanent; no connection, a timeout or a 5xx answer is not.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp

from kopilka.config import Settings
from kopilka.messaging.domain import DeliveryFailed, SmsLength, sms_length

Provider = Literal["generic", "smsru"]
BodyFormat = Literal["json", "form"]
ANSWER_SNIPPET = 2000  # bytes of a provider's answer read and kept for the error
GENERIC_FIELDS = {"to": "to", "text": "text", "from": "from", "reference": "id"}


@dataclass(frozen=True)
class Sms:
    to: str  # E.164, "+79161234567"
    text: str
    reference: str  # our id of the message: the provider echoes it in delivery reports


@dataclass(frozen=True)
class Sent:
    """The provider took the message: its id for it (None if it gives none) and the length
    it will bill."""

    provider_id: str | None
    length: SmsLength


class SmsFailed(DeliveryFailed):
    """The gateway did not take the message (see the module's notes on which refusals are
    permanent)."""


@dataclass(frozen=True)
class SmsConfig:
    provider: Provider
    url: str
    sender: str | None
    token: str | None
    body_format: BodyFormat = "json"
    # Field names of the generic gateway's request, and where its answer puts the id.
    fields: dict[str, str] = field(default_factory=lambda: dict(GENERIC_FIELDS))
    answer_id: str = "id"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmsConfig | None":
        """The configured gateway; None when ``KOPILKA_SMS_PROVIDER`` is not set."""
        if settings.sms_provider is None:
            return None
        token = settings.sms_token.get_secret_value() if settings.sms_token else None
        url = settings.sms_url or (SMSRU_URL if settings.sms_provider == "smsru" else "")
        if not url:
            raise ValueError("KOPILKA_SMS_URL is required for the generic SMS gateway")
        return cls(
            provider=settings.sms_provider,
            url=url,
            sender=settings.sms_from,
            token=token,
            body_format=settings.sms_format,
            fields={**GENERIC_FIELDS, **settings.sms_fields},
            answer_id=settings.sms_answer_id,
            timeout=settings.sms_timeout_seconds,
        )


SMSRU_URL = "https://sms.ru/sms/send"
SMSRU_TAKEN = 100


class SmsGateway(Protocol):
    async def send(self, sms: Sms) -> Sent: ...


def gateway(config: SmsConfig, session: aiohttp.ClientSession) -> SmsGateway:
    if config.provider == "smsru":
        return SmsRuGateway(config, session)
    return GenericGateway(config, session)


class _HttpGateway:
    def __init__(self, config: SmsConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    async def _post(self, data: dict[str, str], *, as_json: bool) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with self.session.post(
                self.config.url,
                json=data if as_json else None,
                data=None if as_json else data,
                headers=headers,
                timeout=timeout,
            ) as answer:
                body = (await answer.content.read(ANSWER_SNIPPET)).decode(errors="replace")
                return answer.status, body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SmsFailed(f"cannot reach the SMS gateway: {exc!r}", permanent=False) from exc


def _refused(status: int, body: str) -> SmsFailed:
    return SmsFailed(
        f"the SMS gateway answered {status}: {body[:200]}", permanent=400 <= status < 500
    )


class GenericGateway(_HttpGateway):
    async def send(self, sms: Sms) -> Sent:
        names = self.config.fields
        data = {names["to"]: sms.to, names["text"]: sms.text, names["reference"]: sms.reference}
        if self.config.sender:
            data[names["from"]] = self.config.sender
        status, body = await self._post(data, as_json=self.config.body_format == "json")
        if not 200 <= status < 300:
            raise _refused(status, body)
        return Sent(_answer_id(body, self.config.answer_id), sms_length(sms.text))


def _answer_id(body: str, key: str) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    found = answer.get(key) if isinstance(answer, dict) else None
    return str(found) if found is not None else None


class SmsRuGateway(_HttpGateway):
    async def send(self, sms: Sms) -> Sent:
        number = sms.to.removeprefix("+")
        data = {"api_id": self.config.token or "", "to": number, "msg": sms.text, "json": "1"}
        if self.config.sender:
            data["from"] = self.config.sender
        status, body = await self._post(data, as_json=False)
        if not 200 <= status < 300:
            raise _refused(status, body)
        return Sent(_smsru_id(body, number), sms_length(sms.text))


def _smsru_id(body: str, number: str) -> str:
    """The id SMS.ru gave the message to ``number``; ``SmsFailed`` if it did not take it."""
    try:
        answer: Any = json.loads(body)
        result = answer["sms"][number]
    except (ValueError, KeyError, TypeError):
        raise SmsFailed(
            f"SMS.ru answered what it does not document: {body[:200]}", permanent=False
        ) from None
    if result.get("status_code") != SMSRU_TAKEN:
        text = result.get("status_text") or f"code {result.get('status_code')}"
        raise SmsFailed(f"SMS.ru refused the message: {text}", permanent=True)
    return str(result["sms_id"])
