"""`clearpoint ops` against a real platform process: every administration command, its table and
JSON forms, where the key comes from (flag, environment, config file), and its failures in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port
from tests.test_readme_walk import _wait_serving

CLI = [sys.executable, "-m", "clearpoint.cli"]


@dataclass
class Served:
    env: dict[str, str]
    operator_key: str
    port: int

    def run(self, *argv: str, key: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        full = dict(self.env, **env)
        if key is not None:
            full["CLEARPOINT_API_KEY"] = key
        return subprocess.run([*CLI, *argv], env=full, capture_output=True, text=True, timeout=60)

    def ok(self, *argv: str, key: str | None = None) -> str:
        done = self.run(*argv, key=self.operator_key if key is None else key)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def json(self, *argv: str, key: str | None = None) -> object:
        return json.loads(self.ok(*argv, "-o", "json", key=key))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("ops")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOINT_")}
    env.update(
        CLEARPOINT_DATABASE_URL=f"sqlite:///{home / 'db.sqlite3'}",
        CLEARPOINT_MASTER_KEY_FILE=str(home / "master.key"),
        CLEARPOINT_LISTEN=f"127.0.0.1:{port}",
        CLEARPOINT_PLATFORM=f"127.0.0.1:{port}",
        CLEARPOINT_LOG_LEVEL="warning",
        XDG_CONFIG_HOME=str(home / "config"),
    )
    bootstrap = [*CLI, "platform", "create-operator", "--name", "ops"]
    made = subprocess.run(bootstrap, env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    server = subprocess.Popen([*CLI, "platform", "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_serving(port)
        yield Served(env, made.stdout.strip(), port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_partners_and_their_keys(served: Served) -> None:
    me = served.json("ops", "whoami")
    assert isinstance(me, dict) and me["role"] == "operator" and me["name"] == "ops"
    created = served.json("ops", "partners", "create", "Acme Stores")
    assert isinstance(created, dict) and created["partner_id"].startswith("ptn_")
    partner_key = created["api_key"]
    listed = served.ok("ops", "partners", "list")
    assert listed.splitlines()[0].split() == ["PARTNER", "ID", "NAME", "ROLE", "CREATE", "TIME"]
    assert "Acme Stores" in listed and created["partner_id"] in listed

    # A new key shown once: alone on stdout in the table form, the table on stderr.
    done = served.run("ops", "api-keys", "create", "--partner", created["partner_id"], key=served.operator_key)
    assert done.returncode == 0 and done.stdout.startswith("cpk_") and len(done.stdout.splitlines()) == 1
    assert "shown once" in done.stderr
    second_key = done.stdout.strip()
    keys = served.json("ops", "api-keys", "list", key=partner_key)  # a partner lists its own
    assert isinstance(keys, list) and len(keys) == 2 and all("api_key" not in k for k in keys)

    rotated = served.json("ops", "api-keys", "rotate", second_key.split("_")[1], "--overlap", "1h")
    assert isinstance(rotated, list) and rotated[0]["replaced_by"] == rotated[1]["key_id"]
    assert rotated[1]["api_key"].startswith("cpk_") and "expire_time" in rotated[0]
    revoked = served.json("ops", "api-keys", "revoke", rotated[1]["key_id"])
    assert isinstance(revoked, dict) and revoked["state"] == "revoked"
    refused = served.run("ops", "whoami", key=rotated[1]["api_key"])
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "does not accept this API key" in refused.stderr


def test_issuer_keys_tokens_and_agents(served: Served) -> None:
    first = served.json("ops", "issuer-keys", "create")
    assert isinstance(first, dict) and first["state"] in ("active", "standby")
    rotated = served.json("ops", "issuer-keys", "rotate")
    assert isinstance(rotated, list) and rotated[0]["state"] == "active"
    keys = served.json("ops", "issuer-keys", "list")
    assert isinstance(keys, list) and len(keys) >= 2
    old = next(k for k in keys if k["state"] == "rotated")
    retired = served.json("ops", "issuer-keys", "retire", old["key_id"])
    assert isinstance(retired, dict) and retired["state"] == "retired"

    partner = served.json("ops", "partners", "create", "Token Shop")
    assert isinstance(partner, dict)
    token = served.run(
        "ops",
        "enrolment-tokens",
        "create",
        "--partner",
        partner["partner_id"],
        "--store",
        "s-1",
        "--ttl",
        "2h",
        key=served.operator_key,
    )
    assert token.returncode == 0 and token.stdout.startswith("cpe_"), token.stderr
    assert served.ok("ops", "agents", "list").strip() == "(no agents)"
    unknown = served.run("ops", "agents", "revoke", "agt_0000000000000000", key=served.operator_key)
    assert unknown.returncode == 1 and "AGENT_UNKNOWN" in unknown.stderr


def test_where_the_key_comes_from(served: Served, tmp_path: Path) -> None:
    # The flag beats the environment, which beats the config file.
    config = tmp_path / "config.toml"
    config.write_text(f'platform = "127.0.0.1:{served.port}"\napi_key = "{served.operator_key}"\n')
    config.chmod(0o600)
    env = {k: v for k, v in served.env.items() if k not in ("CLEARPOINT_PLATFORM", "CLEARPOINT_API_KEY")}
    by_file = subprocess.run([*CLI, "ops", "whoami", "--config", str(config)], env=env, capture_output=True, text=True)
    assert by_file.returncode == 0 and "ops" in by_file.stdout, by_file.stderr
    by_env_file = subprocess.run(
        [*CLI, "ops", "whoami"], env=dict(env, CLEARPOINT_CONFIG=str(config)), capture_output=True, text=True
    )
    assert by_env_file.returncode == 0, by_env_file.stderr
    flag_wins = subprocess.run(
        [*CLI, "ops", "whoami", "--config", str(config), "--api-key", "cpk_000000000000_" + "x" * 43],
        env=env,
        capture_output=True,
        text=True,
    )
    assert flag_wins.returncode == 1 and "does not accept this API key" in flag_wins.stderr
    config.chmod(0o644)
    warned = subprocess.run([*CLI, "ops", "whoami", "--config", str(config)], env=env, capture_output=True, text=True)
    assert warned.returncode == 0 and "readable by others" in warned.stderr


@pytest.mark.parametrize(
    ("argv", "env", "status", "says"),
    [
        (["ops", "whoami"], {"CLEARPOINT_API_KEY": ""}, 2, "an API key is needed"),
        (["ops", "whoami", "--platform", "http://x:1"], {}, 2, "no scheme"),
        (["ops", "whoami", "--config", "/nonexistent/clearpoint.toml"], {}, 2, "does not exist"),
        (["ops", "api-keys", "rotate", "abc", "--overlap", "soon"], {}, 2, "not a duration"),
    ],
)
def test_mistakes_are_one_line(served: Served, argv: list[str], env: dict[str, str], status: int, says: str) -> None:
    done = served.run(*argv, key=env.pop("CLEARPOINT_API_KEY", served.operator_key), **env)
    assert done.returncode == status, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_platform_and_a_partner_on_operator_commands(served: Served) -> None:
    away = served.run("ops", "whoami", "--platform", f"127.0.0.1:{free_port()}", key=served.operator_key)
    assert away.returncode == 1 and "cannot reach the platform" in away.stderr
    assert len(away.stderr.strip().splitlines()) == 1
    partner = served.json("ops", "partners", "create", "Nosy Partner")
    assert isinstance(partner, dict)
    denied = served.run("ops", "partners", "list", key=partner["api_key"])
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr


def test_help_names_every_command() -> None:
    done = subprocess.run([*CLI, "ops", "--help"], capture_output=True, text=True)
    for noun in ("whoami", "partners", "api-keys", "issuer-keys", "enrolment-tokens", "agents"):
        assert noun in done.stdout
    rotate = subprocess.run([*CLI, "ops", "api-keys", "rotate", "--help"], capture_output=True, text=True)
    assert "--overlap" in rotate.stdout and "CLEARPOINT_API_KEY" in rotate.stdout
