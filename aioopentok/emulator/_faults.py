"""Fault knobs the emulator consults on every request.

Strategy: one mutable dataclass, read at request time (never cached), so a test can flip a knob
between two calls of the client and see the next request change. Counters (``fail_503``,
``reset_connections``, ``storage_403``) count down by one per request they affect.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HOSTILE_KINDS", "Faults"]

#: The values ``Faults.hostile`` accepts.
HOSTILE_KINDS = frozenset(
    {"entity_bomb", "external_entity", "oversized", "truncated", "bom", "gzip"}
)


def _positive_int_or_none(value: object) -> bool:
    return value is None or (type(value) is int and value > 0)


@dataclass
class Faults:
    """Misbehaviour to inject; every knob can be changed while the emulator runs.

    Attributes:
        fail_503: The next N requests (API or storage) are answered with ``fail_status`` and a
            ``Retry-After`` header, without being handled. Counts down per request.
        fail_status: The status used by ``fail_503`` (503, or e.g. 429/502/504).
        retry_after: Seconds put in the ``Retry-After`` header of those replies.
        reset_connections: The next N requests get their connection aborted with no reply.
        cut_body_after: Storage bodies are cut (connection closed) after this many bytes, once
            per distinct (video, range start): a client resuming with ``Range`` from a new
            offset makes progress and eventually finishes. ``None`` disables.
        url_lifetime: Lifetime in seconds of the signed storage URLs ``archive/url`` issues.
            0 (or negative) makes URLs that are already expired.
        delay: Seconds to sleep before handling each request.
        chunked_storage: Storage replies carry no ``Content-Length`` (chunked encoding).
        hostile: Make API replies (session/create, manifest) hostile, one of
            ``HOSTILE_KINDS``: "entity_bomb" (billion laughs DTD), "external_entity"
            (``SYSTEM "file:///etc/passwd"``), "oversized" (~10 MiB valid-looking XML, streamed
            without Content-Length), "truncated" (XML cut in the middle), "bom" (UTF-8 BOM and
            whitespace before the XML), "gzip" (the valid reply, ``Content-Encoding: gzip``).
        storage_403: The next N storage requests are answered 403 "Request has expired" even
            if the URL is valid: stages "expired URL, ask for a fresh one". Counts down.
        expire_urls_after_bytes: Once a signed URL has served at least this many body bytes
            (over all its requests), it is treated as expired (403). Every URL the emulator
            issues is distinct, so a fresh URL for the same video works again. Combine with
            ``cut_body_after`` to stage "cut, URL expired, refresh URL, resume". ``None``
            disables.
        stitch_pending: How many ``archive/<id>/stitch`` calls answer 202 before the 201.
        date_offset: Seconds added to the ``Date`` header of every reply (clock skew).
        storage_rate: Cap, in bytes per second, on each storage reply's body (so per
            connection: S3 caps one connection at tens of MB/s, and a client goes faster only
            with parallel ranged requests). A reply keeps the rate it started with. ``None``
            (the default) does not pace.
        first_byte_delay: Seconds each storage reply waits before its status line and
            headers (S3's time to first byte), so before its first body byte too. 0 disables.
    """

    fail_503: int = 0
    fail_status: int = 503
    retry_after: float = 1
    reset_connections: int = 0
    cut_body_after: int | None = None
    url_lifetime: float = 3600
    delay: float = 0
    chunked_storage: bool = False
    hostile: str | None = None
    storage_403: int = 0
    expire_urls_after_bytes: int | None = None
    stitch_pending: int = 1
    date_offset: float = 0
    storage_rate: int | None = None
    first_byte_delay: float = 0

    def __setattr__(self, name: str, value: object) -> None:
        """Reject a bad value where the typo is made, also at run time."""
        if name == "hostile" and value is not None and value not in HOSTILE_KINDS:
            raise ValueError(f"unknown hostile kind {value!r}")
        if name == "storage_rate" and not _positive_int_or_none(value):
            raise ValueError(f"storage_rate must be a positive int or None, not {value!r}")
        if name == "first_byte_delay" and not (
            isinstance(value, int | float) and value >= 0  # NaN fails this too
        ):
            raise ValueError(f"first_byte_delay must be >= 0 seconds, not {value!r}")
        super().__setattr__(name, value)
