"""`clearpoint ops ...`: administer a running platform over its API with an operator key.

Every command is a gRPC call (or a few) to the platform, so it works against a remote one; only
the first operator key is made on the platform host (`clearpoint platform create-operator`).
Results print as a table for people or with `-o json` for scripts; a refusal is one line with the
platform's reason, exit status 1.
"""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from clearpoint.commands import Command, add_commands, duration_seconds, none, plain, rid
from clearpoint.connection import Target
from clearpoint.ops import fleet
from clearpoint.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    issuer_keys_pb2,
    issuer_keys_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
)
from google.protobuf import duration_pb2

# --- partners -----------------------------------------------------------------------------------


async def _whoami(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    me = await partners_pb2_grpc.PartnerServiceStub(ch).WhoAmI(partners_pb2.WhoAmIRequest(), metadata=t.metadata)
    return [_partner(me.partner)]


def _partner(p: partners_pb2.Partner) -> dict[str, Any]:
    row = plain(p)
    row["role"] = partners_pb2.Role.Name(p.role).removeprefix("ROLE_").lower()
    return row


async def _partners_list(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    found = await partners_pb2_grpc.PartnerServiceStub(ch).ListPartners(
        partners_pb2.ListPartnersRequest(), metadata=t.metadata
    )
    return [_partner(p) for p in found.partners]


def _partners_create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the partner's display name, unique (1 to 200 characters)")
    p.add_argument("--operator", action="store_true", help="create an operator rather than a partner")


async def _partners_create(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    role = partners_pb2.ROLE_OPERATOR if a.operator else partners_pb2.ROLE_PARTNER
    made = await partners_pb2_grpc.PartnerServiceStub(ch).CreatePartner(
        partners_pb2.CreatePartnerRequest(request_id=rid(), name=a.name, role=role), metadata=t.metadata
    )
    return [{**_partner(made.partner), "api_key": made.api_key}]


# --- API keys -----------------------------------------------------------------------------------


def _api_key(k: partners_pb2.ApiKey) -> dict[str, Any]:
    row = plain(k)
    row["state"] = "revoked" if k.HasField("revoke_time") else ("expiring" if k.HasField("expire_time") else "active")
    return row


def _partner_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--partner", default="", help="the partner (ptn_...); the caller's own if omitted")


async def _api_keys_list(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    found = await partners_pb2_grpc.PartnerServiceStub(ch).ListApiKeys(
        partners_pb2.ListApiKeysRequest(partner_id=a.partner), metadata=t.metadata
    )
    return [_api_key(k) for k in found.keys]


async def _api_keys_create(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    made = await partners_pb2_grpc.PartnerServiceStub(ch).CreateApiKey(
        partners_pb2.CreateApiKeyRequest(request_id=rid(), partner_id=a.partner), metadata=t.metadata
    )
    return [{**_api_key(made.key), "api_key": made.api_key}]


def _key_id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("key_id", help="the key's id: the part between 'cpk_' and the secret (see `api-keys list`)")


async def _api_keys_revoke(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    done = await partners_pb2_grpc.PartnerServiceStub(ch).RevokeApiKey(
        partners_pb2.RevokeApiKeyRequest(key_id=a.key_id), metadata=t.metadata
    )
    return [_api_key(done.key)]


def _rotate_args(p: argparse.ArgumentParser) -> None:
    _key_id_arg(p)
    p.add_argument(
        "--overlap",
        type=duration_seconds,
        default=duration_seconds("24h"),
        help="how long the old key keeps working: 90s, 15m, 1h, 7d (up to 30d; 0 stops it at once) [24h]",
    )


async def _api_keys_rotate(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    done = await partners_pb2_grpc.PartnerServiceStub(ch).RotateApiKey(
        partners_pb2.RotateApiKeyRequest(
            request_id=rid(), key_id=a.key_id, overlap=duration_pb2.Duration(seconds=a.overlap)
        ),
        metadata=t.metadata,
    )
    return [_api_key(done.old_key), {**_api_key(done.new_key), "api_key": done.api_key}]


# --- issuer keys --------------------------------------------------------------------------------


def _issuer_key(k: issuer_keys_pb2.IssuerKey) -> dict[str, Any]:
    row = plain(k)
    row["state"] = issuer_keys_pb2.IssuerKeyState.Name(k.state).removeprefix("ISSUER_KEY_STATE_").lower()
    row["public_key"] = k.public_key.hex()
    return row


def _issuer_stub(ch: grpc.aio.Channel) -> Any:
    return issuer_keys_pb2_grpc.IssuerKeyServiceStub(ch)


async def _issuer_list(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    found = await _issuer_stub(ch).ListIssuerKeys(issuer_keys_pb2.ListIssuerKeysRequest(), metadata=t.metadata)
    return [_issuer_key(k) for k in found.keys]


async def _issuer_create(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    made = await _issuer_stub(ch).CreateIssuerKey(
        issuer_keys_pb2.CreateIssuerKeyRequest(request_id=rid()), metadata=t.metadata
    )
    return [_issuer_key(made.key)]


async def _issuer_rotate(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    done = await _issuer_stub(ch).RotateIssuerKey(
        issuer_keys_pb2.RotateIssuerKeyRequest(request_id=rid()), metadata=t.metadata
    )
    rows = [_issuer_key(done.active_key)]
    if done.HasField("previous_key"):
        rows.append(_issuer_key(done.previous_key))
    return rows


def _kid_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("kid", help="the issuer key's id (see `issuer-keys list`)")


async def _issuer_retire(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    done = await _issuer_stub(ch).RetireIssuerKey(
        issuer_keys_pb2.RetireIssuerKeyRequest(request_id=rid(), key_id=a.kid), metadata=t.metadata
    )
    return [_issuer_key(done.key)]


# --- enrolment tokens and agents ----------------------------------------------------------------


def _token_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--partner", required=True, help="the partner whose store the agent serves (ptn_...)")
    p.add_argument("--store", required=True, help="the store the agent redeems at (1 to 64 characters)")
    p.add_argument(
        "--ttl", type=duration_seconds, default=duration_seconds("24h"), help="how long it may be used, 1m to 7d [24h]"
    )


async def _token_create(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    made = await agents_pb2_grpc.AgentServiceStub(ch).CreateEnrolmentToken(
        agents_pb2.CreateEnrolmentTokenRequest(
            request_id=rid(), partner_id=a.partner, store_id=a.store, ttl_seconds=a.ttl
        ),
        metadata=t.metadata,
    )
    return [{"token_id": made.token_id, "expire_time": plain(made).get("expire_time"), "token": made.token}]


def _agent(agent: agents_pb2.Agent) -> dict[str, Any]:
    row = plain(agent)
    row["state"] = agents_pb2.AgentState.Name(agent.state).removeprefix("AGENT_STATE_").lower()
    row["public_key"] = agent.public_key.hex()
    return row


def _agent_id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("agent_id", help="the agent (agt_...)")


async def _agents_revoke(ch: grpc.aio.Channel, t: Target, a: argparse.Namespace) -> Any:
    done = await agents_pb2_grpc.AgentServiceStub(ch).RevokeAgent(
        agents_pb2.RevokeAgentRequest(agent_id=a.agent_id), metadata=t.metadata
    )
    return [_agent(done.agent)]


PARTNER_COLUMNS = ("partner_id", "name", "role", "create_time")
API_KEY_COLUMNS = ("key_id", "partner_id", "state", "create_time", "expire_time", "revoke_time", "replaced_by")
ISSUER_COLUMNS = ("key_id", "state", "create_time", "retire_time", "public_key")
AGENT_COLUMNS = ("agent_id", "partner_id", "store_id", "display_name", "state", "enrol_time")

COMMANDS: tuple[Command, ...] = (
    Command(("whoami",), "who the platform takes the API key to be", none, _whoami, PARTNER_COLUMNS),
    Command(("partners", "list"), "every partner and operator", none, _partners_list, PARTNER_COLUMNS),
    Command(
        ("partners", "create"),
        "create a partner (or --operator) and print its first API key, once",
        _partners_create_args,
        _partners_create,
        PARTNER_COLUMNS,
        shown_once="api_key",
    ),
    Command(
        ("api-keys", "list"),
        "a partner's API keys (never their secrets)",
        _partner_option,
        _api_keys_list,
        API_KEY_COLUMNS,
    ),
    Command(
        ("api-keys", "create"),
        "create another API key for a partner and print it, once",
        _partner_option,
        _api_keys_create,
        API_KEY_COLUMNS,
        shown_once="api_key",
    ),
    Command(
        ("api-keys", "revoke"),
        "revoke an API key: refused by every platform process within 5 s",
        _key_id_arg,
        _api_keys_revoke,
        API_KEY_COLUMNS,
    ),
    Command(
        ("api-keys", "rotate"),
        "replace an API key: print the new one, once; the old one works for --overlap more",
        _rotate_args,
        _api_keys_rotate,
        API_KEY_COLUMNS,
        shown_once="api_key",
    ),
    Command(("issuer-keys", "list"), "the keys that sign voucher codes", none, _issuer_list, ISSUER_COLUMNS),
    Command(
        ("issuer-keys", "create"),
        "create an issuer key (the first becomes active)",
        none,
        _issuer_create,
        ISSUER_COLUMNS,
    ),
    Command(
        ("issuer-keys", "rotate"),
        "make a new key active; the previous one still verifies the codes it signed",
        none,
        _issuer_rotate,
        ISSUER_COLUMNS,
    ),
    Command(
        ("issuer-keys", "retire"),
        "retire a key: codes it signed are refused from now on",
        _kid_arg,
        _issuer_retire,
        ISSUER_COLUMNS,
    ),
    Command(
        ("enrolment-tokens", "create"),
        "a single-use token with which one store agent enrols; printed once",
        _token_args,
        _token_create,
        ("token_id", "expire_time"),
        shown_once="token",
    ),
    Command(
        ("agents", "list"),
        "the fleet: each agent's status, store, scanners, backlog, last seen and version (the default)",
        fleet.list_arguments,
        None,
        run=fleet.run_list,
        default=True,
    ),
    Command(
        ("agents", "describe"),
        "one agent in full: its scanners, backlog, round trip, clock offset, last errors",
        _agent_id_arg,
        None,
        run=fleet.run_describe,
    ),
    Command(
        ("agents", "check"),
        "one line and an exit status for monitoring: 0 OK, 1 backlogged, 2 stale, 3 cannot ask",
        fleet.check_arguments,
        None,
        run=fleet.run_check,
    ),
    Command(
        ("agents", "revoke"),
        "revoke an agent: its scans are refused from now on",
        _agent_id_arg,
        _agents_revoke,
        AGENT_COLUMNS,
    ),
)


def configure(group: argparse.ArgumentParser) -> None:
    """The `clearpoint ops` commands, one parser per COMMANDS entry."""
    group.description = (
        "Administer a running platform over its API with an operator's API key (--api-key, "
        "$CLEARPOINT_API_KEY or the config file; see `clearpoint ops whoami --help`)."
    )
    add_commands(group, COMMANDS)
