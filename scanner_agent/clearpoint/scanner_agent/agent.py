"""The agent: scanners in, signed and journaled scans out to the platform, answers to the cashier.

Order of events for every scan (DESIGN.md, "the path of a scan"): the driver frames it; the
journal numbers, signs and commits it; only then is the uplink woken and the cashier told. An
answer is written to the journal before the console line and the scanner's beep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from clearpoint.formats.scan_signatures import ScanFieldError
from clearpoint.scanner_agent import heartbeat, metrics, scan_rules
from clearpoint.scanner_agent.console import Console
from clearpoint.scanner_agent.identity import Identity
from clearpoint.scanner_agent.journal import Answer, BacklogFull, Journal, JournaledScan
from clearpoint.scanner_agent.outcomes import Outcome
from clearpoint.scanner_agent.reads import Driver, Read
from clearpoint.scanner_agent.uplink import Uplink, UplinkSettings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)


class Agent:
    def __init__(
        self,
        identity: Identity,
        key: Ed25519PrivateKey,
        journal: Journal,
        drivers: Sequence[Driver],
        uplink: UplinkSettings,
        console: Console | None = None,
        backlog_warn_fraction: float = 0.8,
        claims_retention_days: int = 400,
    ) -> None:
        self.identity = identity
        self.journal = journal
        self.drivers = {d.scanner_id: d for d in drivers}
        self.console = console or Console()
        self.uplink = Uplink(
            uplink,
            identity.agent_id,
            journal,
            self._answered,
            key,
            report=lambda: heartbeat.report(self.drivers, journal, self.uplink.last_answer_us),
            on_revoked=self.console.revoked,
        )
        for driver in drivers:
            driver.health.changed = self.uplink.status_changed
        metrics.watch(
            lambda: journal.backlog,
            lambda: self.uplink.connected,
            lambda: self.uplink.round_trip_us,
            [(d.scanner_id, _connected(d)) for d in drivers],
        )
        self.backlog_warn_at = max(1, int(journal.max_backlog * backlog_warn_fraction))
        self._warned = False
        self.recorded = 0
        self.retention_us = claims_retention_days * 86_400_000_000

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or cancelled); then release scanners and close the journal."""
        log.info(
            "agent %s (store %s) starting with %d scanner(s); %d scans from earlier waiting to be sent",
            self.identity.agent_id,
            self.identity.store_id,
            len(self.drivers),
            self.journal.backlog,
        )
        tasks = [
            asyncio.create_task(self.uplink.run(), name="uplink"),
            asyncio.create_task(self._keep_claims(), name="claim book retention"),
        ]
        tasks += [asyncio.create_task(self._pump(d), name=f"scanner {d.scanner_id}") for d in self.drivers.values()]
        stopping = False

        def said_if_unexpected(task: asyncio.Task[None]) -> None:
            """A part that ends while the agent runs is said at once: scans would wait unseen."""
            if stopping:
                return
            error = None if task.cancelled() else task.exception()
            if task.cancelled() or error is not None:
                log.critical("the agent's %s stopped unexpectedly (%r); restart the agent", task.get_name(), error)

        for task in tasks:
            task.add_done_callback(said_if_unexpected)
        try:
            if stop is None:
                await asyncio.gather(*tasks)
            else:
                await stop.wait()
        finally:
            stopping = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for driver in self.drivers.values():
                await driver.close()
            log.info("agent stopped; %d scans not yet answered stay in the journal", self.journal.backlog)

    async def _keep_claims(self) -> None:
        """Once a day (and at start), forget answered scans older than the retention period."""
        while True:
            cut = time.time_ns() // 1000 - self.retention_us
            removed = await self.journal.prune(cut)
            if removed:
                log.info("claim book: removed %d answered scans older than the retention period", removed)
            await asyncio.sleep(86_400)

    async def _pump(self, driver: Driver) -> None:
        async for read in driver.reads():
            driver.health.last_scan_us = read.at_us
            await self.take(read)

    async def take(self, read: Read) -> JournaledScan | None:
        """Journal one read (signed, on disk), then wake the uplink and tell the cashier."""
        driver = self.drivers.get(read.scanner_id)
        refused = scan_rules.control_bytes(read.data)
        if refused:
            what = scan_rules.describe(refused)
            keyboard = driver is not None and driver.health.kind == "keyboard"
            hint = (
                "; a keyboard-wedge scanner that packs several keys in a report must be read as hidraw "
                "(the kernel's input layer drops a repeated key)"
                if keyboard
                else ""
            )
            log.warning("scan from %s NOT RECORDED: it holds control bytes (%s)%s", read.scanner_id, what, hint)
            metrics.NOT_RECORDED.labels("control bytes").inc()
            self.console.not_recorded(read.scanner_id, f"scan holds control bytes ({what}); scan again")
            await _refused(driver, read)
            return None
        try:
            scan = await self.journal.append(read)
        except BacklogFull as full:
            log.critical(
                "ALARM: scan from %s NOT RECORDED: %s; the platform has not answered for too long",
                read.scanner_id,
                full,
            )
            metrics.NOT_RECORDED.labels("backlog full").inc()
            self.console.not_recorded(read.scanner_id, f"offline backlog full ({full.backlog} scans): call support")
            await _refused(driver, read)
            return None
        except ScanFieldError as exc:
            log.error("scan from %s not recorded: %s", read.scanner_id, exc)
            metrics.NOT_RECORDED.labels("unreadable").inc()
            self.console.not_recorded(read.scanner_id, f"unreadable scan ({exc}); scan again")
            await _refused(driver, read)
            return None
        if driver is not None:
            await driver.recorded(read, True)  # committed: now the scanner may hear so (an SSI ACK)
        self.recorded += 1
        metrics.SCANS.labels(read.scanner_id).inc()
        self.uplink.notify()
        self.console.journaled(scan, self.uplink.connected)
        if self.journal.backlog >= self.backlog_warn_at and not self._warned:
            self._warned = True
            log.error(
                "backlog alarm: %d of at most %d scans wait for the platform; new scans will be refused at the limit",
                self.journal.backlog,
                self.journal.max_backlog,
            )
        elif self._warned and self.journal.backlog < self.backlog_warn_at // 2:
            self._warned = False
        return scan

    async def _answered(self, scan: JournaledScan | None, answer: Answer, first: bool) -> None:
        if not first:
            return  # answered before (a replayed answer): the cashier heard it already
        metrics.ANSWERS.labels(answer.outcome.value).inc()
        if scan is not None:
            metrics.ANSWER_SECONDS.observe(max(0.0, time.time() - scan.scan_us / 1e6))
        scanner_id = scan.scanner_id if scan else "?"
        self.console.answered(scanner_id, answer, scan.data if scan else None)
        driver = self.drivers.get(scanner_id)
        if driver is not None:
            await driver.signal(answer.outcome == Outcome.ACCEPTED)


async def _refused(driver: Driver | None, read: Read) -> None:
    """Tell the scanner a read was not kept: its protocol's refusal (an SSI NAK), then the bad-read signal."""
    if driver is not None:
        await driver.recorded(read, False)
        await driver.signal(False)


def _connected(driver: Driver) -> Callable[[], bool]:
    return lambda: driver.health.connected
