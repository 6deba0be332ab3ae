"""Start-up that fails well: every mistake an operator makes when starting the platform or an agent
is one line naming the problem and the fix, exit status 2, no traceback (unless --debug), and
nothing is left running or created that should not be."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from tests.helpers import RunningPlatform
from tests.processes import free_port
from tests.test_tls import self_signed

CLI = [sys.executable, "-m", "clearpoint.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARPOINT_")}
    env.update(
        CLEARPOINT_DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}",
        CLEARPOINT_MASTER_KEY_FILE=str(tmp_path / "data" / "master.key"),
        CLEARPOINT_LISTEN=f"127.0.0.1:{free_port()}",
        CLEARPOINT_CLEARING_SCHEDULE="hourly",
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def _fails_in_one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2, stderr exactly one line, naming each of `words`; nothing on stdout."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _serve(env: dict[str, str], *flags: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return _run(["platform", "serve", *flags], env, cwd)


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "says"),
    [
        ("127.0.0.1:99999", "0 to 65535"),
        ("127.0.0.1", "HOST:PORT"),
        ("http://127.0.0.1:50051", "no scheme"),
        ("::1:50051", "brackets"),
        ("127.0.0.1:port", "0 to 65535"),
    ],
)
def test_a_bad_listen_address_is_refused(tmp_path: Path, listen: str, says: str) -> None:
    line = _fails_in_one_line(_serve(_env(tmp_path), "--listen", listen), "--listen", says, "--help")
    assert line.startswith("clearpoint platform serve: error:")
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_bad_listen_address_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    _fails_in_one_line(_serve(_env(tmp_path, CLEARPOINT_LISTEN="127.0.0.1:99999")), "--listen", "0 to 65535")


@pytest.mark.parametrize("where", ["flag", "env"])
def test_an_unknown_log_level_is_refused(tmp_path: Path, where: str) -> None:
    if where == "flag":
        done = _serve(_env(tmp_path), "--log-level", "loud")
    else:
        done = _serve(_env(tmp_path, CLEARPOINT_LOG_LEVEL="loud"))
    _fails_in_one_line(done, "--log-level", "'loud'", "debug, info, warning, error")


def test_workers_need_a_fixed_port(tmp_path: Path) -> None:
    _fails_in_one_line(_serve(_env(tmp_path), "--workers", "2", "--listen", "127.0.0.1:0"), "fixed port")


# --- the database -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense", "is not a database URL"),
        ("mysql://root@127.0.0.1/test", "unsupported database 'mysql'"),
        ("sqlite://", "names no file"),
    ],
)
def test_a_database_url_that_names_no_usable_database(tmp_path: Path, url: str, says: str) -> None:
    _fails_in_one_line(_serve(_env(tmp_path, CLEARPOINT_DATABASE_URL=url)), says, "sqlite:///FILE")


def test_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql://root@127.0.0.1:{free_port()}/clearpoint"
    _fails_in_one_line(_serve(_env(tmp_path), "--database", url), "nothing accepts connections", "--database")


def test_an_unknown_database_host(tmp_path: Path) -> None:
    url = "postgresql://root@db.invalid:5432/clearpoint"
    _fails_in_one_line(_serve(_env(tmp_path), "--database", url), "cannot find the database host 'db.invalid'")


def test_a_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a folder should be")
    url = f"sqlite:///{tmp_path / 'taken' / 'db.sqlite3'}"
    done = _serve(_env(tmp_path), "--database", url)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error:")


def test_a_database_that_does_not_exist(tmp_path: Path, pg_url: str) -> None:
    missing = make_url(pg_url).set(database=f"missing_{secrets.token_hex(4)}")
    url = missing.render_as_string(hide_password=False)
    line = _fails_in_one_line(_serve(_env(tmp_path), "--database", url), "does not exist", "createdb")
    assert missing.database is not None and missing.database in line


def test_a_login_the_database_refuses(tmp_path: Path, pg_url: str) -> None:
    url = make_url(pg_url).set(username=f"nobody_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    _fails_in_one_line(_serve(_env(tmp_path), "--database", url), "refused the login")


def test_a_postgres_url_as_hosts_print_it_is_accepted(tmp_path: Path, own_pg_url: str) -> None:
    url = own_pg_url.replace("postgresql://", "postgres://", 1)
    assert url.startswith("postgres://")
    done = _run(["platform", "migrate", "--database", url], _env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "schema at revision" in done.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    url = f"postgresql://root@127.0.0.1:{free_port()}/clearpoint"
    done = _serve(_env(tmp_path), "--database", url, "--debug")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "ConnectionRefusedError" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: nothing accepts connections")
    by_env = _serve(_env(tmp_path, CLEARPOINT_DEBUG="1"), "--database", url)
    assert "Traceback" in by_env.stderr


# --- the port and TLS ---------------------------------------------------------------------------


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _fails_in_one_line(_serve(_env(tmp_path), "--listen", f"127.0.0.1:{port}"), "already in use", "--listen")


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    (tmp_path / name).mkdir()
    cert, key, _ = self_signed(tmp_path / name)
    return cert, key


def test_tls_files_that_cannot_be_used(tmp_path: Path) -> None:
    env = _env(tmp_path)
    cert, key = _self_signed(tmp_path, "one")
    other_cert, _ = _self_signed(tmp_path, "two")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    missing = tmp_path / "missing.pem"
    _fails_in_one_line(_serve(env, "--tls-cert", str(missing), "--tls-key", str(key)), "cannot read --tls-cert")
    _fails_in_one_line(_serve(env, "--tls-cert", str(cert), "--tls-key", str(missing)), "cannot read --tls-key")
    _fails_in_one_line(_serve(env, "--tls-cert", str(garbage), "--tls-key", str(key)), "no PEM certificate")
    _fails_in_one_line(_serve(env, "--tls-cert", str(cert), "--tls-key", str(garbage)), "no unencrypted PEM")
    _fails_in_one_line(_serve(env, "--tls-cert", str(other_cert), "--tls-key", str(key)), "is not the key")
    _fails_in_one_line(_serve(env, "--tls-cert", str(cert)), "go together")


# --- the master key -----------------------------------------------------------------------------


def test_a_master_key_that_is_not_the_databases_own(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["platform", "migrate"], env).returncode == 0
    other = tmp_path / "other.key"
    other.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    other.chmod(0o600)
    _fails_in_one_line(_serve(env, "--master-key-file", str(other)), "not the one this database was set up with")
    by_env = _env(tmp_path, CLEARPOINT_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
    _fails_in_one_line(_serve(by_env), "not the one this database was set up with")


def test_served_from_another_directory_no_new_master_key_is_made(tmp_path: Path) -> None:
    """The key file's default path is relative: from elsewhere it is missing, and the platform says
    so instead of making a new key the database's issuer keys cannot be opened with."""
    env = _env(tmp_path)
    del env["CLEARPOINT_MASTER_KEY_FILE"]
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    assert _run(["platform", "migrate"], env, cwd=home).returncode == 0
    assert (home / "clearpoint-data" / "master.key").exists()
    _fails_in_one_line(_serve(env, cwd=elsewhere), "does not exist", "--master-key-file")
    assert not (elsewhere / "clearpoint-data").exists()


def test_an_exposed_or_malformed_master_key_file(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["platform", "migrate"], env).returncode == 0
    key_file = Path(env["CLEARPOINT_MASTER_KEY_FILE"])
    key_file.chmod(0o644)
    _fails_in_one_line(_serve(env), "readable by others", "chmod 600")
    key_file.chmod(0o600)
    key_file.write_text("not a key\n")
    _fails_in_one_line(_serve(env), "does not hold a master key")


def test_a_database_from_before_the_check_is_checked_by_its_issuer_keys(tmp_path: Path) -> None:
    """A database set up before it recorded its master key: the key that opens its issuer keys is
    accepted (and recorded), another is refused."""
    from clearpoint.platform.app import Platform
    from clearpoint.platform.keys.master_key import MasterKey
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    right, wrong = MasterKey(secrets.token_bytes(32)), MasterKey(secrets.token_bytes(32))

    async def setup() -> None:
        platform = await Platform.open(url, master_key=right)
        async with platform.db.write() as conn:
            await platform.keys.create(conn)
            await conn.execute(text("DELETE FROM master_key_check"))  # as before the check existed
        await platform.close()

    async def opens(key: MasterKey) -> bool:
        from clearpoint.platform.keys.master_key import MasterKeyError

        try:
            platform = await Platform.open(url, master_key=key)
        except MasterKeyError:
            return False
        await platform.close()
        return True

    asyncio.run(setup())
    assert not asyncio.run(opens(wrong))
    assert asyncio.run(opens(right))
    assert not asyncio.run(opens(wrong))  # and now by the recorded check


# --- a port another platform serves, and the workers' supervisor --------------------------------


def _wait_serving(port: int, within: float = 30.0) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=within)
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("first_workers", [1, 2])
def test_a_second_platform_on_a_served_port_refuses_to_start(tmp_path: Path, first_workers: int) -> None:
    env = _env(tmp_path)
    port = int(env["CLEARPOINT_LISTEN"].rsplit(":", 1)[1])
    first = subprocess.Popen(
        [*CLI, "platform", "serve", "--workers", str(first_workers)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_serving(port)
        other = _env(tmp_path / "other", CLEARPOINT_LISTEN=env["CLEARPOINT_LISTEN"])
        (tmp_path / "other").mkdir()
        _fails_in_one_line(_serve(other), "already in use")
        _fails_in_one_line(_serve(other, "--workers", "2"), "already in use")
        _wait_serving(port)  # the first is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_killing_the_supervisor_takes_its_workers_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    env = _env(tmp_path)
    port = int(env["CLEARPOINT_LISTEN"].rsplit(":", 1)[1])
    supervisor = subprocess.Popen(
        [*CLI, "platform", "serve", "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while len(_children(supervisor.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(supervisor.pid)
        assert len(workers) == 2
        _wait_serving(port)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = _children(supervisor.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.1)
        replaced = _children(supervisor.pid)
        assert workers[0] not in replaced and workers[1] in replaced and len(replaced) == 2
        assert _alive(supervisor.pid)
        _wait_serving(port)
        supervisor.kill()
        supervisor.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in replaced) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in replaced), "workers outlived their supervisor"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        _, err = supervisor.communicate(timeout=10)
    assert f"worker {workers[0]} exited (killed by SIGKILL); started worker" in err


# --- the agent ----------------------------------------------------------------------------------


def _agent_config(tmp_path: Path, platform: str) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nplatform = "{platform}"\ndata_dir = "agent-data"\n\n'
        '[[scanner]]\nid = "till-1"\ntype = "serial"\npath = "/dev/null"\n'
    )
    return config


@pytest.mark.parametrize(
    ("platform", "says"),
    [
        ("http://127.0.0.1:50051", "no scheme"),
        ("127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:0", "1 to 65535"),
        ("127.0.0.1:70000", "1 to 65535"),
    ],
)
def test_an_agent_platform_address_is_checked(tmp_path: Path, platform: str, says: str) -> None:
    config = _agent_config(tmp_path, platform)
    for command in ("run", "enrol"):
        done = _run(["agent", command, "--config", str(config), "--token", "cpe_x"], _env(tmp_path))
        _fails_in_one_line(done, "platform:", says)


def test_an_unreachable_platform_is_not_called_a_refusal(tmp_path: Path) -> None:
    config = _agent_config(tmp_path, f"127.0.0.1:{free_port()}")
    done = _run(["agent", "enrol", "--config", str(config), "--token", "cpe_0123_abc"], _env(tmp_path))
    assert done.returncode == 1
    assert "cannot reach the platform" in done.stderr and "refused enrolment" not in done.stderr


async def test_a_refused_enrolment_is_called_one(tmp_path: Path, platform: RunningPlatform) -> None:
    config = _agent_config(tmp_path, platform.target)
    token = ["--token", "cpe_0123456789ab_nope"]
    done = await asyncio.to_thread(_run, ["agent", "enrol", "--config", str(config), *token], _env(tmp_path))
    assert done.returncode == 1
    assert "refused enrolment" in done.stderr and "cannot reach" not in done.stderr


def test_two_agents_cannot_share_a_data_dir(tmp_path: Path) -> None:
    from clearpoint.scanner_agent.data_lock import DataDirLock

    config = _agent_config(tmp_path, f"127.0.0.1:{free_port()}")
    holder = DataDirLock(tmp_path / "agent-data")
    holder.acquire()
    try:
        done = _run(["agent", "run", "--config", str(config)], _env(tmp_path))
        _fails_in_one_line(done, "another agent", f"pid {os.getpid()}", "data_dir")
    finally:
        holder.release()
    again = DataDirLock(tmp_path / "agent-data")
    again.acquire()  # released with its holder, nothing stale left
    again.release()
