"""`clearpoint campaigns ...`: a partner's campaigns, created, listed, and their vouchers issued,
over gRPC with the partner's API key."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from clearpoint.commands import Command, add_commands, duration_seconds, none, plain, rid
from clearpoint.connection import Target
from clearpoint.v1 import campaigns_pb2 as C
from clearpoint.v1 import campaigns_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2

COLUMNS = ("campaign_id", "name", "prize_description", "valid_from", "valid_until", "total_stock", "store_ids")


def _stub(ch: grpc.aio.Channel) -> Any:
    return campaigns_pb2_grpc.CampaignServiceStub(ch)


def _time(text: str) -> datetime:
    """An RFC 3339 time ('2026-12-24T00:00:00Z'), or 'now'."""
    if text == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time such as 2026-12-24T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z for UTC")
    return parsed


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC).replace(tzinfo=None))
    return stamp


def _create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the campaign's name (1 to 200 characters)")
    p.add_argument("--prize", required=True, help="what a redeemed voucher hands over, for the cashier")
    p.add_argument("--stock", type=int, required=True, help="how many redemptions the campaign allows in all")
    p.add_argument(
        "--store", action="append", default=[], help="a store where it may be redeemed (repeat); any if none"
    )
    p.add_argument("--valid-from", type=_time, default=_time("now"), help="RFC 3339 time it starts [now]")
    p.add_argument("--valid-for", type=duration_seconds, default=duration_seconds("30d"), help="how long it runs [30d]")
    p.add_argument("--uses-per-voucher", type=int, default=1, help="redemptions one voucher allows [1]")
    p.add_argument(
        "--rollback-window", type=duration_seconds, default=0, help="how long a redemption may be undone [0]"
    )


async def _create(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    request = C.CreateCampaignRequest(
        request_id=rid(),
        name=a.name,
        prize_description=a.prize,
        valid_from=_stamp(a.valid_from),
        valid_until=_stamp(a.valid_from + timedelta(seconds=a.valid_for)),
        store_ids=a.store,
        total_stock=a.stock,
        uses_per_voucher=a.uses_per_voucher,
        rollback_window=duration_pb2.Duration(seconds=a.rollback_window),
    )
    made = await _stub(ch).CreateCampaign(request, metadata=t.metadata)
    return [plain(made.campaign)]


async def _list(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    found = await _stub(ch).ListCampaigns(C.ListCampaignsRequest(), metadata=t.metadata)
    return [plain(c) for c in found.campaigns]


def _issue_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign_id", help="the campaign (cmp_...)")
    p.add_argument("--count", type=int, default=1, help="how many vouchers [1]")


async def _issue(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    issued = await _stub(ch).IssueVouchers(
        C.IssueVouchersRequest(request_id=rid(), campaign_id=a.campaign_id, count=a.count), metadata=t.metadata
    )
    return [{"voucher_id": v.voucher_id, "key_id": issued.key_id, "code": v.code} for v in issued.vouchers]


COMMANDS = (
    Command(("create",), "create a campaign", _create_args, _create, COLUMNS),
    Command(("list",), "the caller's campaigns", none, _list, COLUMNS),
    Command(
        ("issue",),
        "issue vouchers: their codes one per line on stdout (shown once), the table on stderr",
        _issue_args,
        _issue,
        ("voucher_id", "key_id"),
        shown_once="code",
    ),
)


def configure(group: argparse.ArgumentParser) -> None:
    group.description = "A partner's campaigns and their vouchers, with the partner's API key."
    add_commands(group, COMMANDS)
