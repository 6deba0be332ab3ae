"""What the platform and the agent leave on disk: no voucher code anywhere in the platform's
database after redemptions and scans of every kind, and files only their owner can read."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clearpoint.platform.core.database import Database
from clearpoint.scanner_agent.journal import Journal
from clearpoint.v1 import agents_pb2, redemption_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent_helpers import enrol_agent, signed, stream_one_by_one, stream_scans
from tests.conftest import start_platform
from tests.helpers import RunningPlatform, rid

A = agents_pb2


async def _a_day_of_business(platform: RunningPlatform) -> list[str]:
    """Codes issued, previewed, redeemed (unary and scanned, once and more than once), refused,
    replayed and rolled back; returns every code issued."""
    await platform.operator().create_key_if_none()
    partner = await platform.new_partner()
    campaign = await partner.campaign(platform.clock(), uses_per_voucher=3, rollback_window_s=3600)
    codes = [v.code for v in await partner.issue(campaign.campaign_id, 6)]
    md = partner.metadata
    await partner.redemption.ValidateCode(redemption_pb2.ValidateCodeRequest(code=codes[0], store_id="s"), metadata=md)
    done = await partner.redeem(codes[0], request_id="r-1")
    await partner.redeem(codes[0], request_id="r-1")  # a replay
    await partner.redemption.RollbackRedemption(
        redemption_pb2.RollbackRedemptionRequest(
            request_id=rid(), redemption_id=done.redemption.redemption_id, reason="till error"
        ),
        metadata=md,
    )
    await partner.redeem(codes[1], store_id="store-1")
    agent_id, key = await enrol_agent(platform, partner)
    scans = [signed(agent_id, key, i + 1, code.encode(), symbology="]Q1") for i, code in enumerate(codes[1:5])]
    scans.append(signed(agent_id, key, 9, b"4006381333931"))
    await stream_scans(platform.target, scans, (agent_id, key))
    await stream_one_by_one(platform.target, [scans[0], signed(agent_id, key, 10, codes[1].encode())], (agent_id, key))
    forged = signed(agent_id, Ed25519PrivateKey.generate(), 11, codes[5].encode())
    await stream_one_by_one(platform.target, [forged], (agent_id, key))
    return codes


def _private(path: Path, mode: int) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == mode, f"{path} is {stat.S_IMODE(path.stat().st_mode):o}"


def _no_code_in(blob: bytes, codes: list[str], where: str) -> None:
    for code in codes:
        body = code.split(":", 1)[1].encode()[:40]
        for form in (body, body.hex().encode()):  # as text, and as PostgreSQL writes bytea in a dump
            assert form not in blob, f"a voucher code is in {where}"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """A usual umask (022): anything more open than 0600/0700 would come from it."""
    before = os.umask(0o022)
    yield
    os.umask(before)


async def test_no_voucher_code_in_the_platform_database_file(tmp_path: Path) -> None:
    data = tmp_path / "clearpoint-data"
    url = f"sqlite:///{data / 'clearpoint.sqlite3'}"
    platform = await start_platform(url)
    try:
        codes = await _a_day_of_business(platform)
    finally:
        await platform.close()
    _private(data, 0o700)
    files = [f for f in data.iterdir() if f.name.startswith("clearpoint.sqlite3")]
    assert files
    for file in files:
        _private(file, 0o600)
        _no_code_in(file.read_bytes(), codes, file.name)


async def test_no_voucher_code_in_the_platform_database_dump(pg_url: str) -> None:
    platform = await start_platform(pg_url)
    try:
        codes = await _a_day_of_business(platform)
    finally:
        await platform.close()
    dump = shutil.which("pg_dump")
    if dump is None:  # the rows themselves, then
        db = Database(pg_url)
        try:
            from sqlalchemy import text

            async with db.read() as conn:
                rows = (await conn.execute(text("SELECT data FROM agent_scans WHERE data IS NOT NULL"))).all()
        finally:
            await db.dispose()
        _no_code_in(b"".join(bytes(r[0]) for r in rows), codes, "agent_scans")
        return
    done = await asyncio.to_thread(
        subprocess.run, [dump, "--data-only", pg_url], capture_output=True, check=True, timeout=120
    )
    out = done.stdout
    assert b"4006381333931".hex().encode() in out  # the dump holds the scan log, bytea as hex
    _no_code_in(out, codes, "the pg_dump of the database")


async def test_an_existing_open_directory_and_journal_are_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "agent-data"
    data_dir.mkdir(mode=0o755)
    (data_dir / "journal.sqlite3").touch(mode=0o644)
    journal = await Journal.open(data_dir / "journal.sqlite3", "agt_0011223344556677", Ed25519PrivateKey.generate())
    await journal.close()
    _private(data_dir, 0o700)
    for file in data_dir.iterdir():
        _private(file, 0o600)


def test_the_working_directory_is_never_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database put straight in the working directory makes the file private, not the directory."""
    from clearpoint.private_files import private_sqlite_file

    tmp_path.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    private_sqlite_file(Path("clearpoint.sqlite3"))
    _private(tmp_path, 0o755)
    _private(tmp_path / "clearpoint.sqlite3", 0o600)


def test_a_shared_directory_is_never_closed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A database put straight in a directory others share (sticky and open to all, as /tmp is)
    gets a private file and a warning; the directory keeps its mode, or everyone else would lose it."""
    from clearpoint.private_files import private_sqlite_file

    shared = tmp_path / "scratch"
    shared.mkdir()
    shared.chmod(0o1777)
    private_sqlite_file(shared / "clearpoint.sqlite3")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    _private(shared / "clearpoint.sqlite3", 0o600)
    assert "others may list" in caplog.text
