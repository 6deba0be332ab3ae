"""Statements to and from the ClearingService messages."""

from __future__ import annotations

import json

from clearpoint.platform.clearing.statements import PeriodInfo, Statement
from clearpoint.platform.edge import to_timestamp
from clearpoint.v1 import clearing_pb2 as C


def statement(s: Statement, period: PeriodInfo) -> C.Statement:
    totals = json.loads(s.content)["totals"]
    return C.Statement(
        statement_id=s.statement_id,
        channel_id=s.channel_id,
        period_id=s.period_id,
        period_number=s.period_number,
        period_start=to_timestamp(period.start_us),
        period_end=to_timestamp(period.end_us),
        content=s.content,
        content_sha256=s.content_sha256,
        signature=s.signature,
        key_id=s.key_id,
        totals=[
            C.SettlementTotal(
                currency=t["currency"],
                owed_by_channel=int(t["owed_by_channel"]),
                owed_to_channel=int(t["owed_to_channel"]),
                net_to_channel=int(t["net_to_channel"]),
            )
            for t in totals
        ],
    )
