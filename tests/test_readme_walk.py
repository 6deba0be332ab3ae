"""The README's path from an empty database to a redeemed voucher, run command by command as an
operator and a partner type them: nothing but `clearpoint` and its output.

The commands are read out of the README's "From an empty database" section, so the README and
this test cannot drift apart; `$NAME` values come from the output of earlier commands.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## From an empty database to a redeemed voucher"


def readme_commands() -> list[str]:
    """The section's command lines: `    $ ...` lines, a trailing backslash continuing one."""
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    commands, pending = [], ""
    for line in section.splitlines():
        stripped = line.strip()
        if pending:
            pending += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                commands.append(pending)
                pending = ""
        elif stripped.startswith("$ "):
            body = stripped[2:]
            if body.endswith("\\"):
                pending = body.rstrip("\\").strip()
            else:
                commands.append(body)
    return commands


def test_the_readme_walk(tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) >= 8, commands
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOINT_")}
    env.update(CLEARPOINT_LISTEN=f"127.0.0.1:{port}", CLEARPOINT_PLATFORM=f"127.0.0.1:{port}")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    names: dict[str, str] = {}
    server: subprocess.Popen[str] | None = None
    outputs: list[tuple[str, int, str, str]] = []
    try:
        for line in commands:
            # NAME=$(command) keeps stdout (or a field of its JSON: `| jq -r .field`) as $NAME.
            assign = re.fullmatch(r"(\w+)=\$\((.*)\)", line)
            command = assign.group(2) if assign else line
            field = None
            jq = re.search(r"\s*\|\s*jq -r \.(\w+)$", command)
            if jq:
                field, command = jq.group(1), command[: jq.start()]
            background = command.endswith(" &")
            command = command.removesuffix(" &")
            expected = 1 if "# refused" in command else 0
            command = command.split("  #", 1)[0]
            for name, value in names.items():
                command = command.replace(f'"${name}"', shlex.quote(value)).replace(f"${name}", shlex.quote(value))
            argv = shlex.split(command)
            assert argv[0] == "clearpoint", line
            argv = [sys.executable, "-m", "clearpoint.cli", *argv[1:]]
            if background:
                server = subprocess.Popen(argv, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
                _wait_serving(port)
                continue
            done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
            outputs.append((line, done.returncode, done.stdout, done.stderr))
            assert done.returncode == expected, f"{line}\n{done.stdout}\n{done.stderr}"
            if assign:
                out = done.stdout.strip()
                names[assign.group(1)] = json.loads(out)[field] if field else out.splitlines()[0]
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)
    redeemed = [o for o in outputs if " vouchers redeem " in o[0]]
    assert len(redeemed) == 2
    first, second = redeemed
    assert first[1] == 0 and "One free cocoa" in first[2]
    assert second[1] == 1 and "VOUCHER_ALREADY_REDEEMED" in second[3]
    tokens = [o for o in outputs if " enrolment-tokens create " in o[0]]
    assert tokens and re.fullmatch(r"cpe_\w+_\S+\n", tokens[0][2])
    validated = [o for o in outputs if " vouchers validate " in o[0]]
    assert "True" in validated[0][2] and "One free cocoa" in validated[0][2]


def _wait_serving(port: int) -> None:
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        while True:
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "the platform did not start"
            time.sleep(0.2)
