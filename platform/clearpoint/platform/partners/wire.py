"""Partners as clearpoint.v1 messages."""

from __future__ import annotations

from clearpoint.platform.core.principals import Role
from clearpoint.platform.edge import to_timestamp
from clearpoint.platform.partners.accounts import Partner
from clearpoint.platform.partners.api_keys import ApiKeyInfo
from clearpoint.v1 import partners_pb2

ROLES = {Role.PARTNER: partners_pb2.ROLE_PARTNER, Role.OPERATOR: partners_pb2.ROLE_OPERATOR}
ROLES_ASKED = {
    partners_pb2.ROLE_UNSPECIFIED: Role.PARTNER,
    partners_pb2.ROLE_PARTNER: Role.PARTNER,
    partners_pb2.ROLE_OPERATOR: Role.OPERATOR,
}


def partner(p: Partner) -> partners_pb2.Partner:
    return partners_pb2.Partner(
        partner_id=p.partner_id, name=p.name, role=ROLES[p.role], create_time=to_timestamp(p.created_us)
    )


def api_key(k: ApiKeyInfo) -> partners_pb2.ApiKey:
    return partners_pb2.ApiKey(
        key_id=k.key_id,
        partner_id=k.partner_id,
        create_time=to_timestamp(k.created_us),
        revoke_time=to_timestamp(k.revoked_us),
        expire_time=to_timestamp(k.expires_us),
        replaced_by=k.replaced_by or "",
    )
