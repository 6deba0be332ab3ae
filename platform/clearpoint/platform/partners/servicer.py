"""PartnerService: operators create and list partners; partners and operators manage API keys;
anyone asks who they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearpoint.platform.core.errors import field_invalid
from clearpoint.platform.core.principals import current_principal
from clearpoint.platform.edge import OPERATORS, PARTNERS, Context, Service, once
from clearpoint.platform.partners import accounts, api_keys, wire
from clearpoint.v1 import partners_pb2, partners_pb2_grpc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

P = partners_pb2


class PartnerServicer(partners_pb2_grpc.PartnerServiceServicer):
    def __init__(self, p: Platform) -> None:
        self.p = p

    async def CreatePartner(self, request: P.CreatePartnerRequest, context: Context) -> P.CreatePartnerResponse:
        accounts.check_name(request.name)
        role = wire.ROLES_ASKED.get(request.role)
        if role is None:
            raise field_invalid("role", "role must be ROLE_PARTNER or ROLE_OPERATOR")
        shown: list[str] = []

        async def work(conn: AsyncConnection) -> P.CreatePartnerResponse:
            created, key = await accounts.create(conn, request.name, role, self.p.clock())
            shown.append(key)
            # The stored answer leaves the key out: it is shown once, never kept in clear.
            return P.CreatePartnerResponse(partner=wire.partner(created))

        try:
            response = await once(self.p, "CreatePartner", request, P.CreatePartnerResponse, work)
        except IntegrityError:
            raise field_invalid("name", f"a partner named {request.name!r} exists already") from None
        if shown:
            response.api_key = shown[0]
        return response

    async def ListPartners(self, request: P.ListPartnersRequest, context: Context) -> P.ListPartnersResponse:
        async with self.p.db.read() as conn:
            found = await accounts.list_all(conn)
        return P.ListPartnersResponse(partners=[wire.partner(p) for p in found])

    async def WhoAmI(self, request: P.WhoAmIRequest, context: Context) -> P.WhoAmIResponse:
        async with self.p.db.read() as conn:
            me = await accounts.get(conn, current_principal.get().partner_id)
        assert me is not None, "an authenticated caller is a partner"
        return P.WhoAmIResponse(partner=wire.partner(me))

    async def CreateApiKey(self, request: P.CreateApiKeyRequest, context: Context) -> P.CreateApiKeyResponse:
        shown: list[str] = []

        async def work(conn: AsyncConnection) -> P.CreateApiKeyResponse:
            made, key = await api_keys.create(conn, current_principal.get(), request.partner_id, self.p.clock())
            shown.append(key)
            return P.CreateApiKeyResponse(key=wire.api_key(made))  # stored without the key itself

        response = await once(self.p, "CreateApiKey", request, P.CreateApiKeyResponse, work)
        if shown:
            response.api_key = shown[0]
        return response

    async def ListApiKeys(self, request: P.ListApiKeysRequest, context: Context) -> P.ListApiKeysResponse:
        async with self.p.db.read() as conn:
            found = await api_keys.list_for(conn, current_principal.get(), request.partner_id)
        return P.ListApiKeysResponse(keys=[wire.api_key(k) for k in found])

    async def RevokeApiKey(self, request: P.RevokeApiKeyRequest, context: Context) -> P.RevokeApiKeyResponse:
        async with self.p.db.write() as conn:
            revoked = await api_keys.revoke(conn, current_principal.get(), request.key_id, self.p.clock())
        self.p.auth.forget(request.key_id)
        return P.RevokeApiKeyResponse(key=wire.api_key(revoked))

    async def RotateApiKey(self, request: P.RotateApiKeyRequest, context: Context) -> P.RotateApiKeyResponse:
        overlap_us = request.overlap.ToMicroseconds()
        shown: list[str] = []

        async def work(conn: AsyncConnection) -> P.RotateApiKeyResponse:
            old, new, key = await api_keys.rotate(
                conn, current_principal.get(), request.key_id, overlap_us, self.p.clock()
            )
            shown.append(key)
            return P.RotateApiKeyResponse(old_key=wire.api_key(old), new_key=wire.api_key(new))

        response = await once(self.p, "RotateApiKey", request, P.RotateApiKeyResponse, work)
        self.p.auth.forget(request.key_id)
        if shown:
            response.api_key = shown[0]
        return response


SERVICE = Service(
    descriptor=P.DESCRIPTOR.services_by_name["PartnerService"],
    servicer=PartnerServicer,
    add_to_server=partners_pb2_grpc.add_PartnerServiceServicer_to_server,
    stub=partners_pb2_grpc.PartnerServiceStub,
    client_name="partners",
    access=OPERATORS,
    overrides={name: PARTNERS for name in ("WhoAmI", "CreateApiKey", "ListApiKeys", "RevokeApiKey", "RotateApiKey")},
)
