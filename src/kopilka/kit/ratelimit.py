"""Attempts per key and minute, in this process (a moving window): what may be tried only so
often, such as signing in."""

from limits import RateLimitItemPerMinute, storage, strategies


class PerMinute:
    def __init__(self, allowed: int) -> None:
        self.item = RateLimitItemPerMinute(allowed)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def allow(self, key: str) -> bool:
        """Count one attempt for ``key``; False once the minute's attempts are used up."""
        return bool(self.limiter.hit(self.item, key))
