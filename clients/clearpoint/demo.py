"""`clearpoint demo`: a real platform on the embedded SQLite database, walked through a campaign,
then a real store agent reading a virtual serial scanner.

Everything goes over real gRPC on a loopback port: an operator creates an issuer key and a partner;
the partner creates a campaign, issues vouchers, redeems one at a store, is refused the second
redemption and a forged code, and watches the campaign's counts. Then a store agent
(`clearpoint agent run`, a separate process) enrols with a single-use token and reads a virtual
serial scanner on a pseudo-terminal at 9600 baud: each scan is signed, journaled, streamed to the
platform and answered on the agent's console, and the claim book lists them all. Last, points: two
partners run points programmes, a member registers and links an account in each, gets a quote and
exchanges miles for stars, each programme doing its side in its own books (clearpoint/demo_points.py).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

from clearpoint.cliutil import env_option, setup_logging


def configure(demo: argparse.ArgumentParser) -> None:
    """The `clearpoint demo` command."""
    demo.description = __doc__
    demo.formatter_class = argparse.RawDescriptionHelpFormatter
    env_option(
        demo,
        "--database",
        "CLEARPOINT_DEMO_DATABASE_URL",
        "",
        "database URL; empty means a fresh SQLite file in a temporary folder",
    )
    env_option(demo, "--log-level", "CLEARPOINT_LOG_LEVEL", "warning", "platform log level")
    demo.set_defaults(run=_run)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    with tempfile.TemporaryDirectory(prefix="clearpoint-demo-") as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'clearpoint.sqlite3'}"
        return asyncio.run(_walkthrough(url))


async def _walkthrough(url: str) -> int:
    import grpc
    from clearpoint.platform.api import server
    from clearpoint.platform.api.reasons import from_status
    from clearpoint.platform.app import Platform
    from clearpoint.platform.core.principals import Role
    from clearpoint.platform.keys.master_key import MasterKey
    from clearpoint.platform.partners import accounts
    from clearpoint.v1 import (
        campaigns_pb2,
        campaigns_pb2_grpc,
        errors_pb2,
        issuer_keys_pb2,
        issuer_keys_pb2_grpc,
        partners_pb2,
        partners_pb2_grpc,
        redemption_pb2,
        redemption_pb2_grpc,
    )
    from google.protobuf import timestamp_pb2
    from grpc_status import rpc_status

    def rid() -> str:
        return secrets.token_hex(8)

    def ts(seconds: float) -> timestamp_pb2.Timestamp:
        t = timestamp_pb2.Timestamp()
        t.FromNanoseconds(int(seconds * 1e9))
        return t

    platform = await Platform.open(url, master_key=MasterKey(secrets.token_bytes(32)))
    running = await server.start(platform, "127.0.0.1:0")
    target = f"127.0.0.1:{running.port}"
    _say(f"1. The platform is serving gRPC on {target}, database {url.split('///')[-1]} (SQLite, WAL).")
    async with platform.db.write() as conn:
        _, op_key = await accounts.create(conn, "demo-operator", Role.OPERATOR, platform.clock())
    channel = grpc.aio.insecure_channel(target)
    op = (("x-api-key", op_key),)
    try:
        keys = issuer_keys_pb2_grpc.IssuerKeyServiceStub(channel)
        key = (await keys.CreateIssuerKey(issuer_keys_pb2.CreateIssuerKeyRequest(request_id=rid()), metadata=op)).key
        _say(
            f"2. An operator created issuer key {key.key_id} (Ed25519; the private half stays sealed in the key store)."
        )
        partners = partners_pb2_grpc.PartnerServiceStub(channel)
        created = await partners.CreatePartner(
            partners_pb2.CreatePartnerRequest(request_id=rid(), name="Fizz Drinks Ltd"), metadata=op
        )
        md = (("x-api-key", created.api_key),)
        _say(f"3. Partner {created.partner.name!r} ({created.partner.partner_id}) got an API key.")

        campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
        now = time.time()
        campaign = (
            await campaigns.CreateCampaign(
                campaigns_pb2.CreateCampaignRequest(
                    request_id=rid(),
                    name="Summer cola",
                    prize_description="one free 0.5 l Fizz Cola",
                    valid_from=ts(now - 60),
                    valid_until=ts(now + 30 * 86400),
                    store_ids=["store-042"],
                    total_stock=100,
                    uses_per_voucher=1,
                ),
                metadata=md,
            )
        ).campaign
        _say(
            f"4. It created campaign {campaign.campaign_id}: {campaign.prize_description!r}, "
            f"{campaign.total_stock} prizes, redeemable at store-042."
        )
        issued = await campaigns.IssueVouchers(
            campaigns_pb2.IssueVouchersRequest(request_id=rid(), campaign_id=campaign.campaign_id, count=3),
            metadata=md,
        )
        code = issued.vouchers[0].code
        _say(
            f"5. It issued {len(issued.vouchers)} vouchers. The first code ({len(code)} characters, "
            "fits a version-7 QR code in alphanumeric mode):"
        )
        _say(f"     {code}")

        watch = campaigns.WatchCampaignProgress(
            campaigns_pb2.WatchCampaignProgressRequest(campaign_id=campaign.campaign_id), metadata=md
        )
        await watch.read()
        redemption = redemption_pb2_grpc.RedemptionServiceStub(channel)
        preview = await redemption.ValidateCode(
            redemption_pb2.ValidateCodeRequest(code=code, store_id="store-042"), metadata=md
        )
        _say(f"6. The cashier at store-042 scans it. Preview: redeemable={preview.redeemable}: {preview.message}.")
        ok = await redemption.Redeem(
            redemption_pb2.RedeemRequest(request_id=rid(), code=code, store_id="store-042"), metadata=md
        )
        _say(f"7. Redeemed: {ok.redemption.redemption_id}. Hand over: {ok.claim.prize_description}.")
        update = await asyncio.wait_for(watch.read(), 2)
        assert isinstance(update, campaigns_pb2.WatchCampaignProgressResponse), "the watch ended early"
        live = update.progress
        _say(
            f"   The live campaign stream already shows: redeemed={live.redeemed}, "
            f"remaining stock={live.remaining_stock}."
        )

        async def refused(label: str, request: redemption_pb2.RedeemRequest) -> None:
            try:
                await redemption.Redeem(request, metadata=md)
            except grpc.aio.AioRpcError as exc:
                status = rpc_status.from_call(exc)
                why = from_status(status) if status else None
                details = (exc.details() or "").rstrip(".")
                _say(f"{label} refused: {exc.code().name} {why.reason if why else ''}: {details}.")
                return
            _say(f"{label} was NOT refused: something is wrong")
            raise SystemExit(1)

        await refused(
            "8. The same voucher scanned again is",
            redemption_pb2.RedeemRequest(request_id=rid(), code=code, store_id="store-042"),
        )
        forged = code[:40] + ("A" if code[40] != "A" else "B") + code[41:]
        await refused(
            "9. A forged code (one character changed) is",
            redemption_pb2.RedeemRequest(request_id=rid(), code=forged, store_id="store-042"),
        )
        await refused(
            "10. The second voucher at a store outside the campaign is",
            redemption_pb2.RedeemRequest(request_id=rid(), code=issued.vouchers[1].code, store_id="store-999"),
        )
        final = (
            await campaigns.GetCampaign(campaigns_pb2.GetCampaignRequest(campaign_id=campaign.campaign_id), metadata=md)
        ).progress
        refusals = ", ".join(
            f"{r.count}x {errors_pb2.Reason.Name(r.reason).removeprefix('REASON_')}" for r in final.refused
        )
        _say(
            f"11. Campaign now: issued={final.issued} redeemed={final.redeemed} "
            f"remaining={final.remaining_stock}; refused: {refusals}."
        )
        watch.cancel()
        await _at_the_counter(target, op, created.partner.partner_id, [v.code for v in issued.vouchers], forged)
        from clearpoint import demo_points

        await demo_points.walkthrough(target, op, _say, 16)
        _say(
            "Done. `clearpoint platform serve --help` runs the platform for real; `clearpoint agent --help` the agent."
        )
    finally:
        await channel.close()
        await running.stop(0)
        await platform.close()
    return 0


async def _at_the_counter(
    target: str, op: tuple[tuple[str, str], ...], partner_id: str, codes: list[str], forged: str
) -> None:
    """A real agent process, enrolled with a token, reading a virtual serial scanner on a pty."""
    import grpc
    from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
    from clearpoint.v1 import agents_pb2, agents_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        token = (
            await agents_pb2_grpc.AgentServiceStub(channel).CreateEnrolmentToken(
                agents_pb2.CreateEnrolmentTokenRequest(
                    request_id=secrets.token_hex(8), partner_id=partner_id, store_id="store-042"
                ),
                metadata=op,
            )
        ).token
    _say()
    _say("At the counter of store-042:")
    _say("12. The operator created a single-use enrolment token for the store's agent.")
    with tempfile.TemporaryDirectory(prefix="clearpoint-agent-") as tmp:
        scanner = VirtualScanner(Path(tmp) / "usb-Virtual_Barcode_Scanner_0001-if00")
        config = Path(tmp) / "agent.toml"
        config.write_text(
            "[agent]\n"
            f'platform = "{target}"\n'
            'data_dir = "agent-data"\n'
            'name = "store-042 till PC"\n'
            "answer_wait_seconds = 3\n\n"
            "[[scanner]]\n"
            'id = "till-1"\n'
            'type = "serial"\n'
            f'path = "{scanner.port}"\n'
            "baud = 9600\n"
            'good_read = "\\u0007"\n'
        )
        agent = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "clearpoint.cli",
            "agent",
            "run",
            "--config",
            str(config),
            "--token",
            token,
            "--log-level",
            "info",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        ready = {"link": asyncio.Event(), "scanner": asyncio.Event(), "answered": asyncio.Event()}
        lines: list[str] = []

        async def relay_console() -> None:
            assert agent.stdout is not None
            async for raw in agent.stdout:
                lines.append(raw.decode().rstrip())
                if len(lines) >= 6:
                    ready["answered"].set()
                _say(f"     till | {raw.decode().rstrip()}")

        async def watch_log() -> None:
            assert agent.stderr is not None
            async for raw in agent.stderr:
                line = raw.decode().rstrip()
                if "platform link up" in line:
                    ready["link"].set()
                if "scanner till-1 connected" in line:
                    ready["scanner"].set()
                if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
                    _say(f"     agent log | {line.split(': ', 1)[-1]}")

        tasks = [asyncio.create_task(relay_console()), asyncio.create_task(watch_log())]
        try:
            await asyncio.wait_for(asyncio.gather(ready["link"].wait(), ready["scanner"].wait()), 30)
            _say(
                "13. The agent (a separate `clearpoint agent run` process) made its Ed25519 device key, enrolled, "
                f"and opened the scanner at {scanner.port} (a pseudo-terminal standing in for /dev/serial/by-id/...)."
            )
            _say("14. The cashier scans, at 9600 baud; one console line per scan:")
            scans = [
                ("]Q1", codes[2]),  # a fresh voucher
                ("]Q1", codes[2]),  # the same voucher again
                ("]Q1", codes[0]),  # redeemed earlier over the API
                ("]E0", "4006381333931"),  # a product's EAN-13
                ("]Q1", forged),
            ]
            for symbology, text in scans:
                await scanner.send(f"{symbology}{text}\r".encode(), baud=9600)
                await asyncio.sleep(0.3)
            await scanner.send(bytes([0x00, 0xFF, 0x80, 0xFE]) * 8 + b"\r", baud=9600)  # line noise
            await scanner.send(f"]Q1{codes[1]}\r".encode(), baud=9600)
            try:
                await asyncio.wait_for(ready["answered"].wait(), 20)
            except TimeoutError:
                _say("   (not every scan was answered within 20 s)")
            beeps = (await scanner.wait_feedback(2, within=5)).count(b"\x07")
            _say(f"   The scanner got {beeps} good-read beep(s) back, one per accepted scan.")
        finally:
            if agent.returncode is None:
                agent.terminate()
            await agent.wait()
            for task in tasks:
                task.cancel()
            scanner.close()
        claims = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "clearpoint.cli",
            "agent",
            "claims",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        book, _ = await claims.communicate()
        _say("15. The store's claim book (`clearpoint agent claims`; -o csv exports it):")
        for line in book.decode().splitlines():
            _say(f"     {line}")


if __name__ == "__main__":
    sys.exit(_run(argparse.Namespace(database="", log_level="warning")))
