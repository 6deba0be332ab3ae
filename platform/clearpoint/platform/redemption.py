"""Redeeming voucher codes exactly once, previewing them, and rolling redemptions back.

The redemption itself is one short write transaction whose conditional UPDATEs carry every
invariant (uses left, stock left, validity window, store, key not retired), so concurrency is
settled by the database's row locks, never by a Python lock. When the UPDATEs match nothing, a
separate read works out which rule refused it; refusals are off the hot path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clearpoint.formats import voucher_codes as tokens
from clearpoint.platform import campaigns as campaign_rules
from clearpoint.platform import ids
from clearpoint.platform.auth import Principal
from clearpoint.platform.clock import Clock
from clearpoint.platform.db import Database
from clearpoint.platform.errors import Refusal, field_invalid
from clearpoint.platform.group_redeem import GroupFailed, GroupRedeemer
from clearpoint.platform.group_redeem import Item as GroupItem
from clearpoint.platform.keystore import KeyStore
from clearpoint.platform.progress import ProgressHub
from clearpoint.platform.records import Claim, Redemption, Voucher
from clearpoint.platform.schema import (
    campaign_stores,
    campaigns,
    idempotency,
    issuer_keys,
    redemptions,
    vouchers,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    LargeBinary,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

REDEEM_METHOD = "Redeem"
_MESSAGES = {
    "VOUCHER_UNKNOWN": "this voucher was never issued",
    "CAMPAIGN_MISMATCH": "this voucher belongs to another campaign",
    "KEY_RETIRED": "this voucher was signed by a retired issuer key and is no longer valid",
    "VOUCHER_NOT_YET_VALID": "this voucher is not valid yet",
    "VOUCHER_EXPIRED": "this voucher has expired",
    "STORE_NOT_ALLOWED": "this voucher cannot be redeemed at this store",
    "VOUCHER_ALREADY_REDEEMED": "this voucher has already been redeemed",
    "STOCK_EXHAUSTED": "no prizes are left in this campaign",
}


def refusal(reason: str) -> Refusal:
    return Refusal(reason, _MESSAGES[reason])


@dataclass(frozen=True, slots=True)
class CheckedCode:
    """A code whose issuer signature verified: its claims can be trusted."""

    kid: str
    voucher_id: str
    campaign_id: str
    not_before_us: int
    expires_us: int


@dataclass(frozen=True, slots=True)
class RedeemOutcome:
    redemption: Redemption
    claim: Claim
    replayed: bool


@dataclass(frozen=True, slots=True)
class Preview:
    reason: str | None
    message: str
    claim: Claim | None
    valid_from_us: int | None
    valid_until_us: int | None


class _NotApplied(Exception):
    """The conditional UPDATEs matched nothing; roll back and find out why."""


class _Replay(Exception):
    def __init__(self, outcome: RedeemOutcome) -> None:
        self.outcome = outcome


class Redeemer:
    def __init__(self, db: Database, keys: KeyStore, clock: Clock, hub: ProgressHub) -> None:
        self.db = db
        # Group commit on PostgreSQL (see group_redeem); None sends every redemption alone.
        self.group: GroupRedeemer | None = GroupRedeemer(db, clock) if db.is_postgres else None
        self.keys = keys
        self.clock = clock
        self.hub = hub

    # -- the code itself ---------------------------------------------------------------------------

    async def check_code(self, code: object) -> CheckedCode:
        """Parse and verify a code's signature; refuse with a specific reason otherwise."""
        if not isinstance(code, str):
            raise Refusal("CODE_MALFORMED", "a voucher code is text")
        try:
            parsed = tokens.parse_code(code)
        except tokens.TokenError as exc:
            raise Refusal(exc.reason, exc.message) from None
        kid = parsed.kid.hex()
        public = self.keys.cached_public_key(kid)
        if public is None:
            async with self.db.read() as conn:
                found = await self.keys.public_key(conn, kid)
            if found is None:
                raise Refusal("KEY_UNKNOWN", f"this code names issuer key {kid}, which the platform does not know")
            public = found[0]
        self._verify(parsed, public)
        claims = parsed.claims
        return CheckedCode(
            kid=kid,
            voucher_id=ids.from_bytes("vch", claims.voucher_id),
            campaign_id=ids.from_bytes("cmp", claims.campaign_id),
            not_before_us=claims.not_before * 1_000_000,
            expires_us=claims.expires * 1_000_000,
        )

    @staticmethod
    def _verify(parsed: tokens.ParsedCode, public: Ed25519PublicKey) -> None:
        try:
            tokens.verify_signature(parsed, public)
        except tokens.TokenError as exc:
            raise Refusal(exc.reason, exc.message) from None

    @staticmethod
    def check_window(code: CheckedCode, now_us: int) -> None:
        if now_us < code.not_before_us:
            raise refusal("VOUCHER_NOT_YET_VALID")
        if now_us >= code.expires_us:
            raise refusal("VOUCHER_EXPIRED")

    # -- redeem ------------------------------------------------------------------------------------

    async def redeem(
        self,
        principal: Principal,
        request_id: str,
        request_sha256: bytes,
        code: str,
        store_id: str,
        expected_campaign_id: str = "",
    ) -> RedeemOutcome:
        campaign_rules.check_store_id(store_id)
        if expected_campaign_id and not ids.is_id("cmp", expected_campaign_id):
            raise field_invalid("expected_campaign_id", "expected_campaign_id must be a campaign id or empty")
        checked: CheckedCode | None = None
        try:
            checked = await self.check_code(code)
            if expected_campaign_id and expected_campaign_id != checked.campaign_id:
                raise Refusal("CAMPAIGN_MISMATCH", f"this voucher does not belong to campaign {expected_campaign_id}")
            self.check_window(checked, self.clock())
            for _ in range(3):
                try:
                    outcome = await self._apply(principal, request_id, request_sha256, checked, store_id)
                except _NotApplied:
                    try:
                        reason = await self._diagnose(checked, store_id, principal, request_id, request_sha256)
                    except _Replay as replay:
                        return replay.outcome
                    if reason is None:
                        continue  # the state changed between the two reads (a rollback, say): try again
                    raise refusal(reason) from None
                if not outcome.replayed:
                    self.hub.notify(checked.campaign_id)
                return outcome
            raise refusal("VOUCHER_ALREADY_REDEEMED")
        except Refusal as refused:
            return await self._refused(principal, request_id, request_sha256, refused, checked)

    async def _apply(
        self, principal: Principal, request_id: str, digest: bytes, code: CheckedCode, store_id: str
    ) -> RedeemOutcome:
        if self.db.is_postgres:
            if self.group is not None:
                try:
                    return await self._apply_in_group(principal, request_id, digest, code, store_id)
                except GroupFailed:
                    pass  # something in the group was refused or raced: this item goes alone
            return await self._apply_one_statement(principal, request_id, digest, code, store_id)
        try:
            async with self.db.write() as conn:
                await self._raise_replay(conn, principal, request_id, digest)
                return await self._redeem_statements(conn, principal, request_id, digest, code, store_id)
        except _Replay as replay:
            return replay.outcome
        except IntegrityError:
            return await self._answer_of_concurrent_twin(principal, request_id, digest)

    async def _apply_in_group(
        self, principal: Principal, request_id: str, digest: bytes, code: CheckedCode, store_id: str
    ) -> RedeemOutcome:
        """PostgreSQL under load: this redemption shares one statement with those arriving with it."""
        item = GroupItem(
            voucher_id=code.voucher_id,
            campaign_id=code.campaign_id,
            kid=code.kid,
            store_id=store_id,
            partner_id=principal.partner_id,
            request_id=request_id,
            digest=digest,
            redemption_id=ids.new_id("rdm"),
        )
        done = await self.group.redeem(item)  # type: ignore[union-attr]
        if done is None:
            raise _NotApplied  # or answered before: the diagnosis looks for a replay first
        now, row = done
        return _redeemed(
            item.redemption_id,
            principal,
            request_id,
            code,
            store_id,
            now,
            row["name"],
            row["prize_description"],
            row["remaining"],
        )

    async def _apply_one_statement(
        self, principal: Principal, request_id: str, digest: bytes, code: CheckedCode, store_id: str
    ) -> RedeemOutcome:
        """PostgreSQL: the whole redemption as one statement in its own transaction (one round trip)."""
        now = self.clock()
        redemption_id = ids.new_id("rdm")
        params: dict[str, object] = {
            "partner_id": principal.partner_id,
            "request_id": request_id,
            "voucher_id": code.voucher_id,
            "campaign_id": code.campaign_id,
            "kid": code.kid,
            "store_id": store_id,
            "redemption_id": redemption_id,
            "digest": digest,
            "now": now,
        }
        values = {**ONE_STATEMENT_FIXED, **params}
        try:
            async with self.db.autocommit() as conn:
                row = (
                    await conn.exec_driver_sql(ONE_STATEMENT_SQL, tuple(values[k] for k in ONE_STATEMENT_ORDER))
                ).first()
        except IntegrityError as exc:
            if "uses_remaining" in str(exc.orig):
                raise _NotApplied from None  # the voucher matched but the campaign refused: all undone
            row = None  # a concurrent request with this request_id won: answered below as a replay
        if row is None:
            raise _NotApplied  # or answered before: the diagnosis looks for a replay first
        return _redeemed(
            redemption_id, principal, request_id, code, store_id, now, row.name, row.prize_description, row.remaining
        )

    async def _redeem_statements(
        self,
        conn: AsyncConnection,
        principal: Principal,
        request_id: str,
        digest: bytes,
        code: CheckedCode,
        store_id: str,
    ) -> RedeemOutcome:
        now = self.clock()
        voucher = (
            await conn.execute(
                _CLAIM_VOUCHER, {"b_voucher_id": code.voucher_id, "b_campaign_id": code.campaign_id, "b_kid": code.kid}
            )
        ).first()
        if voucher is None:
            raise _NotApplied
        campaign = (
            await conn.execute(_CLAIM_PRIZE, {"b_campaign_id": code.campaign_id, "b_store_id": store_id, "b_now": now})
        ).first()
        if campaign is None:
            raise _NotApplied  # leaves the transaction: the voucher UPDATE is rolled back with it
        outcome = _redeemed(
            ids.new_id("rdm"),
            principal,
            request_id,
            code,
            store_id,
            now,
            campaign.name,
            campaign.prize_description,
            voucher[0],
        )
        r = outcome.redemption
        await conn.execute(
            _RECORD_REDEMPTION,
            {
                "redemption_id": r.redemption_id,
                "voucher_id": r.voucher_id,
                "campaign_id": r.campaign_id,
                "store_id": r.store_id,
                "redeemed_by": r.redeemed_by,
                "request_id": r.request_id,
                "request_sha256": digest,
                "redeemed_us": r.redeemed_us,
                "uses_remaining": outcome.claim.uses_remaining,
            },
        )
        return outcome

    async def _answer_of_concurrent_twin(self, principal: Principal, request_id: str, digest: bytes) -> RedeemOutcome:
        """A concurrent request with the same request_id committed first: its answer is ours."""
        try:
            async with self.db.read() as conn:
                await self._raise_replay(conn, principal, request_id, digest)
        except _Replay as replay:
            return replay.outcome
        raise AssertionError("a request_id conflict with no earlier answer on record")

    async def _raise_replay(self, conn: AsyncConnection, principal: Principal, request_id: str, digest: bytes) -> None:
        """If this request_id was answered before, raise its first answer (as _Replay or the Refusal)."""
        keys = {"b_principal": principal.partner_id, "b_request_id": request_id}
        row = (await conn.execute(_REPLAYED_REDEMPTION, keys)).first()
        if row is not None:
            if bytes(row.request_sha256) != digest:
                raise Refusal("REQUEST_ID_REUSED", "this request_id was already used with different fields")
            claim = Claim(row.campaign_id, row.name, row.prize_description, row.voucher_id, row.uses_remaining)
            raise _Replay(RedeemOutcome(_redemption(row), claim, replayed=True))
        stored = (await conn.execute(_REPLAYED_REFUSAL, keys)).first()
        if stored is not None:
            if bytes(stored.request_sha256) != digest:
                raise Refusal("REQUEST_ID_REUSED", "this request_id was already used with different fields")
            from google.rpc import status_pb2

            raise Refusal.from_status(status_pb2.Status.FromString(bytes(stored.response)))

    async def _diagnose(
        self, code: CheckedCode, store_id: str, principal: Principal, request_id: str, digest: bytes
    ) -> str | None:
        """Which rule refused the redemption, read after the fact; None if nothing does any more.

        A request answered before is no refusal: its first answer is raised (as _Replay or Refusal)."""
        now = self.clock()
        async with self.db.read() as conn:
            await self._raise_replay(conn, principal, request_id, digest)
            voucher = (await conn.execute(select(vouchers).where(vouchers.c.voucher_id == code.voucher_id))).first()
            if voucher is None or voucher.kid != code.kid:
                return "VOUCHER_UNKNOWN"
            if voucher.campaign_id != code.campaign_id:
                return "CAMPAIGN_MISMATCH"
            state = await conn.scalar(select(issuer_keys.c.state).where(issuer_keys.c.kid == code.kid))
            if state == "retired":
                return "KEY_RETIRED"
            campaign = (await conn.execute(select(campaigns).where(campaigns.c.campaign_id == code.campaign_id))).one()
            reason = await _campaign_reason(conn, campaign, store_id, now)
            if reason:
                return reason
            if voucher.uses_made >= voucher.uses_allowed:
                return "VOUCHER_ALREADY_REDEEMED"
            if campaign.redeemed - campaign.rolled_back >= campaign.total_stock:
                return "STOCK_EXHAUSTED"
        return None

    async def _refused(
        self,
        principal: Principal,
        request_id: str,
        digest: bytes,
        refused: Refusal,
        checked: CheckedCode | None,
    ) -> RedeemOutcome:
        """Keep a refusal as the request's answer (and count it) unless the request was answered before."""
        if refused.reason in ("REQUEST_ID_REUSED", "FIELD_INVALID"):
            raise refused
        try:
            async with self.db.write() as conn:
                if self.db.is_postgres:
                    # A refusal changed nothing: its record need not wait for the WAL flush.
                    await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                await self._raise_replay(conn, principal, request_id, digest)
                now = self.clock()
                await conn.execute(
                    insert(idempotency).values(
                        principal_id=principal.partner_id,
                        method=REDEEM_METHOD,
                        request_id=request_id,
                        request_sha256=digest,
                        status_code=refused.code.value[0],
                        response=refused.to_status().SerializeToString(),
                        created_us=now,
                    )
                )
                if checked is not None and refused.reason != "VOUCHER_UNKNOWN":
                    # Only an authentic code's campaign is credited; a forged one names what it likes.
                    known = await conn.scalar(
                        select(campaigns.c.campaign_id).where(campaigns.c.campaign_id == checked.campaign_id)
                    )
                    if known:
                        await campaign_rules.count_refusal(conn, checked.campaign_id, refused.reason)
        except _Replay as replay:
            return replay.outcome
        except IntegrityError:
            return await self._answer_of_concurrent_twin(principal, request_id, digest)
        if checked is not None:
            self.hub.notify(checked.campaign_id)
        log.info("redeem refused: %s (request %s by %s)", refused.reason, request_id, principal.partner_id)
        raise refused

    # -- preview -----------------------------------------------------------------------------------

    async def validate(self, code: str, store_id: str) -> Preview:
        if store_id:
            campaign_rules.check_store_id(store_id)
        try:
            checked = await self.check_code(code)
        except Refusal as refused:
            return Preview(refused.reason, refused.message, None, None, None)
        now = self.clock()
        async with self.db.read() as conn:
            voucher = (await conn.execute(select(vouchers).where(vouchers.c.voucher_id == checked.voucher_id))).first()
            if voucher is None or voucher.kid != checked.kid:
                return Preview("VOUCHER_UNKNOWN", _MESSAGES["VOUCHER_UNKNOWN"], None, None, None)
            if voucher.campaign_id != checked.campaign_id:
                return Preview("CAMPAIGN_MISMATCH", _MESSAGES["CAMPAIGN_MISMATCH"], None, None, None)
            campaign = (
                await conn.execute(select(campaigns).where(campaigns.c.campaign_id == checked.campaign_id))
            ).one()
            claim = Claim(
                campaign.campaign_id,
                campaign.name,
                campaign.prize_description,
                voucher.voucher_id,
                voucher.uses_allowed - voucher.uses_made,
            )
            state = await conn.scalar(select(issuer_keys.c.state).where(issuer_keys.c.kid == checked.kid))
            reason = "KEY_RETIRED" if state == "retired" else None
            reason = reason or await _campaign_reason(conn, campaign, store_id or None, now)
            if reason is None and voucher.uses_made >= voucher.uses_allowed:
                reason = "VOUCHER_ALREADY_REDEEMED"
            if reason is None and campaign.redeemed - campaign.rolled_back >= campaign.total_stock:
                reason = "STOCK_EXHAUSTED"
        message = _MESSAGES[reason] if reason else f"redeemable: {campaign.prize_description}"
        return Preview(reason, message, claim, campaign.valid_from_us, campaign.valid_until_us)

    # -- rollback ----------------------------------------------------------------------------------

    async def rollback(
        self, conn: AsyncConnection, principal: Principal, redemption_id: str, reason: str
    ) -> Redemption:
        """Undo a redemption inside the caller's write transaction (the caller keeps it idempotent)."""
        if not ids.is_id("rdm", redemption_id):
            raise field_invalid("redemption_id", "redemption_id must look like rdm_ followed by 16 hex digits")
        if not 1 <= len(reason) <= 500:
            raise field_invalid("reason", "reason must be 1 to 500 characters")
        row = (
            await conn.execute(
                select(redemptions, campaigns.c.partner_id, campaigns.c.rollback_window_us)
                .join(campaigns, campaigns.c.campaign_id == redemptions.c.campaign_id)
                .where(redemptions.c.redemption_id == redemption_id)
            )
        ).first()
        visible = row is not None and (
            principal.is_operator or principal.partner_id in (row.redeemed_by, row.partner_id)
        )
        if not visible:
            raise Refusal("REDEMPTION_UNKNOWN", f"no redemption {redemption_id}")
        if row.rolled_back_us is not None:
            raise Refusal("ALREADY_ROLLED_BACK", f"redemption {redemption_id} was already rolled back")
        now = self.clock()
        if now - row.redeemed_us > row.rollback_window_us:
            raise Refusal(
                "ROLLBACK_WINDOW_CLOSED",
                f"redemption {redemption_id} is older than the campaign's rollback window "
                f"({row.rollback_window_us // 1_000_000} s)",
            )
        done = (
            await conn.execute(
                update(redemptions)
                .where(redemptions.c.redemption_id == redemption_id, redemptions.c.rolled_back_us.is_(None))
                .values(rolled_back_us=now, rollback_reason=reason)
                .returning(*redemptions.c)
            )
        ).first()
        if done is None:
            raise Refusal("ALREADY_ROLLED_BACK", f"redemption {redemption_id} was already rolled back")
        await conn.execute(
            update(vouchers).where(vouchers.c.voucher_id == row.voucher_id).values(uses_made=vouchers.c.uses_made - 1)
        )
        await conn.execute(
            update(campaigns)
            .where(campaigns.c.campaign_id == row.campaign_id)
            .values(rolled_back=campaigns.c.rolled_back + 1)
        )
        return _redemption(done)

    # -- reads -------------------------------------------------------------------------------------

    async def get_voucher(self, principal: Principal, voucher_id: str = "", code: str = "") -> Voucher:
        if code:
            voucher_id = (await self.check_code(code)).voucher_id
        elif not ids.is_id("vch", voucher_id):
            raise field_invalid("voucher_id", "give a voucher_id (vch_ followed by 16 hex digits) or a code")
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(vouchers, campaigns.c.partner_id)
                    .join(campaigns, campaigns.c.campaign_id == vouchers.c.campaign_id)
                    .where(vouchers.c.voucher_id == voucher_id)
                )
            ).first()
        if row is None:
            raise refusal("VOUCHER_UNKNOWN")
        if not principal.is_operator and row.partner_id != principal.partner_id:
            raise Refusal("PERMISSION_DENIED", "this voucher belongs to another partner's campaign")
        return Voucher(row.voucher_id, row.campaign_id, row.kid, row.uses_allowed, row.uses_made, row.issued_us)

    async def list_redemptions(
        self, conn: AsyncConnection, campaign_id: str, limit: int, after: tuple[int, str] | None
    ) -> list[Redemption]:
        query = (
            select(redemptions)
            .where(redemptions.c.campaign_id == campaign_id)
            .order_by(redemptions.c.redeemed_us.desc(), redemptions.c.redemption_id.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                or_(
                    redemptions.c.redeemed_us < after[0],
                    and_(redemptions.c.redeemed_us == after[0], redemptions.c.redemption_id < after[1]),
                )
            )
        return [_redemption(r) for r in await conn.execute(query)]


def voucher_claimable(voucher_id: Any, campaign_id: Any, kid: Any) -> list[ColumnElement[bool]]:
    """A use of this voucher may be claimed: it is the one the code names, has a use left, and its key
    is not retired. The one statement of the rules, shared by both ways of redeeming."""
    return [
        vouchers.c.voucher_id == voucher_id,
        vouchers.c.campaign_id == campaign_id,
        vouchers.c.kid == kid,
        vouchers.c.uses_made < vouchers.c.uses_allowed,
        exists().where(issuer_keys.c.kid == vouchers.c.kid, issuer_keys.c.state != "retired"),
    ]


def campaign_claimable(campaign_id: Any, store_id: Any, now: Any) -> list[ColumnElement[bool]]:
    """A prize of this campaign may be claimed: stock left, inside the window, at an allowed store."""
    return [
        campaigns.c.campaign_id == campaign_id,
        campaigns.c.redeemed - campaigns.c.rolled_back < campaigns.c.total_stock,
        campaigns.c.valid_from_us <= now,
        campaigns.c.valid_until_us > now,
        or_(
            campaigns.c.all_stores == 1,
            exists().where(
                campaign_stores.c.campaign_id == campaigns.c.campaign_id, campaign_stores.c.store_id == store_id
            ),
        ),
    ]


# The SQLite redemption's statements, built once with bind parameters (building and keying them
# per call cost more CPU than SQLite spent running them).
_CLAIM_VOUCHER = (
    update(vouchers)
    .where(*voucher_claimable(bindparam("b_voucher_id"), bindparam("b_campaign_id"), bindparam("b_kid")))
    .values(uses_made=vouchers.c.uses_made + 1)
    .returning(vouchers.c.uses_allowed - vouchers.c.uses_made)
)
_CLAIM_PRIZE = (
    update(campaigns)
    .where(*campaign_claimable(bindparam("b_campaign_id"), bindparam("b_store_id"), bindparam("b_now")))
    .values(redeemed=campaigns.c.redeemed + 1)
    .returning(campaigns.c.name, campaigns.c.prize_description)
)
_RECORD_REDEMPTION = insert(redemptions)
_REPLAYED_REDEMPTION = (
    select(redemptions, campaigns.c.name, campaigns.c.prize_description)
    .join(campaigns, campaigns.c.campaign_id == redemptions.c.campaign_id)
    .where(redemptions.c.redeemed_by == bindparam("b_principal"), redemptions.c.request_id == bindparam("b_request_id"))
)
_REPLAYED_REFUSAL = select(idempotency.c.request_sha256, idempotency.c.response).where(
    idempotency.c.principal_id == bindparam("b_principal"),
    idempotency.c.method == REDEEM_METHOD,
    idempotency.c.request_id == bindparam("b_request_id"),
)


def _one_statement_redeem() -> Select:
    """The redemption as one PostgreSQL statement of data-modifying CTEs, built once with bind parameters.

    v claims a use of the voucher (unless this request was answered before); c claims a prize from
    the campaign only if v did; r records the redemption. If v matched but c did not, r inserts a
    NULL uses_remaining, the NOT NULL constraint fails the statement, and v is undone with it.
    Built once so that each call only binds values: building and keying it per call cost more CPU
    than the database spent on it.
    """
    p = {
        name: bindparam(name, type_=kind)
        for name, kind in (
            ("partner_id", String),
            ("request_id", String),
            ("voucher_id", String),
            ("campaign_id", String),
            ("kid", String),
            ("store_id", String),
            ("redemption_id", String),
            ("digest", LargeBinary),
            ("now", BigInteger),
        )
    }
    answered = union_all(
        select(literal_column("1")).where(
            redemptions.c.redeemed_by == p["partner_id"], redemptions.c.request_id == p["request_id"]
        ),
        select(literal_column("1")).where(
            idempotency.c.principal_id == p["partner_id"],
            idempotency.c.method == REDEEM_METHOD,
            idempotency.c.request_id == p["request_id"],
        ),
    )
    v = (
        update(vouchers)
        .where(*voucher_claimable(p["voucher_id"], p["campaign_id"], p["kid"]), ~exists(answered))
        .values(uses_made=vouchers.c.uses_made + 1)
        .returning((vouchers.c.uses_allowed - vouchers.c.uses_made).label("remaining"))
        .cte("v")
    )
    c = (
        update(campaigns)
        .where(*campaign_claimable(p["campaign_id"], p["store_id"], p["now"]), exists(select(v.c.remaining)))
        .values(redeemed=campaigns.c.redeemed + 1)
        .returning(campaigns.c.name, campaigns.c.prize_description)
        .cte("c")
    )
    columns = ("redemption_id", "voucher_id", "campaign_id", "store_id", "partner_id", "request_id", "digest", "now")
    values = select(
        *(cast(p[name], p[name].type).label(f"v_{name}") for name in columns),
        case((exists(select(c.c.name)), v.c.remaining), else_=null()).label("v_remaining"),
    ).select_from(v)
    r = (
        insert(redemptions)
        .from_select(
            [
                "redemption_id",
                "voucher_id",
                "campaign_id",
                "store_id",
                "redeemed_by",
                "request_id",
                "request_sha256",
                "redeemed_us",
                "uses_remaining",
            ],
            values,
        )
        .returning(redemptions.c.redemption_id)
        .cte("r")
    )
    return select(v.c.remaining, c.c.name, c.c.prize_description, r.c.redemption_id).select_from(
        v.join(c, true()).join(r, true())
    )


ONE_STATEMENT_REDEEM = _one_statement_redeem()
# Compiled once for asyncpg: each call then sends the same SQL text with its values in order.
_COMPILED = ONE_STATEMENT_REDEEM.compile(dialect=asyncpg_dialect())
ONE_STATEMENT_SQL = str(_COMPILED)
ONE_STATEMENT_ORDER = tuple(_COMPILED.positiontup or ())
ONE_STATEMENT_FIXED = {k: v for k, v in _COMPILED.params.items() if v is not None}


async def _campaign_reason(conn: AsyncConnection, campaign, store_id: str | None, now: int) -> str | None:  # type: ignore[no-untyped-def]
    if now < campaign.valid_from_us:
        return "VOUCHER_NOT_YET_VALID"
    if now >= campaign.valid_until_us:
        return "VOUCHER_EXPIRED"
    if store_id is not None and not campaign.all_stores:
        allowed = await conn.scalar(
            select(campaign_stores.c.store_id).where(
                campaign_stores.c.campaign_id == campaign.campaign_id, campaign_stores.c.store_id == store_id
            )
        )
        if allowed is None:
            return "STORE_NOT_ALLOWED"
    return None


def _redeemed(
    redemption_id: str,
    principal: Principal,
    request_id: str,
    code: CheckedCode,
    store_id: str,
    now: int,
    campaign_name: str,
    prize_description: str,
    uses_remaining: int,
) -> RedeemOutcome:
    """The answer to a redemption just made."""
    redemption = Redemption(
        redemption_id=redemption_id,
        voucher_id=code.voucher_id,
        campaign_id=code.campaign_id,
        store_id=store_id,
        redeemed_by=principal.partner_id,
        request_id=request_id,
        redeemed_us=now,
    )
    claim = Claim(code.campaign_id, campaign_name, prize_description, code.voucher_id, uses_remaining)
    return RedeemOutcome(redemption, claim, replayed=False)


def _redemption(row) -> Redemption:  # type: ignore[no-untyped-def]
    return Redemption(
        redemption_id=row.redemption_id,
        voucher_id=row.voucher_id,
        campaign_id=row.campaign_id,
        store_id=row.store_id,
        redeemed_by=row.redeemed_by,
        request_id=row.request_id,
        redeemed_us=row.redeemed_us,
        rolled_back_us=row.rolled_back_us,
        rollback_reason=row.rollback_reason,
    )
