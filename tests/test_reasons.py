"""Refusal reasons: the domain's Reason enum, the edge's status table and errors.proto's Reason
enum name the same set, in both directions, and a refusal survives the trip to the wire and back."""

from __future__ import annotations

import grpc
import pytest
from clearpoint.platform.api.reasons import DOMAIN, STATUS, from_status, to_status
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.edge import reason_enum
from clearpoint.v1 import errors_pb2
from google.rpc import error_details_pb2

WIRE_NAMES = {name.removeprefix("REASON_") for name in errors_pb2.Reason.keys() if name != "REASON_UNSPECIFIED"}


def test_the_domain_names_every_wire_reason_and_no_other() -> None:
    assert {r.value for r in Reason} == WIRE_NAMES


def test_the_edge_maps_every_reason_and_no_other() -> None:
    assert set(STATUS) == set(Reason)
    assert all(code is not grpc.StatusCode.OK and code is not grpc.StatusCode.INTERNAL for code in STATUS.values())


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_a_refusal_survives_the_wire(reason: Reason) -> None:
    refusal = Refusal(reason, f"because {reason.value.lower()}", field="x")
    status = to_status(refusal)
    assert status.code == STATUS[reason].value[0]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.domain == DOMAIN and info.reason == reason.value
    back = from_status(status)
    assert (back.reason, back.message, back.metadata) == (reason, refusal.message, {"field": "x"})
    assert errors_pb2.Reason.Name(reason_enum(reason)) == f"REASON_{reason.value}"


def test_a_stored_refusal_reads_back_the_same() -> None:
    refusal = Refusal(Reason.FIELD_INVALID, "store_id is too long", field="store_id")
    back = Refusal.from_json(refusal.to_json())
    assert (back.reason, back.message, back.metadata) == (refusal.reason, refusal.message, refusal.metadata)


def test_an_unknown_reason_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(ValueError):
        Refusal("NOT_A_REASON", "x")
