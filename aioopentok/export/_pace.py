"""The job-wide pace: one concurrency bound for every request of an export, slowed by 429s.

Strategy: AIMD, as TCP does. The decisions are pure functions of a frozen ``PaceState``
(values in, values out, tested as such): a 429 halves the limit and pauses every new request
until its ``Retry-After`` has passed; a run of successes as long as the limit adds one slot,
up to the caller's ``concurrency``. A burst of 429s from requests started under the same limit
halves it once, not once per reply (``epoch``: a 429 from a request started before the last
decrease only extends the pause). ``Pace`` is the small I/O shell: an adjustable semaphore
that every manifest, URL+transfer and delete call of the job goes through, so that the job,
not each task on its own, backs off. The Client's own per-request retries sit below this.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

__all__ = ["DEFAULT_PAUSE", "MAX_PAUSE", "Pace", "PaceState", "after_rate_limit", "after_success"]

DEFAULT_PAUSE = 1.0  # a 429 without Retry-After: pause this long
MAX_PAUSE = 900.0  # a Retry-After beyond this is taken as this (a broken header, not a plan)


@dataclass(frozen=True, slots=True)
class PaceState:
    """How many requests may run now, and when the next may start."""

    limit: int
    ceiling: int
    successes: int = 0
    resume_at: float = 0.0
    epoch: int = 0


def after_success(state: PaceState) -> PaceState:
    """Return the state after a request that was not rate limited: +1 after ``limit`` of them."""
    if state.limit >= state.ceiling:
        return state if state.successes == 0 else replace(state, successes=0)
    successes = state.successes + 1
    if successes >= state.limit:
        return replace(state, limit=state.limit + 1, successes=0)
    return replace(state, successes=successes)


def after_rate_limit(
    state: PaceState, now: float, retry_after: float | None, epoch: int
) -> PaceState:
    """Return the state after a 429 (or ``SlowDown``) of a request started in ``epoch``.

    Every new request waits until ``Retry-After`` (or ``DEFAULT_PAUSE``) from ``now``; the limit
    halves (not below 1) unless it was already halved since that request started.
    """
    pause = DEFAULT_PAUSE if retry_after is None else min(max(retry_after, 0.0), MAX_PAUSE)
    resume_at = max(state.resume_at, now + pause)
    if epoch != state.epoch:
        return replace(state, resume_at=resume_at, successes=0)
    return PaceState(
        limit=max(1, state.limit // 2),
        ceiling=state.ceiling,
        successes=0,
        resume_at=resume_at,
        epoch=state.epoch + 1,
    )


class Pace:
    """An adjustable semaphore shared by every request of one export job."""

    def __init__(
        self,
        concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.state = PaceState(concurrency, concurrency)
        self.in_flight = 0
        self.lowest = concurrency  # the smallest limit reached, for the summary and tests
        self.rate_limited = 0
        self._clock = clock
        self._sleep = sleep
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for a slot (and for any pause to end); return the epoch it was granted in."""
        while True:
            wait = self.state.resume_at - self._clock()
            if wait > 0:
                await self._sleep(wait)
                continue
            if self.in_flight < self.state.limit and not self._waiters:
                self.in_flight += 1
                return self.state.epoch
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.forget()  # a slot was handed over just as we were cancelled
                else:
                    with contextlib.suppress(ValueError):  # _wake may have dropped it already
                        self._waiters.remove(waiter)
                raise
            if self.state.resume_at <= self._clock():
                return self.state.epoch  # _wake counted the slot it handed us
            self.forget()  # paused since we queued: wait for the pause like everyone else

    def release(
        self, *, rate_limited: bool = False, retry_after: float | None = None, epoch: int = 0
    ) -> None:
        """Give the slot back, telling how its request went."""
        self.in_flight -= 1
        if rate_limited:
            self.rate_limited += 1
            self.state = after_rate_limit(self.state, self._clock(), retry_after, epoch)
            self.lowest = min(self.lowest, self.state.limit)
        else:
            self.state = after_success(self.state)
        self._wake()

    def forget(self) -> None:
        """Give the slot back without judging its request (another failure, or a cancel)."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.state.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
