"""The `clearpoint` command shell: its version, groups loaded only when run, and a missing extra
named with the command that adds it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import version


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    """`--version` on the command and on every group of it."""
    from clearpoint.cli import GROUPS

    for where in ([], *([group] for group in GROUPS)):
        argv = [sys.executable, "-m", "clearpoint.cli", *where, "--version"]
        done = subprocess.run(argv, capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.strip() == f"clearpoint {version('clearpoint')}", where


def test_the_agent_group_loads_neither_the_database_stack_nor_the_platform() -> None:
    done = _python(
        """
        import contextlib, io, sys
        from clearpoint.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main(["agent", "--help"])
        heavy = ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "clearpoint.platform")
        loaded = [m for m in heavy if m in sys.modules]
        print(",".join(loaded) or "none")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def test_every_group_is_listed_without_loading_any() -> None:
    done = _python(
        """
        import contextlib, io, sys
        from clearpoint.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(["--help"])
        assert all(g in out.getvalue() for g in ("platform", "agent", "demo")), out.getvalue()
        groups = ("clearpoint.platform.cli", "clearpoint.scanner_agent.cli")
        print(",".join(m for m in groups if m in sys.modules) or "none")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def test_a_missing_extra_is_named() -> None:
    """As on a store PC installed with [agent] only: the platform's libraries cannot be imported."""
    done = _python(
        """
        import sys
        class NoPlatformExtra:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("sqlalchemy", "alembic", "asyncpg", "aiosqlite"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, NoPlatformExtra())
        from clearpoint.cli import main
        sys.exit(main(["platform", "migrate", "--database", "sqlite:///:memory:"]))
        """
    )
    assert done.returncode == 1
    assert "pip install 'clearpoint[platform]'" in done.stderr
    assert "Traceback" not in done.stderr
