"""The agent's durable journal and claim book, one SQLite file.

A scan is numbered, signed and committed here (WAL, synchronous=FULL: on disk when append
returns) before anything else happens to it; the platform's answer is written to the same row
later, without waiting for the disk (synchronous=NORMAL for that commit): an answer lost to a power
cut leaves its scan unanswered, so it is resent and the platform replays the same first answer.
The next scan's commit syncs the write-ahead log, earlier answers included. Rows without an
answer are the backlog the uplink resends, in sequence order, after any outage or restart; rows
with one are the store's claim book.

SQLite calls block, so they run on one dedicated thread: the event loop keeps reading scanners
while a commit waits for the disk, and one thread means one writer, so no lock is ever contended.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from clearpoint.formats.scan_signatures import ScanFields, sign_scan
from clearpoint.private_files import private_sqlite_file
from clearpoint.scanner_agent.outcomes import PENDING, ClaimOutcome, Outcome
from clearpoint.scanner_agent.reads import Read
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scans (
    sequence       INTEGER PRIMARY KEY,
    scanner_id     TEXT    NOT NULL,
    scan_us        INTEGER NOT NULL,
    symbology      TEXT    NOT NULL,
    data           BLOB    NOT NULL,
    signature      BLOB    NOT NULL,
    journaled_us   INTEGER NOT NULL,
    answered_us    INTEGER,
    outcome        TEXT,
    reason         TEXT,
    message        TEXT,
    campaign_id    TEXT,
    campaign_name  TEXT,
    prize          TEXT,
    voucher_id     TEXT,
    redemption_id  TEXT,
    uses_remaining INTEGER
);
CREATE INDEX IF NOT EXISTS scans_unanswered ON scans (sequence) WHERE answered_us IS NULL;
"""


class JournalError(Exception):
    """The journal cannot be used as it is (another agent's, damaged); the message says why."""


@dataclass(frozen=True, slots=True)
class JournaledScan:
    sequence: int
    scanner_id: str
    scan_us: int
    symbology: str
    data: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """The platform's answer to a scan, as the claim book keeps it."""

    sequence: int
    outcome: Outcome
    reason: str
    message: str
    campaign_id: str = ""
    campaign_name: str = ""
    prize: str = ""
    voucher_id: str = ""
    redemption_id: str = ""
    uses_remaining: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimBookEntry:
    """One row of the claim book: the scan and what it got (answer fields empty while pending)."""

    sequence: int
    scanner_id: str
    scan_us: int
    symbology: str
    data: bytes
    answered_us: int | None
    outcome: ClaimOutcome
    reason: str
    message: str
    campaign_id: str
    campaign_name: str
    prize: str
    voucher_id: str
    redemption_id: str


class BacklogFull(Exception):
    """The unanswered backlog reached its configured bound; the scan was NOT recorded."""

    def __init__(self, backlog: int) -> None:
        super().__init__(f"{backlog} scans are waiting for the platform (the configured maximum)")
        self.backlog = backlog


class Journal:
    def __init__(self, path: Path, agent_id: str, key: Ed25519PrivateKey | None, max_backlog: int) -> None:
        self.path = path
        self.agent_id = agent_id
        self._key = key
        self.max_backlog = max_backlog
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self.backlog = 0
        self._next = 1

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, path: Path, agent_id: str, key: Ed25519PrivateKey | None = None, max_backlog: int = 100_000
    ) -> Journal:
        journal = cls(path, agent_id, key, max_backlog)
        await journal._call(journal._open)
        return journal

    def _open(self) -> None:
        private_sqlite_file(self.path)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            owner = db.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
            if owner is None:
                db.execute("INSERT INTO meta VALUES ('agent_id', ?), ('next_sequence', '1')", (self.agent_id,))
            elif owner[0] != self.agent_id:
                raise JournalError(
                    f"{self.path} is the journal of agent {owner[0]}, not {self.agent_id}; "
                    "each enrolment needs its own data directory"
                )
            self._next = int(db.execute("SELECT value FROM meta WHERE key = 'next_sequence'").fetchone()[0])
            self.backlog = db.execute("SELECT count(*) FROM scans WHERE answered_us IS NULL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            db.close()
            raise JournalError(f"{self.path} cannot be used as a journal: {exc}") from None
        except BaseException:
            db.close()
            raise
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    # -- writing -----------------------------------------------------------------------------------

    async def append(self, read: Read) -> JournaledScan:
        """Number, sign and durably commit a scan. Raises BacklogFull instead of dropping silently."""
        return await self._call(self._append, read)

    def _append(self, read: Read) -> JournaledScan:
        assert self._db is not None and self._key is not None
        if self.backlog >= self.max_backlog:
            raise BacklogFull(self.backlog)
        sequence = self._next
        fields = ScanFields(self.agent_id, read.scanner_id, sequence, read.at_us, read.symbology, read.data)
        signature = sign_scan(self._key, fields)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO scans (sequence, scanner_id, scan_us, symbology, data, signature, journaled_us)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sequence, read.scanner_id, read.at_us, read.symbology, read.data, signature, time.time_ns() // 1000),
            )
            db.execute("UPDATE meta SET value = ? WHERE key = 'next_sequence'", (str(sequence + 1),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._next = sequence + 1
        self.backlog += 1
        return JournaledScan(sequence, read.scanner_id, read.at_us, read.symbology, read.data, signature)

    async def record_answer(self, answer: Answer) -> bool:
        """Store the platform's answer; False if this scan already had one (a replayed answer)."""
        return (await self.record_answers([answer]))[0]

    async def record_answers(self, answers: list[Answer]) -> list[bool]:
        """Store several answers in one commit; for each, whether it was the first."""
        return await self._call(self._record_answers, answers)

    def _record_answers(self, answers: list[Answer]) -> list[bool]:
        assert self._db is not None
        db = self._db
        now = time.time_ns() // 1000
        firsts = []
        db.execute("PRAGMA synchronous=NORMAL")  # replayable from the platform: no fsync (module docstring)
        db.execute("BEGIN IMMEDIATE")
        try:
            for a in answers:
                changed = db.execute(
                    "UPDATE scans SET answered_us = ?, outcome = ?, reason = ?, message = ?, campaign_id = ?,"
                    " campaign_name = ?, prize = ?, voucher_id = ?, redemption_id = ?, uses_remaining = ?"
                    " WHERE sequence = ? AND answered_us IS NULL",
                    (
                        now,
                        a.outcome,
                        a.reason,
                        a.message,
                        a.campaign_id,
                        a.campaign_name,
                        a.prize,
                        a.voucher_id,
                        a.redemption_id,
                        a.uses_remaining,
                        a.sequence,
                    ),
                ).rowcount
                firsts.append(bool(changed))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.execute("PRAGMA synchronous=FULL")
        self.backlog -= sum(firsts)
        return firsts

    async def prune(self, answered_before_us: int) -> int:
        """Forget answered scans older than the cut-off (the claim book's retention); never unanswered ones.

        Sequence numbers are never reused: the next one is kept apart in `meta`."""

        def delete() -> int:
            assert self._db is not None
            return self._db.execute(
                "DELETE FROM scans WHERE answered_us IS NOT NULL AND scan_us < ?", (answered_before_us,)
            ).rowcount

        return await self._call(delete)

    # -- reading -----------------------------------------------------------------------------------

    async def unanswered(self, after: int, limit: int) -> list[JournaledScan]:
        """Unanswered scans with a sequence above `after`, oldest first."""
        return await self._call(self._unanswered, after, limit)

    def _unanswered(self, after: int, limit: int) -> list[JournaledScan]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT sequence, scanner_id, scan_us, symbology, data, signature FROM scans"
            " WHERE answered_us IS NULL AND sequence > ? ORDER BY sequence LIMIT ?",
            (after, limit),
        ).fetchall()
        return [JournaledScan(*r) for r in rows]

    async def oldest_unanswered_us(self) -> int | None:
        def query() -> int | None:
            assert self._db is not None
            row = self._db.execute("SELECT min(scan_us) FROM scans WHERE answered_us IS NULL").fetchone()
            oldest: int | None = row[0]
            return oldest

        return await self._call(query)


_CLAIM_COLUMNS = (
    "sequence, scanner_id, scan_us, symbology, data, answered_us, outcome, coalesce(reason, ''),"
    " coalesce(message, ''), coalesce(campaign_id, ''), coalesce(campaign_name, ''), coalesce(prize, ''),"
    " coalesce(voucher_id, ''), coalesce(redemption_id, '')"
)


def read_claims(path: Path, since_us: int | None = None, outcome: ClaimOutcome | None = None) -> list[ClaimBookEntry]:
    """The claim book, oldest first, read without disturbing a running agent (WAL readers never block it)."""
    if not path.exists():
        raise JournalError(f"no journal at {path}: has this agent run yet?")
    db = sqlite3.connect(path)
    db.execute("PRAGMA busy_timeout=10000")
    try:
        query = f"SELECT {_CLAIM_COLUMNS} FROM scans WHERE scan_us >= ?"  # noqa: S608 (constant columns)
        params: list[Any] = [since_us or 0]
        if outcome == PENDING:
            query += " AND answered_us IS NULL"
        elif outcome:
            query += " AND outcome = ?"
            params.append(outcome)
        rows = db.execute(query + " ORDER BY sequence", params).fetchall()
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path} cannot be read as a journal: {exc}") from None
    finally:
        db.close()
    return [_entry(*r) for r in rows]


def _entry(
    sequence: int,
    scanner_id: str,
    scan_us: int,
    symbology: str,
    data: bytes,
    answered_us: int | None,
    outcome: str | None,
    *answer: str,
) -> ClaimBookEntry:
    shown: ClaimOutcome = PENDING if outcome is None else Outcome(outcome)
    return ClaimBookEntry(sequence, scanner_id, scan_us, symbology, data, answered_us, shown, *answer)
