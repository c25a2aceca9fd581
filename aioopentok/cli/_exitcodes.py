"""The CLI's exit codes: one per class of expected failure, so scripts can branch on them.

Strategy: a table from the exception tree (``_errors``) to codes, searched in order, so a
subclass listed before its base gets its own code. Anything not in the table is unexpected (1).
"""

from __future__ import annotations

from .._errors import (
    APIError,
    AuthError,
    DownloadError,
    InvalidArgumentError,
    InvalidTokenError,
    NotFoundError,
    RateLimitedError,
    RequestError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
)

__all__ = [
    "EXIT_AUTH",
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_DOWNLOAD",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_RESPONSE",
    "EXIT_SERVER",
    "CliError",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_FAILED = 1  # a check did not pass, or an unexpected error
EXIT_BAD_INPUT = 2  # also argparse's usage errors
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_SERVER = 5
EXIT_NETWORK = 6
EXIT_RESPONSE = 7
EXIT_DOWNLOAD = 8
EXIT_INTERRUPTED = 130

#: Exception class -> (exit code, label); the first ``isinstance`` match wins.
EXIT_CODES: tuple[tuple[type[BaseException], int, str], ...] = (
    (InvalidArgumentError, EXIT_BAD_INPUT, "bad input"),
    (InvalidTokenError, EXIT_BAD_INPUT, "bad token"),
    (AuthError, EXIT_AUTH, "auth"),
    (NotFoundError, EXIT_NOT_FOUND, "not found"),
    (RateLimitedError, EXIT_SERVER, "rate limited"),
    (ServerError, EXIT_SERVER, "server error"),
    (APIError, EXIT_SERVER, "service error"),
    (RequestTimeoutError, EXIT_NETWORK, "timeout"),
    (RequestError, EXIT_NETWORK, "network"),
    (ResponseError, EXIT_RESPONSE, "bad reply"),
    (DownloadError, EXIT_DOWNLOAD, "download failed"),
)


class CliError(Exception):
    """An expected failure of the CLI itself (missing credentials...), with its exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """Return the exit code and label of an exception (``EXIT_FAILED`` if unexpected)."""
    for cls, code, label in EXIT_CODES:
        if isinstance(exc, cls):
            return code, label
    return EXIT_FAILED, "error"
