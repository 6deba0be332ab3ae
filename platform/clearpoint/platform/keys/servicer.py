"""IssuerKeyService: operators create, rotate, retire and list the keys vouchers are signed with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearpoint.platform.edge import OPERATORS, Context, Service, once
from clearpoint.platform.keys import wire
from clearpoint.v1 import issuer_keys_pb2, issuer_keys_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

K = issuer_keys_pb2


class IssuerKeyServicer(issuer_keys_pb2_grpc.IssuerKeyServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def CreateIssuerKey(self, request: K.CreateIssuerKeyRequest, context: Context) -> K.CreateIssuerKeyResponse:
        async def work(conn: AsyncConnection) -> K.CreateIssuerKeyResponse:
            return K.CreateIssuerKeyResponse(key=wire.issuer_key(await self.p.keys.create(conn)))

        return await once(self.p, "CreateIssuerKey", request, K.CreateIssuerKeyResponse, work)

    async def RotateIssuerKey(self, request: K.RotateIssuerKeyRequest, context: Context) -> K.RotateIssuerKeyResponse:
        async def work(conn: AsyncConnection) -> K.RotateIssuerKeyResponse:
            new, old = await self.p.keys.rotate(conn)
            return K.RotateIssuerKeyResponse(
                active_key=wire.issuer_key(new), previous_key=wire.issuer_key(old) if old else None
            )

        return await once(self.p, "RotateIssuerKey", request, K.RotateIssuerKeyResponse, work)

    async def RetireIssuerKey(self, request: K.RetireIssuerKeyRequest, context: Context) -> K.RetireIssuerKeyResponse:
        async def work(conn: AsyncConnection) -> K.RetireIssuerKeyResponse:
            return K.RetireIssuerKeyResponse(key=wire.issuer_key(await self.p.keys.retire(conn, request.key_id)))

        return await once(self.p, "RetireIssuerKey", request, K.RetireIssuerKeyResponse, work)

    async def ListIssuerKeys(self, request: K.ListIssuerKeysRequest, context: Context) -> K.ListIssuerKeysResponse:
        async with self.p.db.read() as conn:
            keys = await self.p.keys.list(conn)
        return K.ListIssuerKeysResponse(keys=[wire.issuer_key(k) for k in keys])


SERVICE = Service(
    descriptor=K.DESCRIPTOR.services_by_name["IssuerKeyService"],
    servicer=IssuerKeyServicer,
    add_to_server=issuer_keys_pb2_grpc.add_IssuerKeyServiceServicer_to_server,
    stub=issuer_keys_pb2_grpc.IssuerKeyServiceStub,
    client_name="keys",
    access=OPERATORS,
)
