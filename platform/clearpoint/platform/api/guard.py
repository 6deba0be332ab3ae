"""The guard: one server interceptor authenticates every call, applies each service's access policy
(edge.Service), and turns refusals into gRPC statuses with a google.rpc.ErrorInfo (api/reasons.py),
so servicers never do either by hand.

The caller's principal is set in the call's own context (grpc.aio runs every call in a task of its
own), so it is never reset across contexts, even when a stream is cancelled half-way.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from clearpoint.logfmt import REQUEST_ID
from clearpoint.platform.api.reasons import STATUS, to_status
from clearpoint.platform.core import metrics
from clearpoint.platform.core.database import DatabaseUnavailable
from clearpoint.platform.core.errors import Reason, Refusal
from clearpoint.platform.core.principals import Principal, current_principal
from clearpoint.platform.core.streams import StreamLimit
from clearpoint.platform.edge import Access, check_storable
from clearpoint.platform.partners.authentication import Authenticator
from grpc_status import rpc_status
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

_UNAVAILABLE = (
    "the platform's database is unreachable or dropped the connection; nothing is known to have been applied:"
    " send the same request again, with the same request_id, in a moment"
)

ServicerContext = grpc.aio.ServicerContext[Any, Any]
# grpc.aio serves the same handler objects as grpc, with coroutine functions in them; the type stubs
# describe grpc's (and make them generic, which they are not at run time), so the guard treats their
# callables as Any.
if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler

# Standard services any client (and a load balancer's probe) may call without a key.
PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def api_key_from(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "x-api-key":
            return value if isinstance(value, str) else None
        if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return value[7:].strip()
    return None


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_from(metadata: Any) -> str:
    """The caller's x-request-id where it is a sensible one (so its logs and ours share it), else a new one."""
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return secrets.token_hex(8)


class _Undecodable:
    """Stands in for a request message that did not parse."""

    def __init__(self, error: str) -> None:
        self.error = error


def _not_a_message(method: str, request: _Undecodable, where: str) -> Refusal:
    return Refusal(
        Reason.FIELD_INVALID, f"{where} is not a valid message for {method}: {request.error}", field="(request)"
    )


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        authenticator: Authenticator,
        read: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        policy: Mapping[str, Access],
        streams: StreamLimit,
    ) -> None:
        self._auth = authenticator
        self._read = read
        self._policy = policy
        self._streams = streams
        self._guarded: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method: str = details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(details)
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        # The servicer's handler for a method never changes, so its guarded form is built once.
        guarded = self._guarded[method] = self._guard(method, handler)
        return guarded

    async def _admit(self, method: str, context: ServicerContext) -> Principal | None:
        """Refuse the call unless its caller may make it; note who the caller is for the servicer,
        and the call's request id for every log line written while serving it."""
        REQUEST_ID.set(request_id_from(context.invocation_metadata()))
        access = self._policy.get(method)
        if access is not None and not access.api_key:
            return None  # the request carries its own proof (an enrolment token, a signed scan)
        api_key = api_key_from(context.invocation_metadata())
        if not api_key:
            raise Refusal(Reason.UNAUTHENTICATED, "no API key: send it as the x-api-key metadata entry")
        principal = await self._auth.authenticate(self._read, api_key)
        if principal is None:
            raise Refusal(Reason.UNAUTHENTICATED, "the API key is not valid")
        if access is None or not access.admits(principal.role):
            raise Refusal(Reason.PERMISSION_DENIED, f"the {principal.role} role may not call {method}")
        current_principal.set(principal)
        return principal

    def _hold(self, principal: Principal | None) -> AbstractContextManager[None]:
        """A stream's place among its caller's open streams; a stream proving its own caller
        (a store agent's) takes its place in its servicer, once that caller is known."""
        if principal is None:
            return contextlib.nullcontext()
        return self._streams.hold(principal, f"{principal.role} {principal.partner_id} ({principal.name})")

    @staticmethod
    async def _fail(method: str, context: ServicerContext, exc: BaseException) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, DatabaseUnavailable):  # logged once per outage by the database and health, not per call
            log.debug("%s: %s", method, exc)
            exc = Refusal(Reason.DATABASE_UNAVAILABLE, _UNAVAILABLE)
        if isinstance(exc, Refusal):
            metrics.RPCS.labels(method, STATUS[exc.reason].name).inc()
            await context.abort_with_status(rpc_status.to_status(to_status(exc)))
        metrics.RPCS.labels(method, "INTERNAL").inc()
        log.error("internal error in %s", method, exc_info=exc)
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error; the platform logged it as request {REQUEST_ID.get()}"
        )

    def _guard(self, method: str, original: Handler) -> Handler:
        fail, admit, hold = self._fail, self._admit, self._hold
        handler: Any = original
        deserialize = handler.request_deserializer

        def tolerant_deserialize(data: bytes) -> Any:
            # gRPC would answer a corrupt message with UNKNOWN and a logged traceback; hand the
            # handler a marker instead, so the caller hears INVALID_ARGUMENT and why.
            try:
                return deserialize(data)
            except Exception as exc:
                return _Undecodable(str(exc))

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            seconds = metrics.RPC_SECONDS.labels(method)
            served = metrics.RPCS.labels(method, "OK")

            async def unary_unary(request: Any, context: Any) -> Any:
                started = time.perf_counter()
                try:
                    if isinstance(request, _Undecodable):
                        raise _not_a_message(method, request, "the request")
                    await admit(method, context)
                    check_storable(request)
                    response = await inner_uu(request, context)
                    served.inc()
                    return response
                except Exception as exc:
                    await fail(method, context, exc)
                finally:
                    seconds.observe(time.perf_counter() - started)

            return grpc.unary_unary_rpc_method_handler(unary_unary, tolerant_deserialize, handler.response_serializer)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                try:
                    if isinstance(request, _Undecodable):
                        raise _not_a_message(method, request, "the request")
                    principal = await admit(method, context)
                    check_storable(request)
                    with hold(principal):
                        async for item in inner_us(request, context):
                            yield item
                    metrics.RPCS.labels(method, "OK").inc()
                except Exception as exc:
                    await fail(method, context, exc)

            guarded_us: Any = unary_stream
            return grpc.unary_stream_rpc_method_handler(guarded_us, tolerant_deserialize, handler.response_serializer)
        if handler.stream_stream:
            inner_ss = handler.stream_stream

            async def checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
                async for request in requests:
                    if isinstance(request, _Undecodable):
                        raise _not_a_message(method, request, "a message on the stream")
                    yield request

            async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
                try:
                    principal = await admit(method, context)
                    with hold(principal):
                        async for item in inner_ss(checked(requests), context):
                            yield item
                    metrics.RPCS.labels(method, "OK").inc()
                except Exception as exc:
                    await fail(method, context, exc)

            guarded_ss: Any = stream_stream
            return grpc.stream_stream_rpc_method_handler(guarded_ss, tolerant_deserialize, handler.response_serializer)
        raise NotImplementedError(f"no guard for the call shape of {method}")
