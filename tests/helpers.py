"""A small test client over real gRPC, and a handle on a running platform."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc
from clearpoint.platform.api.reasons import from_status
from clearpoint.platform.api.registry import SERVICES
from clearpoint.platform.api.server import PlatformServer
from clearpoint.platform.core.clock import ManualClock
from clearpoint.platform.core.errors import Refusal
from clearpoint.platform.core.principals import Principal, Role
from clearpoint.platform.edge import Service
from clearpoint.platform.exchange.rules import Rule
from clearpoint.platform.partners import accounts as partner_accounts
from clearpoint.v1 import campaigns_pb2, issuer_keys_pb2, partners_pb2, redemption_pb2
from google.protobuf import duration_pb2, timestamp_pb2
from grpc_status import rpc_status
from sqlalchemy.ext.asyncio import AsyncConnection

HOUR_US = 3600 * 1_000_000


def rid() -> str:
    return secrets.token_hex(8)


def refusal_of(exc: grpc.aio.AioRpcError) -> Refusal:
    """The clearpoint ErrorInfo inside a failed call (fails the test if there is none)."""
    status = rpc_status.from_call(exc)
    assert status is not None, f"no rich status in {exc!r}"
    return from_status(status)


def ts(us: int) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromMicroseconds(us)
    return t


@dataclass
class Client:
    """A caller with one API key, and a stub for every registered service (by its client_name)."""

    target: str
    api_key: str
    services: tuple[Service, ...] = SERVICES
    channel: grpc.aio.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.target)
        self.metadata = (("x-api-key", self.api_key),)
        self.stubs: dict[str, Any] = {s.client_name: s.stub(self.channel) for s in self.services}

    def __getattr__(self, name: str) -> Any:
        stubs = self.__dict__.get("stubs", {})
        if name in stubs:
            return stubs[name]
        raise AttributeError(name)

    async def close(self) -> None:
        await self.channel.close()

    async def create_key_if_none(self) -> None:
        keys = await self.keys.ListIssuerKeys(issuer_keys_pb2.ListIssuerKeysRequest(), metadata=self.metadata)
        if not keys.keys:
            await self.keys.CreateIssuerKey(
                issuer_keys_pb2.CreateIssuerKeyRequest(request_id=rid()), metadata=self.metadata
            )

    async def campaign(self, now_us: int, **overrides: object) -> campaigns_pb2.Campaign:
        fields: dict[str, object] = dict(
            request_id=rid(),
            name="Summer cola",
            prize_description="One free 0.5 l cola",
            valid_from=ts(now_us - HOUR_US),
            valid_until=ts(now_us + 24 * HOUR_US),
            total_stock=1000,
            uses_per_voucher=1,
        )
        fields.update(overrides)
        if isinstance(fields.get("rollback_window_s"), int):
            fields["rollback_window"] = duration_pb2.Duration(seconds=fields.pop("rollback_window_s"))  # type: ignore[arg-type]
        response = await self.campaigns.CreateCampaign(
            campaigns_pb2.CreateCampaignRequest(**fields), metadata=self.metadata
        )
        return response.campaign

    async def issue(self, campaign_id: str, count: int) -> list[campaigns_pb2.IssuedVoucher]:
        response = await self.campaigns.IssueVouchers(
            campaigns_pb2.IssueVouchersRequest(request_id=rid(), campaign_id=campaign_id, count=count),
            metadata=self.metadata,
        )
        return list(response.vouchers)

    async def redeem(self, code: str, store_id: str = "store-1", request_id: str | None = None, **kw: str):  # type: ignore[no-untyped-def]
        return await self.redemption.Redeem(
            redemption_pb2.RedeemRequest(
                request_id=rid() if request_id is None else request_id, code=code, store_id=store_id, **kw
            ),
            metadata=self.metadata,
        )

    async def redeem_refusal(self, code: str, store_id: str = "store-1", **kw: str) -> Refusal:
        try:
            await self.redeem(code, store_id, **kw)
        except grpc.aio.AioRpcError as exc:
            return refusal_of(exc)
        raise AssertionError("redemption was not refused")


@dataclass
class RunningPlatform:
    server: PlatformServer
    clock: ManualClock
    target: str
    operator_key: str
    clients: list[Client] = field(default_factory=list)

    def client(self, api_key: str) -> Client:
        c = Client(self.target, api_key)
        self.clients.append(c)
        return c

    def operator(self) -> Client:
        return self.client(self.operator_key)

    async def new_partner(self, name: str | None = None) -> Client:
        response = await self.operator().partners.CreatePartner(
            partners_pb2.CreatePartnerRequest(request_id=rid(), name=name or f"partner-{rid()}"),
            metadata=(("x-api-key", self.operator_key),),
        )
        return self.client(response.api_key)

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.server.stop(0)
        await self.server.platform.close()


def channel_rule(channel: str, effective_us: int, **kw: object) -> Rule:
    """A channel's rule for domain tests: one-to-one, no fee, 10 to 100,000 points, 0.5 EUR cents a point."""
    fields: dict[str, object] = dict(
        channel_id=channel,
        version=0,
        effective_us=effective_us,
        to_platform=Decimal("1"),
        from_platform=Decimal("1"),
        fee_percent=Decimal(0),
        min_points=10,
        max_points=100_000,
        daily_points=1_000_000,
        price=Decimal("0.5"),
        currency="EUR",
    )
    fields.update(kw)
    return Rule(**fields)  # type: ignore[arg-type]


async def principals(
    conn: AsyncConnection, now_us: int
) -> tuple[Principal, Principal, Principal, Principal, dict[str, str]]:
    """Three partners and an operator, made on the database directly, for domain tests; and each
    one's API key by partner id, for tests that also call the API as them."""
    made = [await partner_accounts.create(conn, f"p-{secrets.token_hex(4)}", Role.PARTNER, now_us) for _ in range(3)]
    made.append(await partner_accounts.create(conn, f"ops-{secrets.token_hex(4)}", Role.OPERATOR, now_us))
    a, b, c, op = (Principal(p.partner_id, p.name, p.role) for p, _ in made)
    return a, b, c, op, {p.partner_id: key for p, key in made}
