"""`clearpoint statements ...`: a partner's settlement statements, fetched over gRPC with its API
key, verified against the platform's statement key, and exported as CSV or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, cast

import grpc
from clearpoint import connection
from clearpoint.cliutil import add_subcommands
from clearpoint.formats import statements as form
from clearpoint.v1 import clearing_pb2 as C
from clearpoint.v1 import clearing_pb2_grpc


def configure(group: argparse.ArgumentParser) -> None:
    group.description = (
        "Settlement statements: list them, export one as CSV or JSON once its signature checks out, "
        "and verify an exported one."
    )
    commands = add_subcommands(group)

    listed = commands.add_parser("list", help="the caller's statements, newest period first")
    listed.add_argument("--channel", default="", help="an operator: one channel's statements only")
    listed.add_argument("--limit", type=int, default=20, help="at most this many [20]")
    listed.add_argument("-o", "--output", choices=("table", "json"), default="table", help="how to print [table]")
    connection.options(listed)
    listed.set_defaults(run=_list)

    export = commands.add_parser(
        "export",
        help="fetch one statement, verify its signature, and write it as CSV or JSON",
        description="Fetch a statement, verify it under the platform's statement key (from the platform, "
        "or --public-key to pin it), and write it: CSV (a row per line and per currency's total) or "
        "JSON (the statement with its signature, which `clearpoint statements verify` checks later).",
    )
    export.add_argument("statement_id", help="stm_...")
    export.add_argument("--format", choices=("csv", "json"), default="json", help="[json]")
    export.add_argument("--out", default="-", help="file to write ('-': stdout) [-]")
    export.add_argument("--public-key", default="", help="the statement key to trust, 64 hex digits")
    connection.options(export)
    export.set_defaults(run=_export)

    verify = commands.add_parser("verify", help="check an exported JSON statement's signature, offline")
    verify.add_argument("file", help="a statement written by `export --format json`")
    verify.add_argument("--public-key", required=True, help="the platform's statement key, 64 hex digits")
    verify.set_defaults(run=_verify)


def _public_key(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("--public-key is the 32-byte Ed25519 key as 64 hex digits")
    return raw


async def _fetch(where: connection.Target, work: Any) -> Any:
    async with where.channel() as channel:
        return await work(clearing_pb2_grpc.ClearingServiceStub(channel), where.metadata)


def _fail(exc: BaseException) -> int:
    line = connection.refusal_line(exc) if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
    print(f"error: {line}", file=sys.stderr)
    return 1


def _list(args: argparse.Namespace) -> int:
    async def work(stub: Any, metadata: Any) -> C.ListStatementsResponse:
        request = C.ListStatementsRequest(channel_id=args.channel, page_size=args.limit)
        return cast(C.ListStatementsResponse, await stub.ListStatements(request, metadata=metadata))

    try:
        page = asyncio.run(_fetch(connection.target(args), work))
    except (grpc.aio.AioRpcError, ValueError) as exc:
        return _fail(exc)
    rows = [
        {
            "statement_id": s.statement_id,
            "channel": s.channel_id,
            "period": s.period_number,
            "end": s.period_end.ToJsonString(),
            "net_to_channel": {t.currency: t.net_to_channel for t in s.totals},
        }
        for s in page.statements
    ]
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'STATEMENT':<22}  {'CHANNEL':<18}  {'PERIOD':>6}  {'END':<22}  NET TO CHANNEL")
    for r in rows:
        nets = ", ".join(f"{cur} {net}" for cur, net in r["net_to_channel"].items()) or "-"
        print(f"{r['statement_id']:<22}  {r['channel']:<18}  {r['period']:>6}  {r['end']:<22}  {nets}")
    return 0


def _export(args: argparse.Namespace) -> int:
    async def work(stub: Any, metadata: Any) -> tuple[C.Statement, bytes]:
        got = await stub.GetStatement(C.GetStatementRequest(statement_id=args.statement_id), metadata=metadata)
        if args.public_key:
            return got.statement, _public_key(args.public_key)
        key = await stub.GetStatementKey(C.GetStatementKeyRequest(), metadata=metadata)
        return got.statement, key.public_key

    try:
        statement, public_key = asyncio.run(_fetch(connection.target(args), work))
        body = form.verify(statement.content, statement.signature, public_key)
    except (grpc.aio.AioRpcError, ValueError) as exc:  # StatementInvalid is a ValueError
        return _fail(exc)
    if args.format == "csv":
        text = form.to_csv(body)
    else:
        text = json.dumps(form.to_envelope(statement.content, statement.signature, statement.key_id), indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        print(f"statement {statement.statement_id} verified and written to {args.out}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    try:
        public_key = _public_key(args.public_key)
        envelope = json.loads(Path(args.file).read_text(encoding="utf-8"))
        if not isinstance(envelope, dict):
            raise form.StatementInvalid("not an exported statement: not a JSON object")
        content, signature, _ = form.from_envelope(envelope)
        body = form.verify(content, signature, public_key)
    except (OSError, ValueError) as exc:
        return _fail(exc)
    print(f"valid: statement {body['statement_id']} of channel {body['channel']['id']}, period {body['period']['id']}")
    return 0
