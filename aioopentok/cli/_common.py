"""What every group of CLI commands shares: output (text or ``--json``), credentials, clients.

Strategy: credentials and the endpoint come from flags or ``OPENTOK_API_KEY`` /
``OPENTOK_API_SECRET`` / ``OPENTOK_API_URL``. Archive calls need only a moderator token (the
API key is read from it), or ``--session-id`` plus the credentials to make one.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._client import PRODUCTION_URL, Client
from .._errors import InvalidTokenError
from .._models import Role
from .._tokens import decode_token, generate_token
from ._exitcodes import CliError

__all__ = [
    "api_url",
    "archive_token",
    "credentials",
    "emit",
    "partner_client",
    "secret_of",
    "token_client",
]

_NO_SECRET = "unused"  # token-auth calls never send the secret; Client wants a non-empty one


# --- output ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseException):
        return str(value)
    return value


def emit(args: argparse.Namespace, text: str, data: Any) -> None:
    """Print ``text``, or ``data`` as JSON with ``--json``."""
    if args.json:
        print(json.dumps(_jsonable(data), indent=2, sort_keys=True))
    elif text:
        print(text)


# --- credentials and the client -------------------------------------------------------------


def credentials(args: argparse.Namespace) -> tuple[str, str]:
    """Return the API key and secret from the flags or the environment."""
    key = args.api_key or os.environ.get("OPENTOK_API_KEY")
    secret = args.api_secret or os.environ.get("OPENTOK_API_SECRET")
    if not key or not secret:
        raise CliError(
            "credentials needed: --api-key/--api-secret or OPENTOK_API_KEY/OPENTOK_API_SECRET"
        )
    return key, secret


def api_url(args: argparse.Namespace) -> str:
    return str(args.api_url or os.environ.get("OPENTOK_API_URL") or PRODUCTION_URL)


def secret_of(args: argparse.Namespace) -> str | None:
    """Return the secret, if any, so that messages can mask it."""
    return getattr(args, "api_secret", None) or os.environ.get("OPENTOK_API_SECRET")


def partner_client(args: argparse.Namespace) -> Client:
    """Return a Client with the partner credentials (session create, stitch)."""
    key, secret = credentials(args)
    return Client(key, secret, api_url=api_url(args), retry=args.retries)


def archive_token(args: argparse.Namespace) -> str:
    """Return ``--token``, or a fresh moderator token for ``--session-id`` (needs credentials)."""
    token = args.token or os.environ.get("OPENTOK_TOKEN")
    if token:
        return str(token)
    if args.session_id:
        key, secret = credentials(args)
        return generate_token(key, secret, args.session_id, Role.MODERATOR)
    raise CliError(
        "give --token or $OPENTOK_TOKEN (a moderator token), or --session-id with the credentials"
    )


def token_client(args: argparse.Namespace, token: str) -> Client:
    """Return a Client for token-auth calls: the API key comes from the token if not given."""
    key = args.api_key or os.environ.get("OPENTOK_API_KEY")
    if not key:
        try:
            key = decode_token(token).partner_id
        except InvalidTokenError:
            key = "0"  # the service judges the token; the key is not sent on these calls
    secret = secret_of(args) or _NO_SECRET
    return Client(key, secret, api_url=api_url(args), retry=args.retries)
