"""Clock skew: the service's clock, learned from the ``Date`` header of every reply.

Strategy: token ``create_time`` and ``expire_time`` are judged by the service's clock, and a
skewed local clock was the commonest support problem of the official SDKs. The offset is a plain
number the Client holds and hands to the (pure, synchronous) token signer. A ``Date`` header has
one-second resolution, so offsets under ``RESOLUTION`` are treated as none; the parsed header is
cached, since consecutive replies mostly carry the same second.
"""

from __future__ import annotations

import logging

from ._replies import clock_offset

__all__ = ["RESOLUTION", "WARNING_SECONDS", "ClockSkew"]

RESOLUTION = 2.0
WARNING_SECONDS = 60.0

logger = logging.getLogger("aioopentok")


class ClockSkew:
    """The server clock minus the local clock, in seconds; warns once when it is large."""

    __slots__ = ("_header", "_server_minus_at", "_warned", "offset")

    def __init__(self) -> None:
        self.offset = 0.0
        self._header: str | None = None
        self._server_minus_at = 0.0  # server time of the cached header minus local time then
        self._warned = False

    def observe(self, date_header: str | None, now: float) -> None:
        """Learn from one reply's ``Date`` header received at local time ``now``."""
        if not date_header:
            return
        if date_header != self._header:
            measured = clock_offset(date_header, now)
            if measured is None:
                return
            self._header, self._server_minus_at = date_header, measured
            offset = measured
        else:  # same second as the last reply: the server's time is known, only "now" moved
            offset = self._server_minus_at
        self.offset = offset if abs(offset) >= RESOLUTION else 0.0
        if abs(offset) >= WARNING_SECONDS and not self._warned:
            self._warned = True
            logger.warning(
                "local clock is %+.0f s off the OpenTok service's; tokens are corrected "
                "by the measured offset, but fix the clock (NTP)",
                -offset,
            )
