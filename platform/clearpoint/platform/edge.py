"""What every room's servicer and wire module share: the declaration of a service that the API
registry lists, who may call it, and the conversions of times, reasons and request fingerprints.

Only servicer and wire modules (and the API edge) import this; domain code never does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import grpc
from clearpoint.platform.core.errors import Reason, field_invalid
from clearpoint.platform.core.once import RequestKey, run_once
from clearpoint.platform.core.principals import Role, current_principal
from clearpoint.v1 import errors_pb2
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from clearpoint.platform.app import Platform

M = TypeVar("M", bound=Message)


class Mutation(Protocol):
    """A request message of a mutating call: it carries the caller's request_id."""

    @property
    def request_id(self) -> str: ...

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a method: callers with an API key of one of `roles`, or (without an API key)
    callers whose request carries its own proof, such as an enrolment token or a signed scan."""

    roles: frozenset[Role]
    api_key: bool = True

    def admits(self, role: Role) -> bool:
        return role in self.roles


# The context a servicer method gets; servicers read nothing from it (the guard did that already).
Context = grpc.aio.ServicerContext[Any, Any]

OPERATORS = Access(frozenset({Role.OPERATOR}))
PARTNERS = Access(frozenset({Role.OPERATOR, Role.PARTNER}))
OWN_PROOF = Access(frozenset(), api_key=False)


@dataclass(frozen=True, slots=True)
class Service:
    """One gRPC service of the platform: everything the server, reflection, health checking, the
    guard's policy and a test client need, declared once in the service's own room."""

    descriptor: ServiceDescriptor
    servicer: Callable[[Platform], Any]
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    stub: Callable[[grpc.aio.Channel], Any]
    client_name: str  # the attribute a test or demo client reaches the stub by
    access: Access  # for every method not named in `overrides`
    overrides: Mapping[str, Access] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.overrides) - {m.name for m in self.descriptor.methods}
        if unknown:
            raise ValueError(f"{self.descriptor.full_name} has no method {', '.join(sorted(unknown))}")

    @property
    def name(self) -> str:
        return self.descriptor.full_name

    def policy(self) -> dict[str, Access]:
        """Access by full method path (/package.Service/Method), as the server sees calls."""
        return {f"/{self.name}/{m.name}": self.overrides.get(m.name, self.access) for m in self.descriptor.methods}


def to_timestamp(us: int | None) -> timestamp_pb2.Timestamp | None:
    if us is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.ToMicroseconds()


# What both databases can hold, checked on every request before a servicer sees it: text without NUL
# (PostgreSQL's text types cannot store it; SQLite would, and the two must not differ), and the times
# protobuf's well-known types allow (0001-01-01 to 9999-12-31, nanos inside one second), which also
# fit the microsecond integers the tables keep.
_SECONDS = (-62_135_596_800, 253_402_300_799)
_DURATION_SECONDS = 315_576_000_000


def check_storable(message: Message, path: str = "") -> None:
    """Refuse (FIELD_INVALID, naming the field) a request that no database could store as given."""
    for descriptor, value in message.ListFields():
        name = f"{path}{descriptor.name}"
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            keys, values = list(value.keys()), list(value.values())
            _check_texts(name, [k for k in keys if isinstance(k, str)] + [v for v in values if isinstance(v, str)])
            for item in values:
                if isinstance(item, Message):
                    _check_message(name, item)
        elif descriptor.message_type is not None:
            for item in list(value) if descriptor.is_repeated else [value]:
                _check_message(name, item)
        elif descriptor.type == FieldDescriptor.TYPE_STRING:
            _check_texts(name, list(value) if descriptor.is_repeated else [value])


def _check_message(name: str, item: Message) -> None:
    full = item.DESCRIPTOR.full_name
    if full == "google.protobuf.Timestamp":
        stamp = cast(timestamp_pb2.Timestamp, item)
        seconds, nanos = stamp.seconds, stamp.nanos
        if not (_SECONDS[0] <= seconds <= _SECONDS[1] and 0 <= nanos < 1_000_000_000):
            raise field_invalid(name, f"{name} is not a time between years 1 and 9999 (nanos 0 to 999999999)")
    elif full == "google.protobuf.Duration":
        span = cast(duration_pb2.Duration, item)
        seconds, nanos = span.seconds, span.nanos
        if abs(seconds) > _DURATION_SECONDS or abs(nanos) >= 1_000_000_000 or seconds * nanos < 0:
            raise field_invalid(name, f"{name} is not a duration protobuf allows")
    else:
        check_storable(item, f"{name}.")


def _check_texts(name: str, texts: list[str]) -> None:
    if any("\x00" in text for text in texts):
        raise field_invalid(name, f"{name} contains a NUL character, which cannot be stored")


def to_duration(us: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMicroseconds(us)
    return duration


def reason_enum(reason: Reason | str | None) -> errors_pb2.Reason:
    if not reason:
        return errors_pb2.REASON_UNSPECIFIED
    return cast(errors_pb2.Reason, errors_pb2.Reason.Value(f"REASON_{reason}"))


def fingerprint(request: Mutation | Message) -> bytes:
    """SHA-256 of a request's deterministic serialization, request_id included: a replay's fields match."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


async def once(
    p: Platform,
    method: str,
    request: Mutation,
    response_type: type[M],
    work: Callable[[AsyncConnection], Awaitable[M]],
) -> M:
    """Run a mutating call exactly once for the caller's request_id (core.once), its response stored as bytes."""
    key = RequestKey(current_principal.get().partner_id, method, request.request_id)
    return await run_once(
        p.db, p.clock, key, fingerprint(request), work, response_type.SerializeToString, response_type.FromString
    )
