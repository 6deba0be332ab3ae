"""The fleet as an operator sees it, all real processes: a platform on PostgreSQL with two workers,
two store agents reading virtual serial scanners (one of them behind a link the test can cut or
make lose answers), and only the CLI to look at them: the table, `-o json`, `describe`, `check`,
`--watch` in a pseudo-terminal, and the metrics endpoints of the platform and an agent."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from clearpoint.scanner_agent.virtual_scanner import VirtualScanner
from clearpoint.v1 import agents_pb2, agents_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.agent_helpers import write_config
from tests.netproxy import Proxy
from tests.processes import Proc, agent_process, free_port
from tests.test_readme_walk import _wait_serving

CLI = [sys.executable, "-m", "clearpoint.cli"]
HEARTBEAT_S, STALE_S = 1, 4


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, by name and labels."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _eventually(what: str, test: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = test()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.1)


class Fleet:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp = tmp_path
        self.port, self.metrics_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOINT_")}
        self.env.update(
            CLEARPOINT_DATABASE_URL=database_url,
            CLEARPOINT_MASTER_KEY_FILE=str(tmp_path / "master.key"),
            CLEARPOINT_LISTEN=f"127.0.0.1:{self.port}",
            CLEARPOINT_PLATFORM=f"127.0.0.1:{self.port}",
            CLEARPOINT_LOG_LEVEL="warning",
            XDG_CONFIG_HOME=str(tmp_path / "config"),
        )

    def cli(self, *argv: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, *argv], env=self.env, capture_output=True, text=True, timeout=60)
        if expect is not None:
            assert done.returncode == expect, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, *argv: str) -> Any:
        return json.loads(self.cli(*argv, "-o", "json").stdout)

    def check(self, *flags: str, status: int) -> subprocess.CompletedProcess[str] | None:
        """`clearpoint ops agents check`, when it exits with `status`."""
        done = self.cli("ops", "agents", "check", *flags, expect=None)
        return done if done.returncode == status else None

    def agent(self, agent_id: str) -> agents_pb2.Agent:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = agents_pb2_grpc.AgentServiceStub(channel)
            key = (("x-api-key", self.env["CLEARPOINT_API_KEY"]),)
            return stub.GetAgent(agents_pb2.GetAgentRequest(agent_id=agent_id), metadata=key, timeout=5).agent


def _scan(scanner: VirtualScanner, *codes: str) -> None:
    async def send() -> None:
        for code in codes:
            await scanner.send(code.encode() + b"\r", baud=115200)

    asyncio.run(send())


def test_a_fleet_seen_through_the_cli(tmp_path: Path, own_pg_url: str) -> None:
    f = Fleet(tmp_path, own_pg_url)
    f.env["CLEARPOINT_API_KEY"] = f.cli("platform", "create-operator", "--name", "ops").stdout.strip()
    serve = Proc(
        [
            *CLI,
            "platform",
            "serve",
            "--workers",
            "2",
            "--agent-heartbeat-seconds",
            str(HEARTBEAT_S),
            "--agent-stale-after-seconds",
            str(STALE_S),
            "--metrics-listen",
            f"127.0.0.1:{f.metrics_port}",
        ],
        f.env,
    )
    serve.start()
    scanners: list[VirtualScanner] = []
    agents: list[Proc] = []
    proxy: Proxy | None = None
    try:
        _wait_serving(f.port)
        f.cli("ops", "issuer-keys", "create")
        partner = f.json("ops", "partners", "create", "Acme Stores")
        as_partner = ("--api-key", partner["api_key"])
        campaign = f.json("campaigns", "create", "Fleet mugs", "--prize", "A mug", "--stock", "100", *as_partner)
        codes = f.cli("campaigns", "issue", campaign["campaign_id"], "--count", "16", *as_partner).stdout.splitlines()
        assert len(codes) == 16

        proxy = Proxy(f.port)
        configs = []
        for store, target, extra in (
            ("store-a", f.port, {"metrics_listen": f"127.0.0.1:{free_port()}"}),
            ("store-b", proxy.port, {"metrics_listen": f"127.0.0.1:{free_port()}", "answer_timeout_seconds": 3}),
        ):
            home = tmp_path / store
            home.mkdir()
            scanner = VirtualScanner(home / "usb-Virtual_Scanner-if00")
            scanners.append(scanner)
            token = f.cli("ops", "enrolment-tokens", "create", "--partner", partner["partner_id"], "--store", store)
            config = write_config(
                home,
                f"127.0.0.1:{target}",
                [{"id": "till-1", "type": "serial", "path": scanner.port, "baud": 115200}],
                reconnect_initial_seconds=0.1,
                reconnect_max_seconds=0.5,
                **extra,
            )
            configs.append((config, extra["metrics_listen"]))
            agents.append(agent_process(config, token.stdout.strip()))
            agents[-1].start()
        scanner_a, scanner_b = scanners

        # Both online, each scanner connected: the table, the JSON, and `check`.
        def both_online() -> list[dict[str, Any]] | None:
            listed = f.json("ops", "agents")
            ok = len(listed) == 2 and all(
                # Online comes with the stream; the heartbeat with the scanners follows it.
                a["status"]["health"] == "online"
                and (a["status"].get("heartbeat", {}).get("scanners") or [{}])[0].get("connected")
                for a in listed
            )
            return listed if ok else None

        listed = _eventually("both agents online", both_online)
        by_store = {a["store_id"]: a["agent_id"] for a in listed}
        table = f.cli("ops", "agents").stdout.splitlines()
        assert table[0].split() == ["AGENT", "ID", "STORE", "STATUS", "SCANNERS", "BACKLOG", "LAST", "SEEN", "VERSION"]
        assert all(" online " in line and " 1/1 " in line for line in table[1:]) and len(table) == 3
        healthy = f.cli("ops", "agents", "check")
        assert healthy.stdout.startswith("OK: 2 agents online")

        # Scans and redemptions, counted by the platform's metrics (summed over both workers).
        _scan(scanner_a, *codes[:3], "4006381333931")
        _eventually(
            "4 scans answered",
            lambda: (
                _metrics(f.metrics_port).get(("clearpoint_scans_total", (("outcome", "accepted"),))) == 3
                and _metrics(f.metrics_port).get(("clearpoint_scans_total", (("outcome", "not_a_voucher"),))) == 1
            ),
        )
        for code in codes[3:5]:
            f.cli("vouchers", "redeem", code, "--store", "store-a", *as_partner)
        f.cli("vouchers", "redeem", codes[3], "--store", "store-a", *as_partner, expect=1)  # already redeemed
        platform_metrics = _metrics(f.metrics_port)
        assert platform_metrics[("clearpoint_redemptions_total", (("outcome", "accepted"), ("via", "scan")))] == 3
        assert platform_metrics[("clearpoint_redemptions_total", (("outcome", "accepted"), ("via", "api")))] == 2
        refused = (("outcome", "voucher_already_redeemed"), ("via", "api"))
        assert platform_metrics[("clearpoint_redemptions_total", refused)] == 1
        assert platform_metrics[("clearpoint_agent_streams", ())] == 2
        assert platform_metrics[("clearpoint_database_up", ())] == 1
        agent_metrics = _metrics(int(configs[0][1].rsplit(":", 1)[1]))
        assert agent_metrics[("clearpoint_agent_scans_total", (("scanner", "till-1"),))] == 4
        assert agent_metrics[("clearpoint_agent_answers_total", (("outcome", "accepted"),))] == 3
        assert agent_metrics[("clearpoint_agent_link_up", ())] == 1

        # A scanner unplugged shows disconnected, with why.
        scanner_a.unplug()
        unplugged = _eventually(
            "scanner a disconnected",
            lambda: not (s := f.agent(by_store["store-a"]).status.heartbeat.scanners[0]).connected and s,
            within=10,
        )
        assert unplugged.last_error
        described = f.cli("ops", "agents", "describe", by_store["store-a"]).stdout
        assert "DISCONNECTED" in described and "Scanners:" in described and "Round trip:" in described
        scanner_a.replug()

        # Store b's link cut: a backlog builds on the agent (its own metrics), the platform calls it stale.
        proxy.cut()
        _eventually("b's stream seen ended", lambda: not f.agent(by_store["store-b"]).status.connected, within=10)
        _scan(scanner_b, *codes[5:10])
        metrics_b = int(configs[1][1].rsplit(":", 1)[1])
        _eventually("b's backlog", lambda: _metrics(metrics_b)[("clearpoint_agent_backlog_scans", ())] == 5)
        stale = _eventually(
            "b stale",
            lambda: (c := f.cli("ops", "agents", "check", expect=None)).returncode == 2 and c,
            within=STALE_S + 6,
        )
        assert stale.stdout.startswith("CRITICAL: 1 of 2 agents stale: " + by_store["store-b"])
        # The link back: the backlog shows on the platform (the first heartbeat goes before the scans), then drains.
        proxy.restore()
        backlogs: list[int] = []
        _eventually(
            "b's backlog shown and drained",
            lambda: (
                backlogs.append(f.agent(by_store["store-b"]).status.heartbeat.backlog)
                or (5 in backlogs and backlogs[-1] == 0)
            ),
            within=15,
        )
        _eventually(
            "b's backlog drained on the agent", lambda: _metrics(metrics_b)[("clearpoint_agent_backlog_scans", ())] == 0
        )

        # Answers lost on the way back: the agent is online and its backlog grows: a WARNING, then it drains.
        proxy.drop_downstream = True
        _scan(scanner_b, *codes[10:13])
        warned = _eventually("a backlogged fleet", lambda: f.check("--max-backlog", "2", status=1))
        assert warned.stdout.startswith(f"WARNING: 1 of 2 agents backlogged over 2: {by_store['store-b']}")
        proxy.drop_downstream = False
        _eventually("b drained", lambda: f.agent(by_store["store-b"]).status.heartbeat.backlog == 0, within=20)
        assert f.cli("ops", "agents", "check", "--max-backlog", "2").stdout.startswith("OK")

        # --watch in a real terminal: the table redrawn in place, more than once.
        screen = _watch(f, seconds=3.5)
        assert screen.count("\x1b[H") >= 2 and "AGENT ID" in screen and by_store["store-a"] in screen

        # An agent stopped: stale within the configured silence, and `check` says which.
        agents[0].stop()
        stopped_at = time.monotonic()
        critical = _eventually("a stale", lambda: f.check(status=2), within=STALE_S + 8)
        assert time.monotonic() - stopped_at <= STALE_S + 8
        assert by_store["store-a"] in critical.stdout and by_store["store-b"] not in critical.stdout
        assert {a["agent_id"]: a["status"]["health"] for a in f.json("ops", "agents")}[by_store["store-a"]] == "stale"
    finally:
        for agent in agents:
            agent.stop()
        for scanner in scanners:
            scanner.close()
        if proxy is not None:
            proxy.close()
        assert serve.stop() == 0, "".join(serve.err)


def _watch(f: Fleet, seconds: float) -> str:
    """`clearpoint ops agents --watch` on a pseudo-terminal for `seconds`: what it drew."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, its stdout a terminal
        os.execve(sys.executable, [*CLI, "ops", "agents", "--watch", "--interval", "1"], f.env)
    drawn = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    drawn += os.read(fd, 65536)
                except OSError:
                    break
    finally:
        os.kill(pid, signal.SIGINT)
        os.waitpid(pid, 0)
        os.close(fd)
    return drawn.decode(errors="replace")
