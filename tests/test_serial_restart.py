"""An agent process SIGKILLed during a burst of scans on its serial port, and started again.

A real agent process reads a virtual scanner on a pseudo-terminal, whose slave side the scanner also
holds open, so the kernel keeps what is written while no agent reads it, as a serial port's driver does
(with RTS/CTS, a real scanner holds its data the same way). The platform is unreachable: every scan
stays in the journal, where the test reads it.

What must hold: every scan journaled is one the scanner sent, whole (no tail of a cut frame, no two
glued together), once, in order; and the scans lost are only those the killed agent itself had taken
from the kernel: at most a read's worth around each kill. Before the port was opened without flushing
its input, each restart lost everything the kernel held.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from clearpoint.scanner_agent.identity import Identity, create_key, save_identity
from clearpoint.scanner_agent.journal import read_claims
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner

from tests.agent_helpers import till_config
from tests.processes import Proc, agent_process, free_port

BAUD = 115_200
SCANS = 1500
KILL_AFTER_S = (1.0, 2.2)  # into the burst
# A killed agent can lose what it had read from the port and not yet journaled: one read (64 bytes), so a few
# of these scans, plus the one whose head it read before it died (its tail is then dropped, never journaled).
LOST_PER_KILL = 6


def _enrolled(tmp_path: Path) -> Path:
    """An agent's data directory as enrolment leaves it (no platform is needed to journal scans)."""
    data_dir = tmp_path / "agent-data"
    create_key(data_dir)
    save_identity(data_dir, Identity("agt_0011223344556677", "ptn_000000000000", "store-1", "till", "127.0.0.1:1"))
    return data_dir


def _journaled(journal: Path) -> list[str]:
    try:
        return [c.data.decode() for c in read_claims(journal)]
    except Exception:  # the journal is being created by an agent starting up
        return []


async def _settled(journal: Path, want: str, within: float) -> list[str]:
    """The journal once it holds `want` (the burst's last scan) and has stopped growing."""
    deadline = time.monotonic() + within
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = _journaled(journal)
        if seen and seen[-1] == want:
            await asyncio.sleep(0.3)
            again = _journaled(journal)
            if again == seen:
                return seen
        await asyncio.sleep(0.1)
    return seen


async def test_a_killed_agent_loses_nothing_the_kernel_held_and_journals_no_fragment(tmp_path: Path) -> None:
    data_dir = _enrolled(tmp_path)
    scanner = VirtualScanner(tmp_path / "usb-Virtual_Scanner-if00")
    # Codes of different lengths, so a tail or two glued scans could never pass for one of them.
    codes = [f"SCAN{i:05d}-{'x' * (i * 7 % 40)}" for i in range(SCANS)]
    config = till_config(
        tmp_path,
        f"127.0.0.1:{free_port()}",
        scanner,
        BAUD,
        reconnect_initial_seconds=5.0,
        reconnect_max_seconds=5.0,
    )
    agents: list[Proc] = []

    def start() -> Proc:
        agents.append(agent_process(config))
        agents[-1].start()
        return agents[-1]

    agent = start()
    sent = 0
    kills: list[int] = []
    try:
        await asyncio.to_thread(agent.wait_for, "scanner till-1 connected")

        async def burst() -> None:
            nonlocal sent
            for code in codes:
                await scanner.send(code.encode() + b"\r", baud=BAUD)
                sent += 1

        sending = asyncio.create_task(burst())
        begun = time.monotonic()
        for at in KILL_AFTER_S:
            await asyncio.sleep(max(0.0, begun + at - time.monotonic()))
            agent.kill()  # the scanner goes on sending: the pty holds it, then makes the scanner wait
            kills.append(sent)
            agent = start()
        await asyncio.wait_for(sending, 120)
        journaled = await _settled(data_dir / "journal.sqlite3", codes[-1], within=60)
    finally:
        for proc in agents:
            proc.stop()
        scanner.close()
    log = "".join(agents[-1].err[-30:])
    assert len(kills) == 2 and all(0 < k < SCANS for k in kills), kills
    index = {code: i for i, code in enumerate(codes)}
    strangers = [d for d in journaled if d not in index]
    positions = [index[d] for d in journaled if d in index]
    lost = sorted(set(range(SCANS)) - set(positions))
    print(f"{SCANS} scans, agent killed after scans {kills}: {len(lost)} lost, {len(strangers)} fragments journaled")
    assert not strangers, f"journaled what the scanner never sent (a fragment?): {strangers[:5]}\n{log}"
    assert len(journaled) == len(set(journaled)), "a scan journaled twice"
    assert positions == sorted(positions), "out of order"
    # Only scans the killed agents had read: those sent just before a kill (or the one cut by it).
    assert all(any(k - LOST_PER_KILL <= i <= k for k in kills) for i in lost), (lost, kills, log)
    assert len(lost) <= LOST_PER_KILL * len(kills)
    assert any("waited in the port while no agent read it" in line for proc in agents[1:] for line in proc.err)
