"""Enrolment from the agent's side: make the device key, trade the operator's token for an agent id."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import grpc
from clearpoint.formats.scan_signatures import enrol_proof_message
from clearpoint.reasons import reason_of
from clearpoint.scanner_agent import identity as ident
from clearpoint.scanner_agent.uplink import UplinkSettings, make_channel
from clearpoint.v1 import agents_pb2, agents_pb2_grpc

log = logging.getLogger(__name__)


class EnrolError(Exception):
    """Enrolment failed; the message says why and what to do."""


def default_name() -> str:
    return socket.gethostname()[:200] or "agent"


async def enrol(settings: UplinkSettings, data_dir: Path, token: str, display_name: str = "") -> ident.Identity:
    """Enrol once; a retry after a lost answer (same token, same key) gets the same agent back."""
    try:
        existing = ident.load_identity(data_dir)
    except ident.IdentityError:
        existing = None
    if existing is not None:
        raise EnrolError(f"already enrolled as {existing.agent_id} for store {existing.store_id} ({data_dir})")
    try:
        key = ident.load_key(data_dir)
    except ident.IdentityError:
        if ident.key_path(data_dir).exists():
            raise
        key = ident.create_key(data_dir)
        log.info("created device key %s", ident.key_path(data_dir))
    name = display_name or default_name()
    request = agents_pb2.EnrolAgentRequest(
        token=token.strip(),
        public_key=ident.public_bytes(key),
        display_name=name,
        proof_signature=key.sign(enrol_proof_message(token.strip(), name)),
    )
    async with make_channel(settings) as channel:
        try:
            response = await agents_pb2_grpc.AgentServiceStub(channel).EnrolAgent(request, timeout=20)
        except grpc.aio.AioRpcError as exc:
            if not reason_of(exc) and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise EnrolError(
                    f"cannot reach the platform at {settings.target} ({exc.details()}): check that it runs and "
                    "that `platform` in the configuration names it; nothing was enrolled, run this again"
                ) from None
            raise EnrolError(f"the platform at {settings.target} refused enrolment: {exc.details()}") from None
    agent = response.agent
    identity = ident.Identity(agent.agent_id, agent.partner_id, agent.store_id, agent.display_name, settings.target)
    ident.save_identity(data_dir, identity)
    return identity
