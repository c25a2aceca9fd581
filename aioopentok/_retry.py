"""Retry policy: which replies to retry, and how long to wait. Pure; the Client does the waiting.

Strategy: exponential back-off with full jitter (sleep a uniform random fraction of
``backoff * 2**attempt``, capped), so that many clients knocked over by one outage do not come
back in lockstep; a ``Retry-After`` from the service wins, within a cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import InvalidArgumentError
from ._replies import RETRYABLE_STATUSES

__all__ = ["NO_RETRY", "RetryPolicy", "as_policy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How idempotent calls retry connection errors and 429/502/503/504 replies.

    Args:
        retries: how many retries after the first try (0 disables retrying).
        backoff: the first back-off ceiling in seconds; it doubles per retry.
        max_backoff: the largest back-off ceiling, in seconds.
        max_retry_after: the longest ``Retry-After`` we wait for inside a call, in seconds; a
            longer one ends the retries (the error carries ``retry_after``).
        statuses: the HTTP statuses that are retried.
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = 30.0
    statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidArgumentError(f"retries must be an int >= 0, not {self.retries!r}")
        if min(self.backoff, self.max_backoff, self.max_retry_after) < 0:
            raise InvalidArgumentError("back-off times must not be negative")

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float | None:
        """Return the wait before retry number ``attempt + 1``; ``jitter`` is uniform in [0, 1).

        None means "do not retry": the service asked for a longer pause (``Retry-After``) than
        ``max_retry_after``. Calling it back sooner would ignore it; the caller gets the error,
        which carries ``retry_after``, and can schedule the call itself.
        """
        if retry_after is not None:
            return max(retry_after, 0.0) if retry_after <= self.max_retry_after else None
        return float(jitter * min(self.max_backoff, self.backoff * 2.0**attempt))


NO_RETRY = RetryPolicy(retries=0)


def as_policy(retry: RetryPolicy | int | None) -> RetryPolicy:
    """Return ``retry`` as a policy: None is the default (3 retries), an int that many."""
    if retry is None or isinstance(retry, int):
        return RetryPolicy(retries=3 if retry is None else retry)
    return retry
