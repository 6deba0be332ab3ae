"""The wire contract: generated stubs are current, buf lint is clean, every RPC and field commented,
and nothing is importable as a bare `platform` (the standard library's module stays itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_generated_stubs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_buf_lint_clean() -> None:
    buf = _buf()
    result = subprocess.run([buf, "lint"], cwd=ROOT / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _buf() -> str:
    buf = shutil.which("buf")
    if buf is None:
        if os.environ.get("CLEARPOINT_REQUIRE_BUF") == "1":
            pytest.fail("buf is required here (npm install -g @bufbuild/buf)")
        pytest.skip("buf not installed (npm install -g @bufbuild/buf)")
    return buf


def test_no_breaking_change_against_previous_commit() -> None:
    """The contract in the working tree keeps wire and JSON compatibility with the commit before HEAD."""
    buf = _buf()
    previous = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "HEAD~1:protos"], cwd=ROOT, capture_output=True, text=True
    )
    if previous.returncode != 0:
        pytest.skip("no earlier commit with protos/ to compare against")
    result = subprocess.run(
        [buf, "breaking", "--against", f"{ROOT / '.git'}#ref=HEAD~1,subdir=protos"],
        cwd=ROOT / "protos",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rpc_and_field_commented() -> None:
    """Independent of buf: every service, RPC, message, field and enum value has a leading comment."""
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    out = ROOT / "build-descriptor.pb"
    try:
        args = [
            "protoc",
            f"-I{ROOT / 'protos'}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *[str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos" / "clearpoint" / "v1").glob("*.proto")],
        ]
        cwd = os.getcwd()
        os.chdir(ROOT / "protos")
        try:
            assert protoc.main(args) == 0
        finally:
            os.chdir(cwd)
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    finally:
        out.unlink(missing_ok=True)
    missing = []
    for f in files:
        commented = {tuple(loc.path) for loc in f.source_code_info.location if loc.leading_comments.strip()}
        for si, s in enumerate(f.service):
            missing += [s.name] if (6, si) not in commented else []
            missing += [f"{s.name}.{m.name}" for mi, m in enumerate(s.method) if (6, si, 2, mi) not in commented]
        for mi, m in enumerate(f.message_type):
            missing += [m.name] if (4, mi) not in commented else []
            missing += [f"{m.name}.{fd.name}" for fi, fd in enumerate(m.field) if (4, mi, 2, fi) not in commented]
        for ei, e in enumerate(f.enum_type):
            missing += [f"{e.name}.{v.name}" for vi, v in enumerate(e.value) if (5, ei, 2, vi) not in commented]
    assert not missing, f"uncommented: {missing}"


def test_no_bare_platform_module() -> None:
    code = "import platform, clearpoint.platform.api.server; print(platform.__file__); platform.system()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "clearpoint" not in result.stdout


def test_cli_help() -> None:
    for args in (["--help"], ["platform", "serve", "--help"], ["demo", "--help"]):
        result = subprocess.run([sys.executable, "-m", "clearpoint.cli", *args], capture_output=True, text=True)
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
