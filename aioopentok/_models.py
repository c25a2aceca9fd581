"""Frozen values: what the service returns, and the enums callers pass in.

Strategy: models are plain frozen dataclasses built only by the parsers in ``_protocol`` (which
validate the reply) or by ``_tokens``; no parsed XML element ever reaches them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Archive",
    "P2PPreference",
    "Role",
    "Session",
    "StitchResult",
    "TimelineEvent",
    "TokenData",
    "VideoResource",
]


class Role(enum.StrEnum):
    """What a token lets its holder do in a session (protocol.md, Tokens)."""

    SUBSCRIBER = "subscriber"
    PUBLISHER = "publisher"
    MODERATOR = "moderator"


class P2PPreference(enum.StrEnum):
    """The seed's ``p2p.preference`` session property."""

    ENABLED = "enabled"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Session:
    """A session the service created.

    ``create_dt`` is a ``datetime`` when either recorded format parses (ISO with offset, or
    staging's Java ``Thu Aug 16 09:49:56 PDT 2012``), else the raw text.
    """

    session_id: str
    partner_id: str | None = None
    create_dt: datetime | str | None = None
    session_status: str | None = None


@dataclass(frozen=True, slots=True)
class VideoResource:
    """One video of an archive. ``length`` is in milliseconds; ``name`` is the stream name."""

    id: str
    length: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One timeline entry of an archive manifest. ``offset`` is in milliseconds."""

    type: str
    id: str
    offset: int
    data: str = ""


@dataclass(frozen=True, slots=True)
class Archive:
    """An archive manifest: its videos (``resources``) and when each played (``timeline``)."""

    archive_id: str
    title: str
    resources: tuple[VideoResource, ...]
    timeline: tuple[TimelineEvent, ...] = ()
    version: str | None = None

    def video(self, video_id: str) -> VideoResource:
        """Return the resource with this ID; ``KeyError`` if the manifest has none."""
        for resource in self.resources:
            if resource.id == video_id:
                return resource
        raise KeyError(video_id)


@dataclass(frozen=True, slots=True)
class StitchResult:
    """The stitch call's answer: ``ready`` with the MP4 ``url`` (HTTP 201), or still processing."""

    ready: bool
    url: str | None = None


@dataclass(frozen=True, slots=True)
class TokenData:
    """Every field of a decoded token. ``extra`` holds meta keys other than partner_id/sig.

    ``nonce`` is the text as signed: other SDKs wrote decimals and negative numbers there.
    """

    partner_id: str
    signature: str
    session_id: str
    create_time: int
    role: Role
    nonce: str
    expire_time: int | None = None
    connection_data: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    data: str = field(default="", repr=False)
