"""Bulk export: every archive of an account to disk, journaled, resumable, shardable.

Strategy: ``_list`` reads the input and splits it into shards (pure), ``_journal`` keeps each
shard's state in SQLite, ``_pace`` slows the whole job on 429s, ``_failures`` decides what a
failure means, ``_manifest`` and ``_verify`` write and check what lands on disk, ``_report``
writes the per-archive report, ``_job`` is the loop and ``_api`` its entry points. None of
them imports ``aioopentok._client``: ``_interface`` declares what they need of a client, and
``Client.export`` passes itself in.
"""

from __future__ import annotations

from ._api import ExportStatus, PlannedArchive, ShardStatus, failures, plan, read_status, run
from ._interface import ExportClient
from ._journal import JOURNAL_DIR, ArchiveRecord, journal_paths
from ._list import ListError, Shard, parse_shard, read_list, scan_list, shard_of
from ._manifest import MANIFEST_NAME
from ._outcome import ArchiveOutcome, ExportProgress, ExportResult
from ._report import ReportWriter, check_report_path

__all__ = [
    "JOURNAL_DIR",
    "MANIFEST_NAME",
    "ArchiveOutcome",
    "ArchiveRecord",
    "ExportClient",
    "ExportProgress",
    "ExportResult",
    "ExportStatus",
    "ListError",
    "PlannedArchive",
    "ReportWriter",
    "Shard",
    "ShardStatus",
    "check_report_path",
    "failures",
    "journal_paths",
    "parse_shard",
    "plan",
    "read_list",
    "read_status",
    "run",
    "scan_list",
    "shard_of",
]
