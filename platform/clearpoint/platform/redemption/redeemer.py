"""Redeeming voucher codes exactly once, and previewing them.

A redemption is a request with a first answer (core.once). Its code is checked first; then the
shared batcher (core.batching) sends it, with whatever arrives at the same time, to the claim
statement (statements.py), which carries every rule, so the database settles all races. A request
that claimed nothing was either answered before (its first answer is replayed) or refused by a
rule, which `rules.diagnosis` names; the refusal is then kept as the request's first answer and
counted in the campaign's progress.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clearpoint.platform.campaigns.progress import count_refusal
from clearpoint.platform.campaigns.records import Progress
from clearpoint.platform.campaigns.rules import check_store_id
from clearpoint.platform.campaigns.tables import campaigns
from clearpoint.platform.core import ids, once
from clearpoint.platform.core.batching import Batcher
from clearpoint.platform.core.clock import Clock, iso
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.errors import Reason, Refusal, field_invalid
from clearpoint.platform.core.fanout import Fanout
from clearpoint.platform.core.once import FirstAnswer, RequestKey
from clearpoint.platform.core.principals import Principal
from clearpoint.platform.keys.keystore import KeyStore
from clearpoint.platform.redemption.codes import MESSAGES, CheckedCode, CodeChecker, refusal
from clearpoint.platform.redemption.records import Preview, PrizeClaim, RedeemOutcome, Redemption
from clearpoint.platform.redemption.rules import Terms, diagnosis
from clearpoint.platform.redemption.statements import Attachment, Attempt, Claimed, Claimer
from clearpoint.platform.redemption.tables import redemptions
from sqlalchemy import BigInteger, String, bindparam, literal, select

log = logging.getLogger(__name__)

REDEEM = "Redeem"
# Refusals that are not a request's answer: the request was malformed, or is not this one.
_NOT_KEPT = frozenset({Reason.FIELD_INVALID, Reason.REQUEST_ID_REUSED})


@dataclass(frozen=True, slots=True)
class RedeemRequest:
    principal: Principal  # the partner the redemption is made for
    key: RequestKey  # the request's first-answer key
    fingerprint: bytes
    request_id: str  # as recorded on the redemption
    code: str
    store_id: str
    expected_campaign_id: str = ""
    attached: Mapping[str, Any] | None = None  # the attachment's row (a scan), if the redeemer has one


_TERMS = Terms(
    bindparam("voucher_id", type_=String()),
    bindparam("campaign_id", type_=String()),
    bindparam("kid", type_=String()),
    bindparam("store_id", type_=String()),
    bindparam("now", type_=BigInteger()),
    literal(1),
)
_DIAGNOSIS = diagnosis(_TERMS)
_PREVIEW = diagnosis(_TERMS, with_store=False)
_OUTCOME = (
    select(redemptions, campaigns.c.name, campaigns.c.prize_description)
    .join(campaigns, campaigns.c.campaign_id == redemptions.c.campaign_id)
    .where(redemptions.c.redemption_id == bindparam("redemption_id"))
)


def redemption_of(row: Any) -> Redemption:
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


class Redeemer:
    def __init__(
        self,
        db: Database,
        keys: KeyStore,
        clock: Clock,
        progress: Fanout[Progress],
        attachment: Attachment | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.progress = progress
        self.codes = CodeChecker(db, keys)
        self.attachment = attachment
        # One batcher for every redemption, unary or scanned: a voucher is never in two batches at once.
        # One batch at the database at a time: what arrives meanwhile goes in the next. With more in
        # flight the batches only got smaller, and queued behind each other on the campaign's row lock.
        self.claims: Batcher[Attempt, Claimed | None] = Batcher(
            Claimer(db, clock, attachment),
            key=lambda attempt: attempt.code.voucher_id,
            max_batch=64,
            name="redemptions",
        )

    async def redeem(self, request: RedeemRequest) -> RedeemOutcome:
        check_store_id(request.store_id)
        expected = request.expected_campaign_id
        if expected and not ids.is_id("cmp", expected):
            raise field_invalid("expected_campaign_id", "expected_campaign_id must be a campaign id or empty")
        checked: CheckedCode | None = None
        try:
            checked = await self.codes.check(request.code)
            if expected and expected != checked.campaign_id:
                raise Refusal(Reason.CAMPAIGN_MISMATCH, f"this voucher does not belong to campaign {expected}")
            checked.check_window(self.clock())
            return await self._claim(request, checked)
        except Refusal as refused:
            return await self._refused(request, refused, checked)

    async def _claim(self, request: RedeemRequest, checked: CheckedCode) -> RedeemOutcome:
        for _ in range(3):
            attempt = Attempt(
                key=request.key,
                fingerprint=request.fingerprint,
                redeemed_by=request.principal.partner_id,
                request_id=request.request_id,
                code=checked,
                store_id=request.store_id,
                redemption_id=ids.new_id("rdm"),
                attached=request.attached,
            )
            claimed = await self.claims.submit(attempt)
            if claimed is not None:
                self.progress.changed(checked.campaign_id)
                return _outcome(attempt, claimed)
            async with self.db.read() as conn:
                stored = await once.lookup(conn, request.key)
                if stored is not None:
                    return await self._replay(conn, stored, request.fingerprint)
                reason = await self._why_not(conn, request, checked)
                if reason is Reason.VOUCHER_ALREADY_REDEEMED:
                    raise await _used_up(conn, checked.voucher_id)
            if reason is not None:
                raise refusal(reason) if reason in MESSAGES else Refusal(reason, "this request cannot be redeemed")
            # Nothing refuses it any more (a rollback came in between, say): try again.
        raise refusal(Reason.VOUCHER_ALREADY_REDEEMED)

    async def _why_not(self, conn: Any, request: RedeemRequest, checked: CheckedCode) -> Reason | None:
        """Which rule refused a request that claimed nothing: the attachment's condition, then `rules`."""
        a = self.attachment
        if a is not None and request.attached is not None and not await self._condition_met(conn, a, request.attached):
            return a.unmet
        found = (await conn.execute(_DIAGNOSIS, _terms(checked, request.store_id, self.clock()))).one()
        return Reason(found.reason) if found.reason is not None else None

    async def _replay(self, conn: Any, stored: FirstAnswer, fingerprint: bytes) -> RedeemOutcome:
        redemption_id = stored.replay(fingerprint).decode()
        return await self.outcome_of(conn, redemption_id)

    async def outcome_of(self, conn: Any, redemption_id: str) -> RedeemOutcome:
        """A redemption as its first answer said it (a replay's answer)."""
        row = (await conn.execute(_OUTCOME, {"redemption_id": redemption_id})).one()
        claim = PrizeClaim(row.campaign_id, row.name, row.prize_description, row.voucher_id, row.uses_remaining)
        return RedeemOutcome(redemption_of(row), claim, replayed=True)

    async def refuse(self, request: RedeemRequest, refused: Refusal) -> RedeemOutcome:
        """Answer a request with a refusal found before any claim (a scan that is not a voucher, say)."""
        return await self._refused(request, refused, None)

    async def _refused(self, request: RedeemRequest, refused: Refusal, checked: CheckedCode | None) -> RedeemOutcome:
        """Keep a refusal as the request's first answer (and count it in the campaign's progress), unless
        the request was answered before: then that answer is given again."""
        for _ in range(3):
            try:
                return await self._keep(request, refused, checked)
            except _Twin:
                continue  # a concurrent twin of this request answered first: replay its answer
        raise refused

    async def _keep(self, request: RedeemRequest, refused: Refusal, checked: CheckedCode | None) -> RedeemOutcome:
        a = self.attachment
        if refused.reason in _NOT_KEPT or (a is not None and refused.reason is a.unmet):
            raise refused
        now = self.clock()
        async with self.db.write() as conn:
            if self.db.is_postgres:
                # A refusal changed nothing: its record need not wait for the WAL flush.
                await conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            stored = await once.lookup(conn, request.key)
            if stored is not None:
                return await self._replay(conn, stored, request.fingerprint)
            if a is not None and request.attached is not None:
                if not await self._condition_met(conn, a, request.attached):
                    raise Refusal(a.unmet, "this request may not be redeemed")
            # The first answer before anything else: a twin that stored its own first is told apart here.
            if not await once.record(self.db, conn, request.key, request.fingerprint, now, refusal=refused):
                raise _Twin
            if a is not None and request.attached is not None:
                row = {**a.refused(request.attached, refused.reason), a.time_column: now}
                await conn.execute(a.table.insert().values(row))
            if checked is not None and refused.reason is not Reason.VOUCHER_UNKNOWN:
                # Only an authentic code's campaign is credited; a forged one names what it likes.
                known = await conn.scalar(
                    select(campaigns.c.campaign_id).where(campaigns.c.campaign_id == checked.campaign_id)
                )
                if known:
                    await count_refusal(self.db, conn, checked.campaign_id, refused.reason)
        if checked is not None:
            self.progress.changed(checked.campaign_id)
        log.info("redeem refused: %s (%s by %s)", refused.reason, request.request_id, request.principal.partner_id)
        refused.answered_us = now
        raise refused

    @staticmethod
    async def _condition_met(conn: Any, attachment: Attachment, attached: Mapping[str, Any]) -> bool:
        return bool(await conn.scalar(select(attachment.condition({k: literal(v) for k, v in attached.items()}))))

    async def validate(self, code: str, store_id: str) -> Preview:
        if store_id:
            check_store_id(store_id)
        try:
            checked = await self.codes.check(code)
        except Refusal as refused:
            return Preview(refused.reason, refused.message, None, None, None)
        now = self.clock()
        async with self.db.read() as conn:
            found = (await conn.execute(_DIAGNOSIS if store_id else _PREVIEW, _terms(checked, store_id, now))).one()
        reason = Reason(found.reason) if found.reason is not None else None
        if reason in (Reason.VOUCHER_UNKNOWN, Reason.CAMPAIGN_MISMATCH):
            return Preview(reason, MESSAGES[reason], None, None, None)
        try:
            checked.check_window(now)  # the code's own times come first, as Redeem checks them
        except Refusal as outside:
            reason = outside.reason
        claim = PrizeClaim(
            checked.campaign_id, found.name, found.prize_description, checked.voucher_id, found.uses_left
        )
        message = MESSAGES[reason] if reason else f"redeemable: {found.prize_description}"
        return Preview(reason, message, claim, found.valid_from_us, found.valid_until_us)


_LAST_USE = (
    select(redemptions.c.store_id, redemptions.c.redeemed_us)
    .where(redemptions.c.voucher_id == bindparam("voucher_id"), redemptions.c.rolled_back_us.is_(None))
    .order_by(redemptions.c.redeemed_us.desc())
    .limit(1)
)


async def _used_up(conn: Any, voucher_id: str) -> Refusal:
    """VOUCHER_ALREADY_REDEEMED with where and when its last use was made, so the store that lost
    can tell the customer (metadata `store_id` and `redeemed_at`, RFC 3339 UTC; also in the message)."""
    last = (await conn.execute(_LAST_USE, {"voucher_id": voucher_id})).first()
    if last is None:
        return refusal(Reason.VOUCHER_ALREADY_REDEEMED)
    when = iso(last.redeemed_us)  # 2026-12-02T13:20:05+00:00
    return Refusal(
        Reason.VOUCHER_ALREADY_REDEEMED,
        f"{MESSAGES[Reason.VOUCHER_ALREADY_REDEEMED]}: at {last.store_id}, {when[:10]} {when[11:19]} UTC",
        store_id=last.store_id,
        redeemed_at=when.replace("+00:00", "Z"),
    )


def _terms(checked: CheckedCode, store_id: str, now: int) -> dict[str, Any]:
    return {
        "voucher_id": checked.voucher_id,
        "campaign_id": checked.campaign_id,
        "kid": checked.kid,
        "store_id": store_id,
        "now": now,
    }


def _outcome(attempt: Attempt, claimed: Claimed) -> RedeemOutcome:
    """The answer to a redemption just made."""
    code = attempt.code
    redemption = Redemption(
        redemption_id=attempt.redemption_id,
        voucher_id=code.voucher_id,
        campaign_id=code.campaign_id,
        store_id=attempt.store_id,
        redeemed_by=attempt.redeemed_by,
        request_id=attempt.request_id,
        redeemed_us=claimed.redeemed_us,
    )
    claim = PrizeClaim(
        code.campaign_id, claimed.campaign_name, claimed.prize_description, code.voucher_id, claimed.uses_remaining
    )
    return RedeemOutcome(redemption, claim, replayed=False)


class _Twin(Exception):
    """A concurrent request with the same key stored its first answer first."""
