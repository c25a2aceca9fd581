"""aioopentok: an asyncio client for the OpenTok server API.

Create sessions, hand out tokens (pure and synchronous), and pull archived video down to disk,
through one shared aiohttp connection pool. See README.md for a tour.
"""

from __future__ import annotations

from ._client import DEFAULT_DOWNLOAD_TIMEOUT, DEFAULT_TIMEOUT, PRODUCTION_URL, STAGING_URL, Client
from ._errors import (
    APIError,
    AuthError,
    ConnectError,
    DiskError,
    DownloadError,
    InvalidArgumentError,
    InvalidTokenError,
    NotFoundError,
    OpenTokException,
    RateLimitedError,
    RequestError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
    TokenExpiredError,
)
from ._http import HTTPRequest, HTTPResponse, Transport
from ._models import (
    Archive,
    P2PPreference,
    Role,
    Session,
    StitchResult,
    TimelineEvent,
    TokenData,
    VideoResource,
)
from ._retry import RetryPolicy
from ._tokens import decode_token, generate_token, verify_token
from ._transport import AiohttpTransport
from ._version import __version__
from .download import DownloadResult, ProgressCallback
from .export import ArchiveOutcome, ExportProgress, ExportResult

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "PRODUCTION_URL",
    "STAGING_URL",
    "APIError",
    "AiohttpTransport",
    "Archive",
    "ArchiveOutcome",
    "AuthError",
    "Client",
    "ConnectError",
    "DiskError",
    "DownloadError",
    "DownloadResult",
    "ExportProgress",
    "ExportResult",
    "HTTPRequest",
    "HTTPResponse",
    "InvalidArgumentError",
    "InvalidTokenError",
    "NotFoundError",
    "OpenTokException",
    "P2PPreference",
    "ProgressCallback",
    "RateLimitedError",
    "RequestError",
    "RequestTimeoutError",
    "ResponseError",
    "RetryPolicy",
    "Role",
    "ServerError",
    "Session",
    "StitchResult",
    "TimelineEvent",
    "TokenData",
    "TokenExpiredError",
    "Transport",
    "VideoResource",
    "__version__",
    "decode_token",
    "generate_token",
    "verify_token",
]
