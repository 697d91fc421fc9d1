"""Per-key token buckets, in process memory.

Each process enforces its own buckets: with N workers a key may reach N times the rate.
That bounds abuse of a single process without a shared store; a gateway in front does
the global limit where that matters (docs/operations.md).
"""

import math
import time
import uuid
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def acquire(self, key_id: uuid.UUID) -> float:
        """Take one token; returns 0 when allowed, else the seconds until a token is due."""
        now = time.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second

    @staticmethod
    def retry_after_seconds(wait: float) -> int:
        return max(1, math.ceil(wait))
