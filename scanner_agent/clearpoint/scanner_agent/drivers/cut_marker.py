"""Whether the agent held part of a frame when it last let go of a serial port, kept outside the process.

The kernel keeps what a scanner sends while no agent reads the port; the agent opens it without
discarding that. But an agent killed in the middle of a frame took the frame's head with it, and
the first bytes the port then holds are its tail, which would read as a scan of its own. Nothing
in the bytes tells a tail from a whole scan, so the driver says it here, as it goes: "a frame is
cut" whenever its framer holds part of one. One small write when that changes, no fsync: the
kernel keeps the file as long as it keeps the port's bytes, and a power cut loses both.

The mark names the device it was made on (boot, inode, creation time of the device node): after a
reboot or a replug the port holds nothing of the old frame, and the mark no longer applies.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def device_identity(fd: int) -> str:
    """This boot and this device node (a replugged scanner gets a new node, even at the same path)."""
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = "?"
    st = os.fstat(fd)
    return f"{boot} {st.st_rdev}:{st.st_ino}:{st.st_ctime_ns}"


class CutMarker:
    """One scanner's mark: the device it was made on, and whether a frame was cut there."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._written: str | None = None

    def was_cut(self, identity: str) -> bool:
        """True if the last agent on this device, in this boot, stopped with part of a frame."""
        if self.path is None:
            return False
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("cannot read %s (%s): a frame cut by the agent's stop is not looked for", self.path, exc)
            return False
        self._written = text
        return text == _line(identity, True)

    def record(self, identity: str, cut: bool) -> None:
        """Say whether a frame is cut now (written only when that changes)."""
        if self.path is None:
            return
        line = _line(identity, cut)
        if line == self._written:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, line.encode(), 0)
                os.ftruncate(fd, len(line.encode()))
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot write %s (%s): a frame cut by the agent's stop may not be told apart", self.path, exc)
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._written = None
            return
        self._written = line


def _line(identity: str, cut: bool) -> str:
    return f"{identity} {'cut' if cut else 'whole'}\n"
