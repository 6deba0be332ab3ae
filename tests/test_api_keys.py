"""API keys over the API: created, listed without secrets, revoked, rotated with an overlap; a
partner manages only its own; a revoked key is refused on every worker within the stated bound."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from clearpoint.platform.core.errors import Reason
from clearpoint.platform.partners.authentication import CACHE_SECONDS
from clearpoint.v1 import partners_pb2
from google.protobuf import duration_pb2

from tests.helpers import Client, RunningPlatform, refusal_of, rid
from tests.processes import free_port

P = partners_pb2
HOUR_US = 3600 * 1_000_000


async def _who(client: Client) -> str:
    return (await client.partners.WhoAmI(P.WhoAmIRequest(), metadata=client.metadata)).partner.partner_id


async def _refused(call: object) -> tuple[grpc.StatusCode, Reason | str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            return exc.code(), "UNAUTHENTICATED"
        return exc.code(), refusal_of(exc).reason
    raise AssertionError("the call was not refused")


async def test_create_list_and_use_keys(platform: RunningPlatform) -> None:
    partner = await platform.new_partner()
    me = await _who(partner)
    made = await partner.partners.CreateApiKey(P.CreateApiKeyRequest(request_id=rid()), metadata=partner.metadata)
    assert made.api_key.startswith(f"cpk_{made.key.key_id}_") and made.key.partner_id == me
    assert await _who(platform.client(made.api_key)) == me

    by_operator = await platform.operator().partners.CreateApiKey(
        P.CreateApiKeyRequest(request_id=rid(), partner_id=me), metadata=platform.operator().metadata
    )
    assert await _who(platform.client(by_operator.api_key)) == me

    listed = await partner.partners.ListApiKeys(P.ListApiKeysRequest(), metadata=partner.metadata)
    listed_ids = {k.key_id for k in listed.keys}  # (all made at one instant of the test clock)
    assert {made.key.key_id, by_operator.key.key_id} < listed_ids
    assert len(listed_ids) == 3  # the first key, from CreatePartner, too
    assert made.api_key.split("_", 2)[2] not in str(listed)  # never a secret (which may hold "_" itself)
    operator_view = await platform.operator().partners.ListApiKeys(
        P.ListApiKeysRequest(partner_id=me), metadata=platform.operator().metadata
    )
    assert [k.key_id for k in operator_view.keys] == [k.key_id for k in listed.keys]


async def test_a_replayed_create_returns_the_same_key_without_its_secret(platform: RunningPlatform) -> None:
    partner = await platform.new_partner()
    request = P.CreateApiKeyRequest(request_id=rid())
    first = await partner.partners.CreateApiKey(request, metadata=partner.metadata)
    again = await partner.partners.CreateApiKey(request, metadata=partner.metadata)
    assert again.key == first.key and first.api_key and again.api_key == ""


async def test_a_partner_sees_and_touches_only_its_own_keys(platform: RunningPlatform) -> None:
    mine, theirs = await platform.new_partner(), await platform.new_partner()
    their_id = await _who(theirs)
    their_keys = await theirs.partners.ListApiKeys(P.ListApiKeysRequest(), metadata=theirs.metadata)
    their_key = their_keys.keys[0].key_id
    s = mine.partners
    md = mine.metadata
    assert await _refused(s.ListApiKeys(P.ListApiKeysRequest(partner_id=their_id), metadata=md)) == (
        grpc.StatusCode.NOT_FOUND,
        Reason.PARTNER_UNKNOWN,
    )
    create_for_them = P.CreateApiKeyRequest(request_id=rid(), partner_id=their_id)
    assert (await _refused(s.CreateApiKey(create_for_them, metadata=md)))[1] == Reason.PARTNER_UNKNOWN
    revoke_theirs = P.RevokeApiKeyRequest(key_id=their_key)
    assert await _refused(s.RevokeApiKey(revoke_theirs, metadata=md)) == (
        grpc.StatusCode.NOT_FOUND,
        Reason.API_KEY_UNKNOWN,
    )
    rotate_theirs = P.RotateApiKeyRequest(request_id=rid(), key_id=their_key)
    assert (await _refused(s.RotateApiKey(rotate_theirs, metadata=md)))[1] == Reason.API_KEY_UNKNOWN
    assert await _who(theirs) == their_id  # untouched
    operator = platform.operator()
    unknown_partner = P.CreateApiKeyRequest(request_id=rid(), partner_id="ptn_000000000000")
    assert (await _refused(operator.partners.CreateApiKey(unknown_partner, metadata=operator.metadata)))[1] == (
        Reason.PARTNER_UNKNOWN
    )


@pytest.mark.parametrize("key_id", ["", "nope", "x" * 500, "\u00e9\u00e9", "0" * 12])
async def test_revoking_a_key_that_is_not_there(platform: RunningPlatform, key_id: str) -> None:
    operator = platform.operator()
    call = operator.partners.RevokeApiKey(P.RevokeApiKeyRequest(key_id=key_id), metadata=operator.metadata)
    assert (await _refused(call))[1] == Reason.API_KEY_UNKNOWN


async def test_a_revoked_key_is_refused_at_once_where_it_was_revoked(platform: RunningPlatform) -> None:
    partner = await platform.new_partner()
    spare = await partner.partners.CreateApiKey(P.CreateApiKeyRequest(request_id=rid()), metadata=partner.metadata)
    spare_client = platform.client(spare.api_key)
    await _who(spare_client)  # verified, so cached
    revoked = await partner.partners.RevokeApiKey(
        P.RevokeApiKeyRequest(key_id=spare.key.key_id), metadata=partner.metadata
    )
    assert revoked.key.HasField("revoke_time")
    assert (await _refused(spare_client.partners.WhoAmI(P.WhoAmIRequest(), metadata=spare_client.metadata)))[0] == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    again = await partner.partners.RevokeApiKey(
        P.RevokeApiKeyRequest(key_id=spare.key.key_id), metadata=partner.metadata
    )
    assert again.key == revoked.key  # revoking twice changes nothing
    rotate = P.RotateApiKeyRequest(request_id=rid(), key_id=spare.key.key_id)
    assert await _refused(partner.partners.RotateApiKey(rotate, metadata=partner.metadata)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        Reason.API_KEY_INACTIVE,
    )
    assert await _who(partner)  # the partner's other key still works


async def test_rotation_keeps_the_old_key_for_the_overlap_and_not_after(platform: RunningPlatform) -> None:
    partner = await platform.new_partner()
    old_id = (await partner.partners.ListApiKeys(P.ListApiKeysRequest(), metadata=partner.metadata)).keys[0].key_id
    request = P.RotateApiKeyRequest(request_id=rid(), key_id=old_id, overlap=duration_pb2.Duration(seconds=3600))
    rotated = await partner.partners.RotateApiKey(request, metadata=partner.metadata)
    assert rotated.old_key.replaced_by == rotated.new_key.key_id
    assert rotated.old_key.expire_time.ToMicroseconds() == platform.clock() + HOUR_US
    new_client = platform.client(rotated.api_key)
    me = await _who(new_client)
    assert await _who(partner) == me  # the old key, inside the overlap

    replay = await partner.partners.RotateApiKey(request, metadata=partner.metadata)
    assert replay.new_key == rotated.new_key and replay.api_key == ""

    platform.clock.now_us += HOUR_US - 1
    assert await _who(partner) == me  # a microsecond before the overlap ends
    platform.clock.now_us += 1  # the overlap's end, to the microsecond
    code, _ = await _refused(partner.partners.WhoAmI(P.WhoAmIRequest(), metadata=partner.metadata))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert await _who(new_client) == me


@pytest.mark.parametrize("seconds", [-1, 30 * 86_400 + 1])
async def test_an_overlap_out_of_range_is_refused(platform: RunningPlatform, seconds: int) -> None:
    partner = await platform.new_partner()
    key_id = (await partner.partners.ListApiKeys(P.ListApiKeysRequest(), metadata=partner.metadata)).keys[0].key_id
    request = P.RotateApiKeyRequest(request_id=rid(), key_id=key_id, overlap=duration_pb2.Duration(seconds=seconds))
    assert (await _refused(partner.partners.RotateApiKey(request, metadata=partner.metadata)))[1] == (
        Reason.FIELD_INVALID
    )
    assert await _who(partner)


def test_a_revoked_key_stops_on_every_worker_within_the_bound(tmp_path: Path) -> None:
    """Two workers share the port; each has verified the key (and cached it). After a revocation
    through one of them, calls on fresh connections (which land on either) all fail within
    CACHE_SECONDS, and none before the revocation did."""
    port = free_port()
    env = dict(
        {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOINT_")},
        CLEARPOINT_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CLEARPOINT_MASTER_KEY_FILE=str(tmp_path / "master.key"),
        CLEARPOINT_LISTEN=f"127.0.0.1:{port}",
        CLEARPOINT_LOG_LEVEL="warning",
    )
    cli = [sys.executable, "-m", "clearpoint.cli", "platform"]
    operator_key = subprocess.run(
        [*cli, "create-operator", "--name", "ops"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    server = subprocess.Popen([*cli, "serve", "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        asyncio.run(_revoke_across_workers(f"127.0.0.1:{port}", operator_key))
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


async def _calls_on_fresh_connections(target: str, key: str, n: int) -> list[int]:
    """For `n` WhoAmI calls, each on a new connection (the kernel spreads new connections over the
    workers by their addresses, so 24 of them miss a worker with odds of one in 8 million): 1 where
    the key was accepted, 0 where it was refused."""
    answered = []
    for _ in range(n):
        client = Client(target, key)
        try:
            response = await client.partners.WhoAmI(P.WhoAmIRequest(), metadata=client.metadata, timeout=5)
            answered.append(1 if response.partner.partner_id else 0)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, exc
            answered.append(0)
        finally:
            await client.close()
    return answered


async def _revoke_across_workers(target: str, operator_key: str) -> None:
    operator = Client(target, operator_key)
    deadline = time.monotonic() + 30
    while True:
        try:
            await _who(operator)
            break
        except grpc.aio.AioRpcError:
            assert time.monotonic() < deadline, "the platform did not start"
            await asyncio.sleep(0.2)
    created = await operator.partners.CreatePartner(
        P.CreatePartnerRequest(request_id=rid(), name="acme"), metadata=operator.metadata
    )
    key = created.api_key
    before = await _calls_on_fresh_connections(target, key, 24)
    assert all(before), before  # every worker takes it (and now holds it in its cache)
    await operator.partners.RevokeApiKey(P.RevokeApiKeyRequest(key_id=key.split("_")[1]), metadata=operator.metadata)
    revoked_at = time.monotonic()
    while time.monotonic() - revoked_at < CACHE_SECONDS + 1:
        await asyncio.sleep(0.25)
        if not any(await _calls_on_fresh_connections(target, key, 12)):
            break
    stopped_within = time.monotonic() - revoked_at
    after = await _calls_on_fresh_connections(target, key, 24)
    assert not any(after), f"still accepted {stopped_within:.1f} s after revocation"
    assert stopped_within <= CACHE_SECONDS + 1
    await operator.close()
