"""Authentication: the API-key cache (revocation takes effect within CACHE_SECONDS, not later; the
cache stays bounded), and the guard: where the key is read from, which calls need none, and what a
refused caller is told.

Keys are revoked by setting api_keys.revoked_us, as an operator's revocation does; the cache's clock
is time.monotonic, replaced here by one the test moves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from clearpoint.platform.api.guard import api_key_from
from clearpoint.platform.app import Platform
from clearpoint.platform.core.database import Database
from clearpoint.platform.core.principals import Role
from clearpoint.platform.partners import accounts, authentication
from clearpoint.platform.partners.authentication import CACHE_SECONDS, Authenticator
from clearpoint.platform.partners.tables import api_keys
from clearpoint.v1 import partners_pb2
from sqlalchemy import update

from tests.agent_helpers import enrol_agent
from tests.conftest import MASTER_KEY
from tests.helpers import Client, RunningPlatform, refusal_of


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    platform = await Platform.open(database_url, master_key=MASTER_KEY)
    yield platform.db
    await platform.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    clock = Monotonic()
    monkeypatch.setattr(authentication.time, "monotonic", clock)
    return clock


async def _partner(db: Database, name: str) -> tuple[str, str]:
    async with db.write() as conn:
        partner, key = await accounts.create(conn, name, Role.PARTNER, 1)
    return partner.partner_id, key


async def _revoke_all(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(update(api_keys).values(revoked_us=2))


async def test_a_revoked_key_works_until_the_cache_entry_ends_and_not_a_moment_longer(
    db: Database, clock: Monotonic
) -> None:
    auth = Authenticator(lambda: 0)
    partner_id, key = await _partner(db, "cached")
    first = await auth.authenticate(db.read, key)
    assert first is not None and (first.partner_id, first.role) == (partner_id, Role.PARTNER)
    await _revoke_all(db)
    clock.now += CACHE_SECONDS - 0.5
    assert await auth.authenticate(db.read, key) == first  # the documented grace: still cached
    clock.now += 0.5  # exactly CACHE_SECONDS after it was verified
    assert await auth.authenticate(db.read, key) is None
    clock.now += CACHE_SECONDS
    assert await auth.authenticate(db.read, key) is None  # a refusal is never cached as a principal


async def test_the_cache_is_bounded_and_drops_the_entry_it_has_held_longest(
    db: Database, clock: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authentication, "CACHE_ENTRIES", 2)
    auth = Authenticator(lambda: 0)
    keys = [(await _partner(db, f"bounded-{i}"))[1] for i in range(3)]
    for key in keys:
        assert await auth.authenticate(db.read, key) is not None
    await _revoke_all(db)
    # The third entry pushed out the first, so only the first key is checked against the database again.
    assert await auth.authenticate(db.read, keys[0]) is None
    assert await auth.authenticate(db.read, keys[1]) is not None
    assert await auth.authenticate(db.read, keys[2]) is not None


# The guard (api/guard.py).


def test_the_api_key_is_taken_from_x_api_key_or_a_bearer_authorization_only() -> None:
    """Other entries, even ones that look like credentials, are never mistaken for the key."""
    assert api_key_from((("x-trace", "Bearer not-the-key"), ("x-api-key", "cpk_k"))) == "cpk_k"
    assert api_key_from((("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "cpk_k"))) == "cpk_k"
    assert api_key_from((("authorization", "bearer  cpk_k "),)) == "cpk_k"
    assert api_key_from((("authorization", "Basic dXNlcjpwYXNz"),)) is None
    assert api_key_from(None) is None


async def test_a_call_that_carries_its_own_proof_needs_no_api_key(platform: RunningPlatform, partner: Client) -> None:
    agent_id, _ = await enrol_agent(platform, partner)  # EnrolAgent, sent without any metadata
    assert agent_id.startswith("agt_")


async def test_a_call_without_a_key_is_told_how_to_send_one(platform: RunningPlatform) -> None:
    anon = platform.client("")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await anon.partners.WhoAmI(partners_pb2.WhoAmIRequest())
    assert refusal_of(err.value).reason == "UNAUTHENTICATED"
    assert "x-api-key" in (err.value.details() or "")


@pytest.mark.parametrize(
    ("method", "shape", "where"),
    [
        ("/clearpoint.v1.RedemptionService/Redeem", "unary_unary", "the request"),
        ("/clearpoint.v1.CampaignService/WatchCampaignProgress", "unary_stream", "the request"),
        ("/clearpoint.v1.AgentService/StreamScans", "stream_stream", "a message on the stream"),
    ],
)
async def test_an_undecodable_request_is_refused_naming_the_request_and_the_method(
    platform: RunningPlatform, partner: Client, method: str, shape: str, where: str
) -> None:
    """Whatever the call's shape, bytes that are not its message are FIELD_INVALID, and the text says
    which message, of which method, and what the decoder found."""
    call = getattr(partner.channel, shape)(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    garbage = b"\xff" * 64
    with pytest.raises(grpc.aio.AioRpcError) as err:
        if shape == "unary_unary":
            await call(garbage, metadata=partner.metadata, timeout=10)
        elif shape == "unary_stream":
            await call(garbage, metadata=partner.metadata, timeout=10).read()
        else:
            stream = call(metadata=partner.metadata, timeout=10)
            await stream.write(garbage)
            for _ in range(3):  # the platform's challenge comes first
                await stream.read()
    refusal = refusal_of(err.value)
    assert (refusal.reason, refusal.metadata["field"]) == ("FIELD_INVALID", "(request)")
    said = err.value.details() or ""
    assert said.startswith(f"{where} is not a valid message for {method}: "), said
    assert "Error parsing message" in said.removeprefix(f"{where} is not a valid message for {method}: ")


async def test_refusals_of_the_guard_say_what_to_do(platform: RunningPlatform, partner: Client) -> None:
    anon = platform.client("")
    request = partners_pb2.WhoAmIRequest()
    for metadata, says in (
        ((), "no API key: send it as the x-api-key metadata entry"),
        ((("x-api-key", "cpk_not-a-key"),), "the API key is not valid"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await anon.partners.WhoAmI(request, metadata=metadata)
        assert err.value.details() == says
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await partner.partners.CreatePartner(
            partners_pb2.CreatePartnerRequest(request_id="r1", name="n"), metadata=partner.metadata
        )
    assert err.value.details() == "the partner role may not call /clearpoint.v1.PartnerService/CreatePartner"


@pytest.mark.parametrize("raised", ["database away", "a bug"])
async def test_what_a_servicer_raises_reaches_the_caller_as_a_status(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raised: str
) -> None:
    """The database away is UNAVAILABLE / DATABASE_UNAVAILABLE, safe to resend, and no ERROR line
    (the outage is logged once elsewhere); anything unexpected is INTERNAL, its traceback logged once
    with the method, and nothing of it in the reply."""
    from clearpoint.platform.core.database import DatabaseUnavailable
    from clearpoint.platform.partners.servicer import PartnerServicer

    from tests.conftest import start_platform

    async def broken(self: object, request: object, context: object) -> object:
        if raised == "database away":
            raise DatabaseUnavailable("connection refused (secret detail)")
        raise RuntimeError("secret detail")

    monkeypatch.setattr(PartnerServicer, "WhoAmI", broken)
    platform = await start_platform(database_url)
    try:
        operator = platform.operator()
        caplog.clear()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await operator.partners.WhoAmI(
                partners_pb2.WhoAmIRequest(), metadata=(*operator.metadata, ("x-request-id", "till-7:call-42"))
            )
    finally:
        await platform.close()
    details = caught.value.details() or ""
    assert "secret detail" not in details
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    if raised == "database away":
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refusal_of(caught.value).reason == "DATABASE_UNAVAILABLE"
        assert "same request_id" in details
        assert errors == []
    else:
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert details == "internal error; the platform logged it as request till-7:call-42"
        assert len(errors) == 1 and "/clearpoint.v1.PartnerService/WhoAmI" in errors[0].getMessage()
        assert errors[0].exc_info is not None and "secret detail" in str(errors[0].exc_info[1])


def test_a_request_id_is_the_callers_when_sensible_else_a_new_one() -> None:
    from clearpoint.platform.api.guard import request_id_from

    assert request_id_from((("x-request-id", "pos-12:abc.1"),)) == "pos-12:abc.1"
    for bad in ("", "x" * 65, "has space", "new\nline", "caf\u00e9"):
        made = request_id_from((("x-request-id", bad),))
        assert made != bad and len(made) == 16 and int(made, 16) >= 0
    assert request_id_from(()) != request_id_from(())
