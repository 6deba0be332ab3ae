"""Files only their owner may read: the platform's SQLite database and the agent's journal.

Both hold what must not leak (scans, answers, the claim book; keys elsewhere are sealed), so each
is kept in a directory of mode 0700 and created 0600 before SQLite opens it. SQLite gives its
-wal and -shm files the main file's mode, and an existing looser mode is tightened, with a warning.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_sqlite_file(path: Path) -> None:
    """Make `path`'s directory 0700 and `path` (and SQLite's side files, if any) 0600, creating
    what does not exist yet. A directory or file owned by someone else is left as it is, and so are
    directories others share: the working and home directories, the root, and any with the sticky
    bit (/tmp and its kind). A database put straight in one of those only gets a warning."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _shared(directory):  # not ours to close: the files alone are made private
        log.warning("%s sits in %s, which others may list; a directory of its own is better", path.name, directory)
    else:
        _tighten(directory, 0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in _SIDE_FILES)):
        if file.exists():
            _tighten(file, 0o600)


def _shared(directory: Path) -> bool:
    resolved = directory.resolve()
    if resolved in {Path.cwd().resolve(), Path.home().resolve(), Path(resolved.anchor)}:
        return True
    return bool(resolved.stat().st_mode & stat.S_ISVTX)


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & ~mode == 0:
        return
    log.warning("%s was mode %o, readable by others; making it %o", path, stat.S_IMODE(info.st_mode), mode)
    path.chmod(mode)
