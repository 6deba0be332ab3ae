"""`clearpoint vouchers ...`: check or redeem a voucher code at a store, as a partner's till
integration does, over gRPC with the partner's API key."""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from clearpoint.commands import Command, add_commands, plain, rid
from clearpoint.connection import Target
from clearpoint.v1 import errors_pb2, redemption_pb2_grpc
from clearpoint.v1 import redemption_pb2 as R


def _code_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("code", help="the voucher code as scanned (CP1:...)")
    p.add_argument("--store", required=True, help="the store it is presented at")


def _stub(ch: grpc.aio.Channel) -> Any:
    return redemption_pb2_grpc.RedemptionServiceStub(ch)


async def _validate(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    got = await _stub(ch).ValidateCode(R.ValidateCodeRequest(code=a.code, store_id=a.store), metadata=t.metadata)
    row = plain(got)
    row["redeemable"] = got.redeemable
    row["reason"] = errors_pb2.Reason.Name(got.reason).removeprefix("REASON_") if got.reason else ""
    row["prize"] = got.claim.prize_description
    return [row]


async def _redeem(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    done = await _stub(ch).Redeem(R.RedeemRequest(request_id=rid(), code=a.code, store_id=a.store), metadata=t.metadata)
    row = plain(done)
    row["redemption_id"] = done.redemption.redemption_id
    row["prize"] = done.claim.prize_description
    row["uses_remaining"] = done.claim.uses_remaining
    return [row]


COMMANDS = (
    Command(
        ("validate",),
        "whether a code would be redeemed now, changing nothing",
        _code_args,
        _validate,
        ("redeemable", "reason", "prize"),
    ),
    Command(
        ("redeem",),
        "redeem a code once: what to hand over, or why not (exit status 1)",
        _code_args,
        _redeem,
        ("redemption_id", "prize", "uses_remaining"),
    ),
)


def configure(group: argparse.ArgumentParser) -> None:
    group.description = "Check or redeem voucher codes at a store, with the partner's API key."
    add_commands(group, COMMANDS)
