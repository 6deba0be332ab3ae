"""Conversions between domain records and clearpoint.v1 messages."""

from __future__ import annotations

from clearpoint.formats.scan_signatures import ScanFields
from clearpoint.platform.agents import Agent
from clearpoint.platform.clock import to_duration, to_timestamp
from clearpoint.platform.ingest import ScanAnswer
from clearpoint.platform.keystore import IssuerKeyInfo
from clearpoint.platform.records import Campaign, Claim, Progress, Redemption, Voucher
from clearpoint.v1 import agents_pb2, campaigns_pb2, errors_pb2, issuer_keys_pb2, partners_pb2, redemption_pb2

KEY_STATES = {
    "active": issuer_keys_pb2.ISSUER_KEY_STATE_ACTIVE,
    "standby": issuer_keys_pb2.ISSUER_KEY_STATE_STANDBY,
    "rotated": issuer_keys_pb2.ISSUER_KEY_STATE_ROTATED,
    "retired": issuer_keys_pb2.ISSUER_KEY_STATE_RETIRED,
}
ROLES = {"partner": partners_pb2.ROLE_PARTNER, "operator": partners_pb2.ROLE_OPERATOR}


def reason_enum(reason: str | None) -> int:
    return errors_pb2.Reason.Value(f"REASON_{reason}") if reason else errors_pb2.REASON_UNSPECIFIED


def issuer_key(info: IssuerKeyInfo) -> issuer_keys_pb2.IssuerKey:
    return issuer_keys_pb2.IssuerKey(
        key_id=info.kid,
        state=KEY_STATES[info.state],
        public_key=info.public_key,
        create_time=to_timestamp(info.created_us),
        retire_time=to_timestamp(info.retired_us),
    )


def partner(partner_id: str, name: str, role: str, created_us: int) -> partners_pb2.Partner:
    return partners_pb2.Partner(
        partner_id=partner_id, name=name, role=ROLES[role], create_time=to_timestamp(created_us)
    )


def campaign(c: Campaign) -> campaigns_pb2.Campaign:
    s = c.spec
    return campaigns_pb2.Campaign(
        campaign_id=c.campaign_id,
        partner_id=c.partner_id,
        name=s.name,
        prize_description=s.prize_description,
        valid_from=to_timestamp(s.valid_from_us),
        valid_until=to_timestamp(s.valid_until_us),
        store_ids=list(s.store_ids),
        total_stock=s.total_stock,
        uses_per_voucher=s.uses_per_voucher,
        rollback_window=to_duration(s.rollback_window_us),
        create_time=to_timestamp(c.created_us),
    )


def progress(p: Progress) -> campaigns_pb2.CampaignProgress:
    return campaigns_pb2.CampaignProgress(
        campaign_id=p.campaign_id,
        issued=p.issued,
        redeemed=p.redeemed,
        rolled_back=p.rolled_back,
        remaining_stock=p.remaining_stock,
        refused=[campaigns_pb2.RefusalCount(reason=reason_enum(r), count=n) for r, n in sorted(p.refused.items())],
        as_of=to_timestamp(p.as_of_us),
    )


def claim(c: Claim) -> redemption_pb2.PrizeClaim:
    return redemption_pb2.PrizeClaim(
        campaign_id=c.campaign_id,
        campaign_name=c.campaign_name,
        prize_description=c.prize_description,
        voucher_id=c.voucher_id,
        uses_remaining=c.uses_remaining,
    )


def redemption(r: Redemption) -> redemption_pb2.Redemption:
    return redemption_pb2.Redemption(
        redemption_id=r.redemption_id,
        voucher_id=r.voucher_id,
        campaign_id=r.campaign_id,
        store_id=r.store_id,
        redeemed_by=r.redeemed_by,
        redeem_time=to_timestamp(r.redeemed_us),
        state=redemption_pb2.REDEMPTION_STATE_ROLLED_BACK
        if r.rolled_back_us is not None
        else redemption_pb2.REDEMPTION_STATE_REDEEMED,
        rollback_time=to_timestamp(r.rolled_back_us),
        rollback_reason=r.rollback_reason or "",
        request_id=r.request_id,
    )


def voucher(v: Voucher) -> redemption_pb2.Voucher:
    return redemption_pb2.Voucher(
        voucher_id=v.voucher_id,
        campaign_id=v.campaign_id,
        key_id=v.kid,
        uses_allowed=v.uses_allowed,
        uses_made=v.uses_made,
        issue_time=to_timestamp(v.issued_us),
    )


AGENT_STATES = {"active": agents_pb2.AGENT_STATE_ACTIVE, "revoked": agents_pb2.AGENT_STATE_REVOKED}
SCAN_OUTCOMES = {
    "accepted": agents_pb2.SCAN_OUTCOME_ACCEPTED,
    "refused": agents_pb2.SCAN_OUTCOME_REFUSED,
    "not_a_voucher": agents_pb2.SCAN_OUTCOME_NOT_A_VOUCHER,
    "rejected": agents_pb2.SCAN_OUTCOME_REJECTED,
}


def agent(a: Agent) -> agents_pb2.Agent:
    return agents_pb2.Agent(
        agent_id=a.agent_id,
        partner_id=a.partner_id,
        store_id=a.store_id,
        display_name=a.display_name,
        public_key=a.public_key,
        state=AGENT_STATES[a.state],
        enrol_time=to_timestamp(a.enrolled_us),
        revoke_time=to_timestamp(a.revoked_us),
    )


def scan_fields(scan: agents_pb2.SignedScan) -> ScanFields:
    """The signed fields of a scan; a scan_time finer than a microsecond cannot be signed, so it is -1."""
    t = scan.scan_time
    time_us = t.seconds * 1_000_000 + t.nanos // 1000 if t.nanos % 1000 == 0 else -1
    return ScanFields(scan.agent_id, scan.scanner_id, scan.sequence, time_us, scan.symbology, scan.data)


def scan_answer(a: ScanAnswer) -> agents_pb2.ScanAnswer:
    return agents_pb2.ScanAnswer(
        sequence=a.sequence,
        outcome=SCAN_OUTCOMES[a.outcome],
        reason=reason_enum(a.reason),
        message=a.message,
        claim=claim(a.claim) if a.claim else None,
        redemption_id=a.redemption_id or "",
        replayed=a.replayed,
        answer_time=to_timestamp(a.answered_us),
    )
