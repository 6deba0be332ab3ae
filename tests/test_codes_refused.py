"""Forged and damaged codes over real gRPC: each refused with its specific reason, nothing redeemed.

The exhaustive per-character and per-byte sweeps run against the codec in test_tokens.py; here a
sample of each class goes through the whole platform, and afterwards nothing has been redeemed."""

from __future__ import annotations

import base45
import cbor2
from clearpoint.formats import voucher_codes
from clearpoint.platform.core import ids
from clearpoint.v1 import campaigns_pb2, issuer_keys_pb2, redemption_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.helpers import HOUR_US, Client, RunningPlatform, rid, ts

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _body(code: str) -> bytes:
    return base45.b45decode(code[len(voucher_codes.PREFIX) :])


def _code(raw: bytes) -> str:
    return voucher_codes.PREFIX + base45.b45encode(raw).decode()


def _flip(code: str, where: str) -> str:
    """Flip one byte inside the signature or inside the signed payload, keeping the structure valid."""
    tag = cbor2.loads(_body(code))
    protected, unprotected, payload, signature = tag.value
    if where == "signature":
        signature = signature[:10] + bytes([signature[10] ^ 0x01]) + signature[11:]
    else:
        claims = cbor2.loads(payload)
        claims[7] = bytes([claims[7][0] ^ 0x01]) + claims[7][1:]
        payload = cbor2.dumps(claims, canonical=True)
    return _code(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]), canonical=True))


def _forge(kid: bytes, claims: voucher_codes.VoucherClaims) -> str:
    return voucher_codes.encode_code(claims, kid, Ed25519PrivateKey.generate())


async def test_forged_and_damaged_codes_refused(platform: RunningPlatform, partner: Client) -> None:
    now = platform.clock()
    campaign = await partner.campaign(now, total_stock=10)
    other = await partner.campaign(now, name="Other")
    (voucher,) = await partner.issue(campaign.campaign_id, 1)
    good = voucher.code
    parsed = voucher_codes.parse_code(good)

    cases: dict[str, tuple[str, dict[str, str]]] = {}
    for i in (len(voucher_codes.PREFIX), len(good) // 2, len(good) - 1):  # a character changed, in each region
        replacement = "A" if good[i] != "A" else "B"
        cases[f"char {i} changed"] = (good[:i] + replacement + good[i + 1 :], {})
    cases["truncated"] = (good[:-3], {})
    cases["truncated to prefix"] = (voucher_codes.PREFIX, {})
    cases["extended"] = (good + "00", {})
    cases["signature byte flipped"] = (_flip(good, "signature"), {})
    cases["payload byte flipped"] = (_flip(good, "payload"), {})
    cases["unknown key"] = (_forge(b"\x00\x00\x00\x01", parsed.claims), {})
    cases["known kid, wrong key"] = (_forge(parsed.kid, parsed.claims), {})
    cases["another version prefix"] = ("CP2:" + good[len(voucher_codes.PREFIX) :], {})
    cases["lowercase"] = (good[:10] + good[10:].lower(), {})
    cases["outside alphabet"] = (good[:20] + "#" + good[21:], {})
    cases["empty"] = ("", {})
    cases["1 MB"] = ("CP1:" + "A" * (1 << 20), {})
    cases["for another campaign"] = (good, {"expected_campaign_id": other.campaign_id})
    expected = {
        "truncated": "CODE_MALFORMED",
        "truncated to prefix": "CODE_MALFORMED",
        "extended": "CODE_MALFORMED",
        "signature byte flipped": "SIGNATURE_INVALID",
        "payload byte flipped": "SIGNATURE_INVALID",
        "unknown key": "KEY_UNKNOWN",
        "known kid, wrong key": "SIGNATURE_INVALID",
        "another version prefix": "VERSION_UNSUPPORTED",
        "lowercase": "CODE_MALFORMED",
        "outside alphabet": "CODE_MALFORMED",
        "empty": "CODE_MALFORMED",
        "1 MB": "CODE_TOO_LONG",
        "for another campaign": "CAMPAIGN_MISMATCH",
    }
    damaged = {"CODE_MALFORMED", "SIGNATURE_INVALID", "KEY_UNKNOWN", "VERSION_UNSUPPORTED"}
    for name, (code, extra) in cases.items():
        refusal = await partner.redeem_refusal(code, **extra)
        if name in expected:
            assert refusal.reason == expected[name], name
        else:  # a changed character breaks the encoding, the structure, or the signature
            assert refusal.reason in damaged, (name, refusal.reason)
        preview = await partner.redemption.ValidateCode(
            redemption_pb2.ValidateCodeRequest(code=code), metadata=partner.metadata
        )
        if not extra:
            assert not preview.redeemable and preview.message, name

    got = await partner.campaigns.GetCampaign(
        campaigns_pb2.GetCampaignRequest(campaign_id=campaign.campaign_id), metadata=partner.metadata
    )
    assert got.progress.redeemed == 0
    # The genuine code still works after all that.
    assert (await partner.redeem(good)).claim.voucher_id == voucher.voucher_id


async def test_expired_and_not_yet_valid(platform: RunningPlatform, partner: Client) -> None:
    now = platform.clock()
    later = await partner.campaign(now, valid_from=ts(now + HOUR_US), valid_until=ts(now + 2 * HOUR_US))
    (v_later,) = await partner.issue(later.campaign_id, 1)
    assert (await partner.redeem_refusal(v_later.code)).reason == "VOUCHER_NOT_YET_VALID"
    preview = await partner.redemption.ValidateCode(
        redemption_pb2.ValidateCodeRequest(code=v_later.code, store_id="store-1"), metadata=partner.metadata
    )
    assert not preview.redeemable and preview.claim.prize_description
    platform.clock.advance(3 * 3600)
    assert (await partner.redeem_refusal(v_later.code)).reason == "VOUCHER_EXPIRED"


async def test_retired_key_refuses_its_codes_rotated_key_keeps_them(platform: RunningPlatform, partner: Client) -> None:
    op = platform.operator()
    campaign = await partner.campaign(platform.clock(), uses_per_voucher=5)
    (old,) = await partner.issue(campaign.campaign_id, 1)
    rotated = await op.keys.RotateIssuerKey(
        issuer_keys_pb2.RotateIssuerKeyRequest(request_id=rid()), metadata=op.metadata
    )
    old_kid = rotated.previous_key.key_id
    assert rotated.active_key.key_id != old_kid
    assert rotated.previous_key.state == issuer_keys_pb2.ISSUER_KEY_STATE_ROTATED
    (new,) = await partner.issue(campaign.campaign_id, 1)
    assert voucher_codes.parse_code(new.code).kid.hex() == rotated.active_key.key_id
    # Codes of the rotated key still verify and redeem.
    await partner.redeem(old.code)

    await op.keys.RetireIssuerKey(
        issuer_keys_pb2.RetireIssuerKeyRequest(request_id=rid(), key_id=old_kid), metadata=op.metadata
    )
    assert (await partner.redeem_refusal(old.code)).reason == "KEY_RETIRED"
    await partner.redeem(new.code)
    assert ids.is_id("cmp", campaign.campaign_id)
