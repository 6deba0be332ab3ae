"""One Alembic history: it builds exactly the schema the rooms declare, and revision 0003 carries
the answers given before it (redemptions, refusals, scans, enrolments) into the one store of first
answers, so a request replayed across the upgrade still gets its first answer."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from clearpoint.formats.scan_signatures import ScanFields, canonical_bytes, sign_scan
from clearpoint.platform import migrate
from clearpoint.platform.app import Platform
from clearpoint.platform.campaigns import catalog, issuing
from clearpoint.platform.campaigns.records import CampaignSpec
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.once import RequestKey
from clearpoint.platform.core.principals import Principal, Role
from clearpoint.platform.core.tables import metadata
from clearpoint.platform.partners import accounts
from clearpoint.platform.redemption.redeemer import REDEEM, RedeemRequest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tests.conftest import MASTER_KEY, _drop_pg_database, _fresh_pg_database, _pg_url

HOUR = 3600 * 1_000_000


@pytest.fixture
async def empty_database(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database no test has migrated yet (the PostgreSQL one of the session is shared)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    base = _pg_url()
    assert base is not None
    url, name = await _fresh_pg_database(base)
    yield url
    await _drop_pg_database(base, name)


async def test_the_migrations_build_the_schema_the_rooms_declare(empty_database: str) -> None:
    db = Database(empty_database)
    try:
        await migrate.upgrade(db)

        def differences(sync: Connection) -> list[Any]:
            return list(compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata))

        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await db.dispose()


async def _platform_at(url: str, revision: str, clock: ManualClock) -> Platform:
    """The platform's code on a database migrated only as far as `revision` (rows written as then)."""
    db = Database(url)
    await migrate.upgrade(db, revision)
    await db.dispose()
    return await Platform.open(url, master_key=MASTER_KEY, clock=clock, run_migrations=False)


def _old_refusal(reason: str, message: str, code: int) -> bytes:
    """A refusal as revision 0002 stored it: a google.rpc.Status with a clearpoint ErrorInfo."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="clearpoint.v1", metadata={"field": "x"}))
    return status_pb2.Status(code=code, message=message, details=[detail]).SerializeToString()


async def test_answers_given_before_0003_are_replayed_after_it(empty_database: str) -> None:
    database_url = empty_database
    clock = ManualClock()
    platform = await _platform_at(database_url, "0002", clock)
    now = clock()
    async with platform.db.write() as conn:
        partner, _ = await accounts.create(conn, f"old-{secrets.token_hex(3)}", Role.PARTNER, now)
        await platform.keys.create(conn)
        spec = CampaignSpec("old", "an old prize", now - HOUR, now + 24 * HOUR, (), 10, 5, 0)
        principal = Principal(partner.partner_id, partner.name, Role.PARTNER)
        campaign = await catalog.create(conn, principal, spec, now)
        signer = await platform.keys.signer(conn)
        (voucher_id, code), (scanned_id, scanned_code) = await issuing.issue(conn, campaign, 2, signer, now)
    agent_key = Ed25519PrivateKey.generate()
    agent_public = agent_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    agent_id, token_id = "agt_" + secrets.token_hex(8), "enr_" + secrets.token_hex(6)
    scan = ScanFields(agent_id, "till-1", 1, now, "]Q1", scanned_code.encode())
    not_a_voucher = ScanFields(agent_id, "till-1", 2, now, "]E0", b"4006381333931")
    redeem_sha, refused_sha = secrets.token_bytes(32), secrets.token_bytes(32)
    rows: list[tuple[str, dict[str, Any]]] = [
        # A redemption over the API, and the scan's, as 0002 kept them: the redemption row was the answer.
        ("UPDATE vouchers SET uses_made = 1 WHERE voucher_id IN (:v, :s)", {"v": voucher_id, "s": scanned_id}),
        ("UPDATE campaigns SET redeemed = 2 WHERE campaign_id = :c", {"c": campaign.campaign_id}),
        (
            "INSERT INTO redemptions (redemption_id, voucher_id, campaign_id, store_id, redeemed_by, request_id,"
            " request_sha256, redeemed_us, uses_remaining)"
            " VALUES (:r, :v, :c, 'store-1', :p, 'old-request', :h, :t, 4)",
            {"r": "rdm_00000000000000aa", "v": voucher_id, "c": campaign.campaign_id, "p": partner.partner_id}
            | {"h": redeem_sha, "t": now},
        ),
        (
            "INSERT INTO redemptions (redemption_id, voucher_id, campaign_id, store_id, redeemed_by, request_id,"
            " request_sha256, redeemed_us, uses_remaining) VALUES (:r, :v, :c, 'store-1', :p, :q, :h, :t, 4)",
            {"r": "rdm_00000000000000bb", "v": scanned_id, "c": campaign.campaign_id, "p": partner.partner_id}
            | {"q": f"scan:{agent_id}:1", "h": hashlib.sha256(canonical_bytes(scan)).digest(), "t": now},
        ),
        # A refusal, as a status.
        (
            "INSERT INTO idempotency (principal_id, method, request_id, request_sha256, status_code, response,"
            " created_us) VALUES (:p, 'Redeem', 'old-refused', :h, 9, :body, :t)",
            {"p": partner.partner_id, "h": refused_sha, "t": now}
            | {"body": _old_refusal("STORE_NOT_ALLOWED", "not at this store", 9)},
        ),
        # An agent, enrolled with its token, and two answered scans.
        (
            "INSERT INTO enrolment_tokens (token_id, secret_sha256, partner_id, store_id, created_us, expires_us,"
            " used_us, agent_id) VALUES (:e, :s, :p, 'store-1', :t, :x, :t, :a)",
            {"e": token_id, "s": secrets.token_bytes(32), "p": partner.partner_id, "t": now, "x": now + HOUR}
            | {"a": agent_id},
        ),
        (
            "INSERT INTO agents (agent_id, partner_id, store_id, display_name, public_key, state, token_id,"
            " enrolled_us) VALUES (:a, :p, 'store-1', 'till', :k, 'active', :e, :t)",
            {"a": agent_id, "p": partner.partner_id, "k": agent_public, "e": token_id, "t": now},
        ),
        (
            "INSERT INTO agent_scans (agent_id, sequence, scanner_id, scan_us, symbology, data, scan_sha256,"
            " received_us, answered_us, outcome, reason, message, redemption_id, campaign_id, campaign_name,"
            " prize_description, voucher_id, uses_remaining) VALUES (:a, 1, 'till-1', :t, ']Q1', :d, :h, :t, :t,"
            " 'accepted', NULL, 'prize: an old prize', 'rdm_00000000000000bb', :c, 'old', 'an old prize', :v, 4)",
            {"a": agent_id, "t": now, "d": scan.data, "h": hashlib.sha256(canonical_bytes(scan)).digest()}
            | {"c": campaign.campaign_id, "v": scanned_id},
        ),
        (
            "INSERT INTO agent_scans (agent_id, sequence, scanner_id, scan_us, symbology, data, scan_sha256,"
            " received_us, answered_us, outcome, reason, message) VALUES (:a, 2, 'till-1', :t, ']E0', :d, :h, :t,"
            " :t, 'not_a_voucher', 'NOT_A_VOUCHER', 'not a voucher code')",
            {"a": agent_id, "t": now, "d": not_a_voucher.data}
            | {"h": hashlib.sha256(canonical_bytes(not_a_voucher)).digest()},
        ),
    ]
    async with platform.db.write() as conn:
        for sql, values in rows:
            await conn.execute(text(sql), values)
    await migrate.upgrade(platform.db)
    await platform.close()

    platform = await Platform.open(database_url, master_key=MASTER_KEY, clock=clock)
    try:
        clock.advance(60)

        def redeem(request_id: str, fingerprint: bytes, code_text: str) -> RedeemRequest:
            key = RequestKey(partner.partner_id, REDEEM, request_id)
            return RedeemRequest(principal, key, fingerprint, request_id, code_text, "store-1")

        again = await platform.redeemer.redeem(redeem("old-request", redeem_sha, code))
        assert again.replayed and again.redemption.redemption_id == "rdm_00000000000000aa"
        assert again.claim.uses_remaining == 4 and again.claim.prize_description == "an old prize"
        try:
            await platform.redeemer.redeem(redeem("old-refused", refused_sha, code))
        except Refusal as refused:
            assert (refused.reason, refused.message, refused.replayed) == (
                Reason.STORE_NOT_ALLOWED,
                "not at this store",
                True,
            )
            assert refused.metadata == {"field": "x"}
        else:
            raise AssertionError("a refusal given before the upgrade was not given again")

        resent = await platform.ingest.ingest(scan, sign_scan(agent_key, scan))
        assert resent.replayed and resent.redemption_id == "rdm_00000000000000bb" and resent.answered_us == now
        other = await platform.ingest.ingest(not_a_voucher, sign_scan(agent_key, not_a_voucher))
        assert other.replayed and other.reason is Reason.NOT_A_VOUCHER
        async with platform.db.read() as conn:
            (uses,) = (await conn.execute(text("SELECT sum(uses_made) FROM vouchers"))).one()
            enrolled = (
                await conn.execute(
                    text("SELECT response FROM idempotency WHERE method = 'EnrolAgent' AND request_id = :e"),
                    {"e": token_id},
                )
            ).scalar_one()
        assert uses == 2, "a replay across the upgrade redeemed again"
        assert bytes(enrolled) == agent_id.encode()
    finally:
        await platform.close()


async def test_0003_goes_down_and_up_again_keeping_refusals(empty_database: str) -> None:
    db = Database(empty_database)
    try:
        await migrate.upgrade(db, "0002")
        async with db.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO idempotency (principal_id, method, request_id, request_sha256, status_code,"
                    " response, created_us) VALUES ('ptn_000000000001', 'CreateCampaign', 'r1', :h, 3, :body, 1)"
                ),
                {"h": b"\x01" * 32, "body": _old_refusal("FIELD_INVALID", "name is empty", 3)},
            )
        await migrate.upgrade(db)
        await migrate.downgrade(db, "0002")
        async with db.read() as conn:
            code, body = (await conn.execute(text("SELECT status_code, response FROM idempotency"))).one()
        status = status_pb2.Status.FromString(bytes(body))
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert (code, status.message, info.reason, dict(info.metadata)) == (
            3,
            "name is empty",
            "FIELD_INVALID",
            {"field": "x"},
        )
        await migrate.upgrade(db)
        async with db.read() as conn:
            (refusal,) = (await conn.execute(text("SELECT refusal FROM idempotency"))).one()
        assert Refusal.from_json(refusal).reason is Reason.FIELD_INVALID
    finally:
        await db.dispose()


async def test_0004_lets_a_scan_and_a_call_share_a_request_id_and_goes_down_only_when_none_do(
    empty_database: str,
) -> None:
    clock = ManualClock()
    platform = await Platform.open(empty_database, master_key=MASTER_KEY, clock=clock)
    now = clock()
    async with platform.db.write() as conn:
        partner, _ = await accounts.create(conn, f"p-{secrets.token_hex(3)}", Role.PARTNER, now)
        await platform.keys.create(conn)
        spec = CampaignSpec("c", "a prize", now - HOUR, now + 24 * HOUR, (), 10, 1, 0)
        campaign = await catalog.create(conn, Principal(partner.partner_id, partner.name, Role.PARTNER), spec, now)
        vouchers = await issuing.issue(conn, campaign, 2, await platform.keys.signer(conn), now)
    await platform.close()
    insert = text(
        "INSERT INTO redemptions (redemption_id, voucher_id, campaign_id, store_id, redeemed_by, request_id,"
        " request_sha256, redeemed_us, uses_remaining) VALUES (:r, :v, :c, 'store-1', :p, 'scan:agt_1:1', :h, 1, 0)"
    )
    db = Database(empty_database)
    try:
        async with db.write() as conn:
            for i, (voucher_id, _) in enumerate(vouchers):
                row = {"r": f"rdm_{i:016x}", "v": voucher_id, "c": campaign.campaign_id, "p": partner.partner_id}
                await conn.execute(insert, row | {"h": b"\0" * 32})
        head = await migrate.current_revision(db)
        with pytest.raises(RuntimeError, match="two redemptions with request id 'scan:agt_1:1'"):
            await migrate.downgrade(db, "0003")
        assert await migrate.current_revision(db) in (head, "0004")  # stopped at 0004, nothing lost
        async with db.write() as conn:
            await conn.execute(text("DELETE FROM redemptions WHERE redemption_id = 'rdm_0000000000000001'"))
        await migrate.downgrade(db, "0003")
        with pytest.raises(Exception, match=r"(?i)unique"):
            async with db.write() as conn:
                row = {"r": "rdm_0000000000000009", "v": vouchers[1][0], "c": campaign.campaign_id}
                await conn.execute(insert, row | {"p": partner.partner_id, "h": b"\0" * 32})
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == head
    finally:
        await db.dispose()


async def test_0005_drops_voucher_codes_from_the_scan_log_and_keeps_other_barcodes(empty_database: str) -> None:
    clock = ManualClock()
    platform = await _platform_at(empty_database, "0004", clock)
    async with platform.db.write() as conn:
        partner, _ = await accounts.create(conn, f"p-{secrets.token_hex(3)}", Role.PARTNER, clock())
    await platform.close()
    agent_id, token_id = "agt_" + secrets.token_hex(8), "enr_" + secrets.token_hex(6)
    code, ean = b"CP1:" + b"6BFOXN*TS0BI$ZDFRH" * 9, b"4006381333931"
    db = Database(empty_database)
    try:
        async with db.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO enrolment_tokens (token_id, secret_sha256, partner_id, store_id, created_us,"
                    " expires_us, used_us, agent_id) VALUES (:e, :s, :p, 'store-1', 1, 2, 1, :a)"
                ),
                {"e": token_id, "s": secrets.token_bytes(32), "p": partner.partner_id, "a": agent_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO agents (agent_id, partner_id, store_id, display_name, public_key, state, token_id,"
                    " enrolled_us) VALUES (:a, :p, 'store-1', 'till', :k, 'active', :e, 1)"
                ),
                {"a": agent_id, "p": partner.partner_id, "k": secrets.token_bytes(32), "e": token_id},
            )
            for sequence, data in ((1, code), (2, ean)):
                await conn.execute(
                    text(
                        "INSERT INTO agent_scans (agent_id, sequence, scanner_id, scan_us, symbology, data,"
                        " scan_sha256, received_us, answered_us, outcome)"
                        " VALUES (:a, :q, 'till-1', 1, '', :d, :h, 1, 1, 'refused')"
                    ),
                    {"a": agent_id, "q": sequence, "d": data, "h": secrets.token_bytes(32)},
                )
        await migrate.upgrade(db)
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT data, data_sha256 FROM agent_scans ORDER BY sequence"))).all()
        assert rows[0][0] is None and bytes(rows[0][1]) == hashlib.sha256(code).digest()
        assert bytes(rows[1][0]) == ean and bytes(rows[1][1]) == hashlib.sha256(ean).digest()
        await migrate.downgrade(db, "0004")
        async with db.read() as conn:
            kept = [bytes(r[0]) for r in await conn.execute(text("SELECT data FROM agent_scans ORDER BY sequence"))]
        assert kept == [b"", ean]
    finally:
        await db.dispose()
