"""Web push: the program's VAPID key pair (RFC 8292), and messages encrypted for one
browser subscription (RFC 8291, ``aes128gcm``) and POSTed to its push service.

The member app's service worker subscribes with the public key (the "application server
key") and gives us the subscription: an endpoint and two keys. Only that browser can read
what we send; the push service only passes it on.
"""

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kopilka.config import Settings
from kopilka.messaging.domain import DeliveryFailed

if TYPE_CHECKING:
    import aiohttp

# A push service keeps an undelivered message this long (seconds) for a browser that is
# offline; a points notice a day late is still worth reading.
DEFAULT_TTL = 24 * 3600
VAPID_LIFETIME = 12 * 3600  # a VAPID token is valid at most a day; renewed for each send


@dataclass(frozen=True)
class VapidKeys:
    """A key pair: ``private_key`` (kept secret: ``KOPILKA_VAPID_PRIVATE_KEY``) and
    ``public_key`` (given to browsers), both unpadded base64url of their raw bytes."""

    private_key: str
    public_key: str


def new_vapid_keys() -> VapidKeys:
    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid02, b64urlencode

    vapid = Vapid02()
    vapid.generate_keys()
    private_value = vapid.private_key.private_numbers().private_value
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(
        private_key=b64urlencode(private_value.to_bytes(32, "big")),
        public_key=b64urlencode(public),
    )


@dataclass(frozen=True)
class PushSubscription:
    """What a browser's ``PushManager.subscribe()`` gives: where to send, and its keys."""

    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    url: str | None = None  # where a tap on the notification leads
    tag: str | None = None  # a later message with the same tag replaces the earlier one

    def payload(self) -> bytes:
        data = {"title": self.title, "body": self.body, "url": self.url, "tag": self.tag}
        return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


class PushFailed(DeliveryFailed):
    """The push service did not take the message. ``gone``: the subscription has ended (the
    member unsubscribed or cleared the browser) and must be forgotten."""

    def __init__(self, detail: str, *, permanent: bool, gone: bool = False) -> None:
        super().__init__(detail, permanent=permanent)
        self.gone = gone


@dataclass(frozen=True)
class PushConfig:
    private_key: str
    public_key: str
    subject: str  # a mailto: or https: contact for push services (RFC 8292)
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "PushConfig | None":
        if settings.vapid_private_key is None or settings.vapid_public_key is None:
            return None
        return cls(
            private_key=settings.vapid_private_key.get_secret_value(),
            public_key=settings.vapid_public_key,
            subject=settings.vapid_subject,
            timeout=settings.push_timeout_seconds,
        )


class PrivateAddress(OSError):
    """A push endpoint's host resolves to a loopback, private or link-local address."""


class PushChannel:
    """Sends web push. The push libraries (and the HTTP stack they bring, ~40 MB) load only
    in a process that sends: the API serves subscriptions without them."""

    def __init__(self, config: PushConfig, session: "aiohttp.ClientSession") -> None:
        from py_vapid import Vapid02

        self.config = config
        self.session = session
        self._vapid = Vapid02.from_raw(config.private_key.encode())

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        # The wall clock, not the program's: the push service checks the expiry against its own.
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + VAPID_LIFETIME,
            "sub": self.config.subject,
        }
        return {str(k): str(v) for k, v in self._vapid.sign(claims).items()}

    async def send(
        self, subscription: PushSubscription, message: PushMessage, ttl: int = DEFAULT_TTL
    ) -> None:
        import aiohttp
        from pywebpush import WebPusher, WebPushException

        try:
            pusher = WebPusher(subscription.info(), aiohttp_session=self.session)
            answer = await pusher.send_async(
                data=message.payload(),
                headers=self._vapid_headers(subscription.endpoint),
                ttl=ttl,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            )
        except (WebPushException, ValueError) as exc:
            # Keys that are not base64 or not a point of the curve: the browser's, not ours.
            raise PushFailed(
                f"cannot encrypt for this subscription: {exc}", permanent=True
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddress):
                raise PushFailed(str(exc.os_error), permanent=True, gone=True) from exc
            raise PushFailed(
                f"cannot reach the push service: {type(exc).__name__}", permanent=False
            ) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PushFailed(
                f"cannot reach the push service: {type(exc).__name__}", permanent=False
            ) from exc
        status = answer.status if isinstance(answer, aiohttp.ClientResponse) else 0
        if 200 <= status < 300:
            return
        if status in (404, 410):
            raise PushFailed(f"the subscription has ended ({status})", permanent=True, gone=True)
        raise PushFailed(
            f"the push service answered {status}", permanent=400 <= status < 500 and status != 429
        )
