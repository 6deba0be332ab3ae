"""Campaigns, their progress and specs as clearpoint.v1 messages."""

from __future__ import annotations

from clearpoint.platform.campaigns.records import Campaign, CampaignSpec, Progress
from clearpoint.platform.campaigns.rules import DEFAULT_ROLLBACK_WINDOW_US
from clearpoint.platform.edge import from_timestamp, reason_enum, to_duration, to_timestamp
from clearpoint.v1 import campaigns_pb2


def spec(request: campaigns_pb2.CreateCampaignRequest) -> CampaignSpec:
    return CampaignSpec(
        name=request.name,
        prize_description=request.prize_description,
        valid_from_us=from_timestamp(request.valid_from) if request.HasField("valid_from") else 0,
        valid_until_us=from_timestamp(request.valid_until) if request.HasField("valid_until") else 0,
        store_ids=tuple(request.store_ids),
        total_stock=request.total_stock,
        uses_per_voucher=request.uses_per_voucher,
        rollback_window_us=request.rollback_window.ToMicroseconds()
        if request.HasField("rollback_window")
        else DEFAULT_ROLLBACK_WINDOW_US,
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
