"""Hotplug and identity: unplug and replug of two same-model scanners keeps each one's identity.

The sysfs and /dev trees are fakes laid out as the kernel and udev lay them out (tests/test_discovery.py),
the hidraw nodes FIFOs fed with boot reports (tests/test_hidraw.py), serial scanners real ptys, and udev a
monitor over a pipe: `fire()` is udev announcing a change. Retry intervals are long (30 s), so a driver
that reopens within a second can only have been woken by udev.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import sys
import time
import types
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import pytest
from clearpoint.ops.fleet import describe_text
from clearpoint.scanner_agent import heartbeat, hotplug
from clearpoint.scanner_agent.discovery import SAME_MODEL, discover
from clearpoint.scanner_agent.drivers.hidraw import HidrawDriver
from clearpoint.scanner_agent.drivers.serial import SerialDriver, SerialSettings
from clearpoint.scanner_agent.reads import Read
from clearpoint.scanner_agent.scanner_kinds import ScannerKind
from clearpoint.scanner_agent.usb_identity import identify
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
from clearpoint.v1 import agents_pb2 as A

from tests.test_discovery import BOOT_KEYBOARD_DESCRIPTOR, KEYBOARD_KEYS, USB, Tree, _udev_link
from tests.test_hidraw import FifoScanner, fifo_scanner, scanner_reports

LONG = 30.0  # the drivers' own retry interval: far longer than any wait below
MODEL = (0x0C2E, 0x0B81)
NAME = "Honeywell Imaging & Mobility 1400g"
SHARED_BY_ID = "usb-Honeywell_Imaging___Mobility_1400g-event-kbd"  # what udev names both without a serial


class FakeUdev:
    """A udev monitor over a pipe, and the factory that makes it: each `fire()` is one udev event."""

    def __init__(self, broken: bool = False) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        self.broken = broken
        self.filters: list[str] = []
        self.made = 0
        self.started = False

    def __call__(self) -> FakeUdev:
        self.made += 1
        return self

    def fileno(self) -> int:
        return self.read_end

    def filter_by(self, subsystem: str) -> None:
        self.filters.append(subsystem)

    def start(self) -> None:
        self.started = True

    def poll(self, timeout: float | None = None) -> object | None:
        if self.broken:
            raise OSError("the netlink socket is gone")
        try:
            return os.read(self.read_end, 1)
        except BlockingIOError:
            return None

    def fire(self) -> None:
        os.write(self.write_end, b"!")

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


def _shared_by(factory: object) -> list[object]:
    return [key for key in hotplug._shared if key[1] is factory]


@pytest.fixture
def udev() -> Iterator[FakeUdev]:
    fake = FakeUdev()
    yield fake
    assert not _shared_by(fake), "a waiter kept following udev after its driver closed"
    fake.close()


async def _until(condition: Callable[[], object], within: float = 2.0) -> float:
    """Seconds until `condition()` held; fails after `within`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "not so in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


# --- the fake tree ------------------------------------------------------------------------------------------


def plug(tree: Tree, port: str, serial: str, hidraw: int, event: int, seq: int) -> Path:
    """A 1400g on USB `port` as the kernel and udev show it: its hidraw and input nodes, the input node's
    by-path link and (with a serial number) its by-id link. Returns the hidraw node's path, left for a FIFO."""
    hid = tree.hid_interface(port, *MODEL, NAME, serial, seq)
    tree.hidraw(hid, hidraw, BOOT_KEYBOARD_DESCRIPTOR)
    by_id = f"usb-Honeywell_Imaging___Mobility_1400g_{serial}-event-kbd" if serial else None
    tree.event(hid, *MODEL, NAME, serial, KEYBOARD_KEYS, event, by_id)
    by_path = f"pci-0000:00:14.0-usb-0:{port[2:]}:1.0-event-kbd"
    _udev_link(tree.root / "dev/input/by-path" / by_path, tree.root / f"dev/input/event{event}")
    node = tree.root / f"dev/hidraw{hidraw}"
    node.unlink()
    return node


def link(tree: Tree, rel: str, target: Path) -> Path:
    """A udev link, replaced atomically if it is there (as udev does when another device claims it)."""
    path = tree.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.symlink_to(os.path.relpath(target, path.parent))
    tmp.replace(path)
    return path


def unplug(tree: Tree, scanner: FifoScanner, port: str, hidraw: int, event: int) -> None:
    """Pull the cable: the node goes (the driver's read ends), then sysfs, then udev's links to it."""
    scanner.unplug()
    shutil.rmtree(tree.root / USB / port)
    for rel in (f"sys/class/hidraw/hidraw{hidraw}", f"sys/class/input/event{event}", f"sys/class/input/input{event}"):
        (tree.root / rel).unlink()
    (tree.root / f"dev/input/event{event}").unlink()
    for entry in (tree.root / "dev").rglob("*"):
        if entry.is_symlink() and not entry.exists():
            entry.unlink()


def hidraw_driver(scanner_id: str, path: Path, tree: Tree, udev: FakeUdev) -> HidrawDriver:
    driver = HidrawDriver(scanner_id, str(path), retry_interval=LONG)
    driver.hotplug = hotplug.Waiter(udev)
    driver.identity.root = tree.root
    return driver


@contextlib.asynccontextmanager
async def reading(drivers: Iterable[HidrawDriver]) -> AsyncIterator[list[Read]]:
    """Every driver's reads, gathered in one list while the body runs; the drivers are closed after."""
    reads: list[Read] = []

    async def gather(driver: HidrawDriver) -> None:
        async with contextlib.aclosing(driver.reads()) as stream:
            async for read in stream:
                reads.append(read)

    drivers = list(drivers)
    tasks = [asyncio.create_task(gather(d)) for d in drivers]
    try:
        yield reads
    finally:
        for driver in drivers:
            await driver.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 2)


async def scan(scanner: FifoScanner, reads: list[Read], text: str) -> Read:
    """Type `text` on one scanner; the read it became."""
    await scanner.send(scanner_reports(text))
    await _until(lambda: any(r.data == text.encode() for r in reads))
    return next(r for r in reads if r.data == text.encode())


# --- two of one model -------------------------------------------------------------------------------------


async def test_two_scanners_with_serial_numbers_swapped_on_replug_keep_their_identities(
    tmp_path: Path, udev: FakeUdev, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    tree = Tree(tmp_path)
    first = {"A111": plug(tree, "1-2", "A111", 0, 5, 1), "B222": plug(tree, "1-3", "B222", 1, 6, 2)}
    scanners = {serial: await fifo_scanner(node) for serial, node in first.items()}
    hidraws = [c for c in discover(tree.root) if c.kind == ScannerKind.HIDRAW]
    assert {(c.path, c.identity) for c in hidraws} == {
        ("/dev/hidraw0", "usb 0c2e:0b81 serial A111"),
        ("/dev/hidraw1", "usb 0c2e:0b81 serial B222"),
    }
    assert not any(SAME_MODEL in c.why for c in discover(tree.root))  # serial numbers tell them apart
    # A udev rule names each scanner by its serial number (ATTRS{serial}=="A111", SYMLINK+="scanner-till-1").
    paths = {
        "A111": link(tree, "dev/scanner-till-1", first["A111"]),
        "B222": link(tree, "dev/scanner-till-2", first["B222"]),
    }
    drivers = {"A111": hidraw_driver("till-1", paths["A111"], tree, udev)}
    drivers["B222"] = hidraw_driver("till-2", paths["B222"], tree, udev)

    async with reading(drivers.values()) as reads:
        await _until(lambda: all(d.health.connected for d in drivers.values()))
        assert {s: d.health.device for s, d in drivers.items()} == {
            "A111": "usb 0c2e:0b81 serial A111",
            "B222": "usb 0c2e:0b81 serial B222",
        }
        assert (await scan(scanners["A111"], reads, "BEFORE-A")).scanner_id == "till-1"
        assert (await scan(scanners["B222"], reads, "BEFORE-B")).scanner_id == "till-2"

        unplug(tree, scanners["A111"], "1-2", 0, 5)
        unplug(tree, scanners["B222"], "1-3", 1, 6)
        await _until(lambda: not any(d.health.connected for d in drivers.values()))
        # Back in each other's USB port, and enumerated the other way round: each takes the other's node.
        second = {"B222": plug(tree, "1-2", "B222", 0, 5, 3), "A111": plug(tree, "1-3", "A111", 1, 6, 4)}
        scanners = {serial: await fifo_scanner(node) for serial, node in second.items()}
        link(tree, "dev/scanner-till-1", second["A111"])
        link(tree, "dev/scanner-till-2", second["B222"])
        await asyncio.sleep(0.3)
        assert not any(d.health.connected for d in drivers.values())  # nothing has told them yet

        udev.fire()
        took = await _until(lambda: all(d.health.connected for d in drivers.values()))
        assert took < 2.0 < LONG
        assert {s: d.health.device for s, d in drivers.items()} == {
            "A111": "usb 0c2e:0b81 serial A111",
            "B222": "usb 0c2e:0b81 serial B222",
        }
        assert (await scan(scanners["A111"], reads, "AFTER-A")).scanner_id == "till-1"
        assert (await scan(scanners["B222"], reads, "AFTER-B")).scanner_id == "till-2"
    for scanner in scanners.values():
        os.close(scanner.fd)
    assert "not as before" not in caplog.text
    assert "till-1: " + str(paths["A111"]) + " is usb 0c2e:0b81 serial A111" in caplog.text


async def test_two_scanners_without_serial_numbers_are_told_apart_by_usb_port(
    tmp_path: Path, udev: FakeUdev, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent")
    tree = Tree(tmp_path)
    first = {"1-2": plug(tree, "1-2", "", 0, 5, 1), "1-3": plug(tree, "1-3", "", 1, 6, 2)}
    scanners = {port: await fifo_scanner(node) for port, node in first.items()}
    link(tree, f"dev/input/by-id/{SHARED_BY_ID}", tree.root / "dev/input/event6")  # the last one enumerated

    found = discover(tree.root)
    keyboards = sorted((c for c in found if c.kind == ScannerKind.KEYBOARD), key=lambda c: c.node)
    assert [c.path for c in keyboards] == [
        "/dev/input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd",
        "/dev/input/by-path/pci-0000:00:14.0-usb-0:3:1.0-event-kbd",
    ]
    assert all(f"{SAME_MODEL}: configured by USB port" in c.why for c in keyboards)
    hidraws = sorted((c for c in found if c.kind == ScannerKind.HIDRAW), key=lambda c: c.node)
    assert [(c.path, c.identity) for c in hidraws] == [
        ("/dev/hidraw0", "usb 0c2e:0b81 port 1-2"),
        ("/dev/hidraw1", "usb 0c2e:0b81 port 1-3"),
    ]
    assert all(SAME_MODEL in c.why for c in hidraws)

    # A udev rule names each by its port (KERNELS=="1-2", SYMLINK+="scanner-port-1-2").
    paths = {port: link(tree, f"dev/scanner-port-{port}", node) for port, node in first.items()}
    drivers = {port: hidraw_driver(f"till-{port}", path, tree, udev) for port, path in paths.items()}
    async with reading(drivers.values()) as reads:
        await _until(lambda: all(d.health.connected for d in drivers.values()))
        assert {p: d.health.device for p, d in drivers.items()} == {p: f"usb 0c2e:0b81 port {p}" for p in drivers}

        unplug(tree, scanners["1-2"], "1-2", 0, 5)
        unplug(tree, scanners["1-3"], "1-3", 1, 6)
        await _until(lambda: not any(d.health.connected for d in drivers.values()))
        # The same ports, enumerated the other way round: the node numbers swap.
        second = {"1-3": plug(tree, "1-3", "", 0, 6, 3), "1-2": plug(tree, "1-2", "", 1, 5, 4)}
        scanners = {port: await fifo_scanner(node) for port, node in second.items()}
        for port, node in second.items():
            link(tree, f"dev/scanner-port-{port}", node)
        udev.fire()
        assert await _until(lambda: all(d.health.connected for d in drivers.values())) < 2.0
        assert {p: d.health.device for p, d in drivers.items()} == {p: f"usb 0c2e:0b81 port {p}" for p in drivers}
        assert (await scan(scanners["1-2"], reads, "PORT-2")).scanner_id == "till-1-2"
        assert (await scan(scanners["1-3"], reads, "PORT-3")).scanner_id == "till-1-3"
    for scanner in scanners.values():
        os.close(scanner.fd)
    assert "not as before" not in caplog.text


async def test_a_shared_link_that_now_leads_to_the_other_scanner_is_a_warning(
    tmp_path: Path, udev: FakeUdev, caplog: pytest.LogCaptureFixture
) -> None:
    """Configured by a link both scanners claim (udev's by-id link without serial numbers, or a rule by
    model): after a replug it may lead to the other one, and the log says so."""
    tree = Tree(tmp_path)
    first = {"1-2": plug(tree, "1-2", "", 0, 5, 1), "1-3": plug(tree, "1-3", "", 1, 6, 2)}
    scanners = {port: await fifo_scanner(node) for port, node in first.items()}
    shared = link(tree, "dev/scanner-1400g", first["1-2"])
    driver = hidraw_driver("till-1", shared, tree, udev)
    async with reading([driver]) as reads:
        await _until(lambda: driver.health.connected)
        assert driver.health.device == "usb 0c2e:0b81 port 1-2"

        unplug(tree, scanners["1-2"], "1-2", 0, 5)
        unplug(tree, scanners["1-3"], "1-3", 1, 6)
        await _until(lambda: not driver.health.connected)
        second = {"1-2": plug(tree, "1-2", "", 0, 5, 3), "1-3": plug(tree, "1-3", "", 1, 6, 4)}
        scanners = {port: await fifo_scanner(node) for port, node in second.items()}
        link(tree, "dev/scanner-1400g", second["1-3"])  # this time the other one claimed it last
        with caplog.at_level(logging.WARNING, logger="clearpoint.scanner_agent"):
            udev.fire()
            await _until(lambda: driver.health.connected)
        assert driver.health.device == "usb 0c2e:0b81 port 1-3"
        assert f"{shared} now leads to usb 0c2e:0b81 port 1-3, not usb 0c2e:0b81 port 1-2 as before" in caplog.text
        assert "by-path" in caplog.text
        assert (await scan(scanners["1-3"], reads, "OTHER")).scanner_id == "till-1"
    for scanner in scanners.values():
        os.close(scanner.fd)


# --- the serial driver ------------------------------------------------------------------------------------


async def test_the_serial_driver_reopens_a_replugged_port_on_a_udev_event(tmp_path: Path, udev: FakeUdev) -> None:
    link_path = tmp_path / "usb-Honeywell_1900G-if00"
    driver = SerialDriver("till-1", SerialSettings(str(link_path), baud=115200, reconnect_interval=LONG))
    driver.hotplug = hotplug.Waiter(udev)
    reads: asyncio.Queue[Read] = asyncio.Queue()

    async def pump() -> None:
        async for read in driver.reads():
            await reads.put(read)

    task = asyncio.create_task(pump())
    try:
        await asyncio.sleep(0.3)
        with VirtualScanner(link_path) as scanner:  # plugged in after the first try
            await asyncio.sleep(0.3)
            assert not driver.health.connected
            udev.fire()
            assert await _until(lambda: driver.health.connected) < 2.0
            assert driver.health.device == ""  # a pty is no USB device
            scanner.unplug()
            await _until(lambda: not driver.health.connected)
            scanner.replug()
            await asyncio.sleep(0.3)
            assert not driver.health.connected
            udev.fire()
            assert await _until(lambda: driver.health.connected) < 2.0
            await scanner.send(b"4006381333931\r", baud=115200)
            assert (await asyncio.wait_for(reads.get(), 2)).data == b"4006381333931"
    finally:
        started = time.monotonic()
        await driver.close()
        await asyncio.wait_for(task, 2)
        assert time.monotonic() - started < 1.0


async def test_a_port_that_appears_while_the_serial_driver_tries_it_is_not_missed(
    tmp_path: Path, udev: FakeUdev
) -> None:
    """udev's news that lands while a try to open is still failing (the open runs in a thread) wakes the
    wait that follows it; the monitor is open already, for the other scanners' drivers."""
    other = hotplug.Waiter(udev)
    other.start()
    link_path = tmp_path / "usb-Honeywell_1900G-if00"
    plugged: list[VirtualScanner] = []

    class Racing(SerialDriver):
        async def _open_port(self):  # type: ignore[no-untyped-def]
            if plugged:
                return await super()._open_port()
            plugged.append(VirtualScanner(link_path))  # plugged in just as the first try fails
            udev.fire()
            await asyncio.sleep(0.05)
            raise OSError(errno.ENOENT, "No such file or directory")

    driver = Racing("till-1", SerialSettings(str(link_path), baud=115200, reconnect_interval=LONG))
    driver.hotplug = hotplug.Waiter(udev)
    task = asyncio.create_task(anext(driver.reads()))
    try:
        assert await _until(lambda: driver.health.connected) < 2.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await driver.close()
        other.close()
        for scanner in plugged:
            scanner.close()


# --- the watcher ------------------------------------------------------------------------------------------


async def test_waiters_share_one_monitor_which_the_last_one_closes(udev: FakeUdev) -> None:
    one, two = hotplug.Waiter(udev), hotplug.Waiter(udev)
    one.start()
    two.start()
    assert udev.made == 1 and udev.started and udev.filters == list(hotplug.SUBSYSTEMS)
    assert one.following and two.following
    waits = [asyncio.create_task(w.wait(LONG)) for w in (one, two)]
    await asyncio.sleep(0.05)
    udev.fire()
    await asyncio.wait_for(asyncio.gather(*waits), 2)
    one.release()
    assert _shared_by(udev)
    two.close()
    assert not _shared_by(udev)


async def test_a_burst_of_events_wakes_a_waiter_once(udev: FakeUdev) -> None:
    waiter = hotplug.Waiter(udev)
    waiter.start()
    try:
        task = asyncio.create_task(waiter.wait(LONG))
        started = time.monotonic()
        for _ in range(3):  # one plug-in: usb, then hidraw, then input, say
            udev.fire()
            await asyncio.sleep(0.05)
        await asyncio.wait_for(task, 2)
        assert hotplug.SETTLE * 0.9 <= time.monotonic() - started < 1.0
        started = time.monotonic()
        await waiter.wait(0.3)
        assert time.monotonic() - started >= 0.28  # the burst's later events woke no one again
    finally:
        waiter.close()


async def test_an_event_between_two_waits_is_kept_for_the_next(udev: FakeUdev) -> None:
    """A device that appears just after a failed open, before the wait begins, is not missed."""
    waiter = hotplug.Waiter(udev)
    waiter.start()
    try:
        udev.fire()
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await waiter.wait(LONG)
        assert time.monotonic() - started < 1.0
    finally:
        waiter.close()


async def test_close_ends_a_wait_at_once_and_every_later_one(udev: FakeUdev) -> None:
    waiter = hotplug.Waiter(udev)
    task = asyncio.create_task(waiter.wait(LONG))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    waiter.close()
    await asyncio.wait_for(task, 1)
    await waiter.wait(LONG)
    assert time.monotonic() - started < 0.1


async def test_without_pyudev_drivers_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pyudev", None)  # import pyudev fails

    def no_pyudev() -> hotplug.Monitor:
        return hotplug.udev_monitor()

    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent.hotplug")
    node = tmp_path / "hidraw0"
    driver = HidrawDriver("till-1", str(node), retry_interval=0.2)
    driver.hotplug = hotplug.Waiter(no_pyudev)
    scanner = None
    async with reading([driver]):
        await asyncio.sleep(0.1)
        assert "pyudev is not installed; devices are polled for" in caplog.text
        assert not driver.hotplug.following
        scanner = await fifo_scanner(node)
        assert await _until(lambda: driver.health.connected) < 1.0  # the next poll found it
    if scanner is not None:
        os.close(scanner.fd)
    assert not _shared_by(no_pyudev)


async def test_without_udev_a_wait_lasts_its_interval(caplog: pytest.LogCaptureFixture) -> None:
    def no_netlink() -> hotplug.Monitor:
        raise OSError(97, "Address family not supported by protocol")

    caplog.set_level(logging.INFO, logger="clearpoint.scanner_agent.hotplug")
    waiter = hotplug.Waiter(no_netlink)
    started = time.monotonic()
    await waiter.wait(0.1)
    assert time.monotonic() - started >= 0.09
    assert "udev cannot be followed here" in caplog.text and not waiter.following
    waiter.close()


async def test_a_broken_monitor_falls_back_to_polling(caplog: pytest.LogCaptureFixture) -> None:
    broken = FakeUdev(broken=True)
    waiter = hotplug.Waiter(broken)
    waiter.start()
    assert waiter.following
    try:
        with caplog.at_level(logging.WARNING, logger="clearpoint.scanner_agent.hotplug"):
            task = asyncio.create_task(waiter.wait(LONG))
            broken.fire()
            await asyncio.wait_for(task, 2)  # woken, so its owner looks once more
        assert "the udev monitor failed" in caplog.text and not waiter.following
        started = time.monotonic()
        await waiter.wait(0.5)  # the pipe is still readable, but no longer followed
        assert time.monotonic() - started >= 0.45
    finally:
        waiter.close()
        broken.close()


def test_the_udev_monitor_comes_from_pyudev(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []

    class Monitor:
        @classmethod
        def from_netlink(cls, context: object) -> Monitor:
            made.append(context)
            return cls()

    fake = types.ModuleType("pyudev")
    fake.Context = lambda: "context"  # type: ignore[attr-defined]
    fake.Monitor = Monitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyudev", fake)
    assert isinstance(hotplug.udev_monitor(), Monitor) and made == ["context"]


# --- identity ---------------------------------------------------------------------------------------------


def test_identity_of_each_kind_of_node(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    tree.honeywell_serial()
    tree.ftdi_adapter()
    tree.honeywell_keyboard_mode()
    tree.newland_pos()
    root = tree.root
    acm = next((root / "dev/serial/by-id").glob("*1900G*"))
    assert identify(acm, root) == "usb 0c2e:0b6a serial 18073B4F2A"
    assert identify(root / "dev/ttyUSB0", root) == "usb 0403:6001 serial A50285BI"
    kbd = root / "dev/input/by-id/usb-Honeywell_Imaging___Mobility_1400g_13056B5B22-event-kbd"
    assert identify(kbd, root) == "usb 0c2e:0b81 serial 13056B5B22"
    assert identify(root / "dev/hidraw0", root) == "usb 0c2e:0b81 serial 13056B5B22"
    assert identify(root / "dev/hidraw2", root) == "usb 1eab:0110 port 1-7"
    # Unknown, never an error: a missing path, a node of no USB device, a path outside the tree.
    assert identify(root / "dev/hidraw9", root) == ""
    (root / "dev/ttyS0").write_text("")
    assert identify(root / "dev/ttyS0", root) == ""
    assert identify(tmp_path.parent, root) == ""
    assert identify("/dev/null") == ""


async def test_the_device_reaches_the_heartbeat_and_the_fleet_view(tmp_path: Path, udev: FakeUdev) -> None:
    tree = Tree(tmp_path)
    scanner = await fifo_scanner(plug(tree, "1-2", "A111", 0, 5, 1))
    driver = hidraw_driver("till-1", link(tree, "dev/scanner-till-1", tree.root / "dev/hidraw0"), tree, udev)
    async with reading([driver]):
        await _until(lambda: driver.health.connected)
        journal = types.SimpleNamespace(backlog=0)
        beat = await heartbeat.report({"till-1": driver}, journal, None)  # type: ignore[arg-type]
    os.close(scanner.fd)
    (status,) = beat.scanners
    assert status.device == "usb 0c2e:0b81 serial A111"
    agent = A.Agent(agent_id="agt_1", status=A.AgentStatus(heartbeat=beat))
    assert "device: usb 0c2e:0b81 serial A111" in describe_text(agent, time.time())
