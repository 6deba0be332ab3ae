"""One server interceptor authenticates every call, applies the role policy, and turns refusals
into gRPC statuses with a google.rpc.ErrorInfo, so servicers never do either by hand."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from clearpoint.platform.auth import Authenticator, Principal, current_principal
from clearpoint.platform.errors import Refusal
from grpc_status import rpc_status

log = logging.getLogger(__name__)

# Standard services any client (and a load balancer's probe) may call without a key.
PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


# Policy entry for methods that authenticate by their own proof (an enrolment token, a device
# key's signature on every scan) rather than by an API key.
NO_API_KEY: frozenset[str] = frozenset({"(signed by the caller's own key)"})


def api_key_from(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "x-api-key":
            return value if isinstance(value, str) else None
        if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return value[7:].strip()
    return None


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        authenticator: Authenticator,
        read_connection: Callable[[], Any],
        policy: Mapping[str, frozenset[str]],
    ) -> None:
        self._auth = authenticator
        self._read = read_connection
        self._policy = policy
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(details)
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        # The servicer's handler for a method never changes, so its guarded form is built once.
        guarded = self._guarded[method] = self._guard(method, handler)
        return guarded

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal | None:
        if self._policy.get(method) is NO_API_KEY:
            return None
        api_key = api_key_from(context.invocation_metadata())
        if not api_key:
            raise Refusal("UNAUTHENTICATED", "no API key: send it as the x-api-key metadata entry")
        principal = await self._auth.authenticate(self._read, api_key)
        if principal is None:
            raise Refusal("UNAUTHENTICATED", "the API key is not valid")
        if principal.role not in self._policy.get(method, frozenset()):
            raise Refusal("PERMISSION_DENIED", f"the {principal.role} role may not call {method}")
        return principal

    @staticmethod
    async def _fail(method: str, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, Refusal):
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))
        log.error("internal error in %s", method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error; the platform logged it")

    def _guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        fail = self._fail
        deserialize = handler.request_deserializer

        def tolerant_deserialize(data: bytes) -> Any:
            # gRPC would answer a corrupt message with UNKNOWN and a logged traceback; hand the
            # handler a marker instead, so the caller hears INVALID_ARGUMENT and why.
            try:
                return deserialize(data)
            except Exception as exc:
                return _Undecodable(str(exc))

        async def admit(method: str, context: grpc.aio.ServicerContext, request: Any) -> Principal | None:
            if isinstance(request, _Undecodable):
                raise Refusal(
                    "FIELD_INVALID",
                    f"the request is not a valid message for {method}: {request.error}",
                    field="(request)",
                )
            return await self._admit(method, context)

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    token = current_principal.set(await admit(method, context, request))
                    try:
                        return await inner_uu(request, context)
                    finally:
                        current_principal.reset(token)
                except Exception as exc:
                    await fail(method, context, exc)

            return grpc.unary_unary_rpc_method_handler(unary_unary, tolerant_deserialize, handler.response_serializer)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    token = current_principal.set(await admit(method, context, request))
                    try:
                        async for item in inner_us(request, context):
                            yield item
                    finally:
                        current_principal.reset(token)
                except Exception as exc:
                    await fail(method, context, exc)

            return grpc.unary_stream_rpc_method_handler(unary_stream, tolerant_deserialize, handler.response_serializer)
        if handler.stream_stream:
            inner_ss = handler.stream_stream

            async def checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
                async for request in requests:
                    if isinstance(request, _Undecodable):
                        raise Refusal(
                            "FIELD_INVALID",
                            f"a message on the stream is not valid for {method}: {request.error}",
                            field="(request)",
                        )
                    yield request

            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                try:
                    token = current_principal.set(await self._admit(method, context))  # type: ignore[arg-type]
                    try:
                        async for item in inner_ss(checked(requests), context):
                            yield item
                    finally:
                        current_principal.reset(token)
                except Exception as exc:
                    await fail(method, context, exc)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, tolerant_deserialize, handler.response_serializer
            )
        raise NotImplementedError(f"no guard for the call shape of {method}")


class _Undecodable:
    """Stands in for a request message that did not parse."""

    def __init__(self, error: str) -> None:
        self.error = error
