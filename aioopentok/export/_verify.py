"""Is a file on disk what storage holds? The check before ``--delete-after-verify`` deletes.

Strategy: ``judge`` is pure (what the download recorded and what the disk now holds, in; the
problem or None, out). The size must equal storage's (the download checked it against the
announced total) and the SHA-256 recorded while streaming; the MD5 must equal storage's ETag
where that ETag is a plain MD5 (S3's ETag of a single-part upload; a multipart ETag ends in
``-N`` and is no digest of the file, so it cannot be compared). ``verify_file`` re-reads the
file once, in the caller's thread.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._manifest import FileFacts, file_facts

__all__ = ["etag_md5", "judge", "verify_file"]

_PLAIN_MD5 = re.compile(r'(?:W/)?"?([0-9a-fA-F]{32})"?')


def etag_md5(etag: str | None) -> str | None:
    """Return the MD5 hex an ETag stands for, or None if it is not a plain MD5."""
    if etag is None:
        return None
    match = _PLAIN_MD5.fullmatch(etag.strip())
    return None if match is None or etag.strip().startswith("W/") else match[1].lower()


def judge(facts: FileFacts, size: int, sha256: str, md5: str | None) -> str | None:
    """Return why the file on disk (``size``, digests) is not the one recorded, or None."""
    if size != facts.size:
        return f"is {size} bytes on disk, storage had {facts.size}"
    if sha256 != facts.sha256:
        return "changed on disk since it was downloaded (SHA-256 differs)"
    want = etag_md5(facts.etag)
    if want is not None and md5 != want:
        return f"MD5 {md5} differs from storage's ETag {want}"
    return None


def verify_file(path: Path, facts: FileFacts, *, md5: bool = True) -> str | None:
    """Re-read ``path``; return why it does not match ``facts``, or None if it does."""
    try:
        size, sha256, digest = file_facts(path, md5=md5 and etag_md5(facts.etag) is not None)
    except FileNotFoundError:
        return "is missing"
    return judge(facts, size, sha256, digest)
