"""Generate the Python stubs under clients/clearpoint/v1/ from protos/, or check they are current.

python scripts/gen_protos.py          # regenerate
python scripts/gen_protos.py --check  # exit 1 if the committed stubs differ from fresh ones
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "clients"
PACKAGE = Path("clearpoint") / "v1"


def _plugin() -> str:
    name = "protoc-gen-mypy_grpc"
    found = shutil.which(name) or str(Path(sysconfig.get_path("scripts")) / name)
    if not Path(found).exists():
        sys.exit(f"{name} not found: pip install -e '.[dev]' installs it (mypy-protobuf)")
    return found


def generate(out: Path) -> None:
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / PACKAGE).glob("*.proto"))
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin()}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    subprocess.run(cmd, check=True, cwd=PROTOS)


def _files(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want, have = _files(fresh / PACKAGE), _files(OUT / PACKAGE)
        stale = sorted(want ^ have)
        stale += sorted(f for f in want & have if not filecmp.cmp(fresh / PACKAGE / f, OUT / PACKAGE / f, False))
    if stale:
        print("stale generated stubs (run: python scripts/gen_protos.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("generated stubs are current", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if args.check:
        return check()
    target = OUT / PACKAGE
    for old in target.glob("*_pb2*"):
        old.unlink()
    generate(OUT)
    print(f"wrote {len(list(target.glob('*_pb2*')))} files to {target.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
