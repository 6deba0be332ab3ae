"""Cashier feedback: one clear line per scan on the agent's console.

A scan answered quickly gets one line with its answer. A scan the platform cannot answer within
`answer_wait_s` (the link is down, say) gets a QUEUED line at once, so the cashier is never left
guessing, and its answer line follows when the link is back.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from clearpoint.scanner_agent.journal import Answer, JournaledScan
from clearpoint.scanner_agent.outcomes import Outcome

_LABELS = {
    Outcome.ACCEPTED: "ACCEPTED",
    Outcome.REFUSED: "REFUSED",
    Outcome.NOT_A_VOUCHER: "NOT A VOUCHER",
    Outcome.REJECTED: "REJECTED",
}


def shown_data(data: bytes, limit: int = 32) -> str:
    """The barcode as a cashier can read it: printable text, control bytes as <GS> and the like."""
    text = "".join(
        ch if ch.isprintable() else f"<{'GS' if ch == chr(0x1D) else f'{ord(ch):02X}'}>"
        for ch in data.decode("utf-8", "replace")
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_line(scan_id: str, sequence: int, answer: Answer, data: bytes | None = None) -> str:
    label = _LABELS.get(answer.outcome, answer.outcome.upper())
    if answer.outcome == Outcome.ACCEPTED:
        what = f"hand over: {answer.prize}  ({answer.campaign_name}; voucher {answer.voucher_id})"
    elif answer.outcome == Outcome.NOT_A_VOUCHER:
        what = f"{shown_data(data)} is not a voucher code" if data else "not a voucher code"
    else:
        what = f"{answer.message} [{answer.reason}]"
    return f"{_clock()}  {scan_id:<10} #{sequence:<6} {label:<13} {what}"


def _clock() -> str:
    return time.strftime("%H:%M:%S")


class Console:
    def __init__(self, out: TextIO | None = None, answer_wait_s: float = 1.5) -> None:
        self.out = out or sys.stdout
        self.answer_wait_s = answer_wait_s
        self._waiting: dict[int, tuple[str, bytes, asyncio.TimerHandle]] = {}
        self._queued: set[int] = set()

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def journaled(self, scan: JournaledScan, link_up: bool) -> None:
        """The scan is safe on disk; say so now if its answer cannot come soon."""
        if not link_up:
            self._queue(scan.sequence, scan.scanner_id)
            return
        handle = asyncio.get_running_loop().call_later(self.answer_wait_s, self._queue, scan.sequence, scan.scanner_id)
        self._waiting[scan.sequence] = (scan.scanner_id, scan.data, handle)

    def _queue(self, sequence: int, scanner_id: str) -> None:
        waiting = self._waiting.pop(sequence, None)
        if waiting is not None:
            waiting[2].cancel()
        self._queued.add(sequence)
        self._print(
            f"{_clock()}  {scanner_id:<10} #{sequence:<6} {'QUEUED':<13} "
            "recorded; platform not reachable, the answer follows when it is"
        )

    def answered(self, scanner_id: str, answer: Answer, data: bytes | None) -> None:
        waiting = self._waiting.pop(answer.sequence, None)
        if waiting is not None:
            waiting[2].cancel()
        late = answer.sequence in self._queued
        self._queued.discard(answer.sequence)
        line = answer_line(scanner_id, answer.sequence, answer, data)
        self._print(line + ("  (answer to a queued scan)" if late else ""))

    def not_recorded(self, scanner_id: str, why: str) -> None:
        self._print(f"{_clock()}  {scanner_id:<10} {'-':<7} {'NOT RECORDED':<13} {why}")

    def revoked(self, why: str) -> None:
        """Said once, loudly: nothing scanned from now on reaches the platform."""
        self._print(f"{_clock()}  AGENT REVOKED by the platform's operator ({why}): scans are kept here, not sent;")
        self._print(f"{_clock()}  call support to enrol this till again")
