"""A channel's integration as its own process, for tests that kill it: it consumes the channel's
instruction stream and, unless told to hang, accepts each side. It prints "got <exchange id>"
when an instruction arrives and "answered <exchange id>" once the platform took the answer."""

from __future__ import annotations

import asyncio
import secrets
import sys

import grpc
from clearpoint.v1 import points_pb2, points_pb2_grpc


async def main(target: str, api_key: str, hang: bool) -> None:
    metadata = (("x-api-key", api_key),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = points_pb2_grpc.PointsServiceStub(channel)
        async for message in stub.WatchInstructions(points_pb2.WatchInstructionsRequest(), metadata=metadata):
            exchange_id = message.instruction.exchange_id
            print(f"got {exchange_id}", flush=True)
            if hang:  # as if the debit were done in the channel's own books and the process died now
                await asyncio.Event().wait()
            await stub.ResolveExchange(
                points_pb2.ResolveExchangeRequest(
                    request_id=secrets.token_hex(8), exchange_id=exchange_id, accept=True
                ),
                metadata=metadata,
            )
            print(f"answered {exchange_id}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "hang"))
