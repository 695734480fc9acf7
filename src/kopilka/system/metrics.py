"""Prometheus metrics and the ASGI middleware that records request counts and latency."""

import time
from typing import Any

from prometheus_client import Counter, Histogram

REQUESTS = Counter("kopilka_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "kopilka_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class MetricsMiddleware:
    """Plain ASGI middleware: cheaper than a per-request coroutine wrapper."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, path, str(status["code"])).inc()
            LATENCY.labels(method, path).observe(time.perf_counter() - started)
