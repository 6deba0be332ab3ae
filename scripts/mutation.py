"""Mutation testing of the modules where a missed bug costs most, each against the tests that cover it.

    python scripts/mutation.py --module all --jobs 2
    python scripts/mutation.py --module auth --list-survivors

Run by hand, not in CI: a group takes minutes to tens of minutes. The tool is mutmut (a dev
dependency); it changes one thing at a time in a module (an operator, a constant, a condition) and
reruns the tests that call it. A mutant the tests still pass on ("survived") is a change to the
code nobody would notice. The score printed per group is killed / total.

mutmut derives a module's import name from its path under `src/`, and this project is one namespace
package over three roots (platform/, scanner_agent/, clients/). So each group runs in a scratch
copy, `.mutation/<group>/` (git-ignored): the three roots merged into `src/clearpoint/`, the tests,
the scripts they call, and pyproject.toml with a [tool.mutmut] table naming the group's modules and
tests. PostgreSQL is left out (CLEARPOINT_TEST_DATABASE_URL unset): the SQLite runs cover the same
code and keep a run short.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutation"
SOURCE_ROOTS = ("platform", "scanner_agent", "clients")


@dataclass(frozen=True)
class Group:
    """Modules (paths under the repository) and the tests that exercise them."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]


GROUPS: dict[str, Group] = {
    "once": Group(
        ("platform/clearpoint/platform/core/once.py",),
        # Not test_race.py: 24 s a mutant, and test_once.py races twins on the same paths.
        ("tests/test_once.py", "tests/test_redeem.py"),
    ),
    "rules": Group(
        ("platform/clearpoint/platform/redemption/rules.py", "platform/clearpoint/platform/campaigns/rules.py"),
        (
            "tests/test_redemption_rules.py",
            "tests/test_redeem.py",
            "tests/test_codes_refused.py",
        ),
    ),
    "auth": Group(
        ("platform/clearpoint/platform/partners/authentication.py", "platform/clearpoint/platform/api/guard.py"),
        # The guard's stream paths (held streams, per-caller limits) run in the agent and watch tests.
        ("tests/test_access.py", "tests/test_rpc_inputs.py", "tests/test_agent_ingest.py", "tests/test_watch.py"),
    ),
    "tokens": Group(
        (
            "clients/clearpoint/formats/voucher_codes.py",
            "clients/clearpoint/formats/scan_signatures.py",
            "clients/clearpoint/formats/ed25519.py",
        ),
        ("tests/test_tokens.py", "tests/test_scan_signing.py", "tests/test_ed25519.py", "tests/test_codes_refused.py"),
    ),
    "agent": Group(
        ("scanner_agent/clearpoint/scanner_agent/framing.py", "scanner_agent/clearpoint/scanner_agent/journal.py"),
        ("tests/test_framing.py", "tests/test_agent_parts.py", "tests/test_serial_driver.py"),
    ),
}

# Tests load these by path from the repository root.
ALSO_COPY = ("scripts",)
STATUSES = ("killed", "survived", "timeout", "suspicious", "no tests", "segfault", "skipped", "not checked")


@dataclass
class Tally:
    """Mutants of one module by mutmut's verdict, and the names of those that survived."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    survivors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, other: Tally) -> None:
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.survivors.extend(other.survivors)


def tests_of(name: str, group: Group) -> tuple[str, ...]:
    """The group's tests, plus tests/test_mutants_<group>.py: tests written to kill its survivors."""
    extra = f"tests/test_mutants_{name}.py"
    return (*group.tests, extra) if (ROOT / extra).exists() else group.tests


def in_src(module: str) -> str:
    """A module's path in the scratch copy, where all three roots share src/clearpoint/."""
    root, _, rest = module.partition("/")
    assert root in SOURCE_ROOTS, module
    return f"src/{rest}"


def import_name(module: str) -> str:
    return in_src(module).removeprefix("src/").removesuffix(".py").replace("/", ".")


def toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def prepare(name: str, group: Group) -> Path:
    """A fresh scratch copy for one group (earlier results would hide changed tests or code)."""
    work = SCRATCH / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for root in SOURCE_ROOTS:
        shutil.copytree(ROOT / root / "clearpoint", work / "src" / "clearpoint", dirs_exist_ok=True, ignore=IGNORE)
    # Made now so that the PYTHONPATH entry given to mutmut names a directory from its first import on.
    (work / "mutants" / "src").mkdir(parents=True)
    refresh_tests(name, group, work)
    return work


def refresh_tests(name: str, group: Group, work: Path) -> None:
    """The repository's current tests (and the scripts they load) and the [tool.mutmut] table; and
    mutmut's record of which tests reach which function forgotten, so that new tests are run on the
    mutants of the functions they reach (mutmut would otherwise keep the old mapping)."""
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    for extra in ("tests", *ALSO_COPY):
        for copy in (work / extra, work / "mutants" / extra):
            if copy.exists():
                shutil.rmtree(copy)
        shutil.copytree(ROOT / extra, work / extra, ignore=IGNORE)
    config = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {toml_list([in_src(m) for m in group.modules])}",
            f"pytest_add_cli_args_test_selection = {toml_list(tests_of(name, group))}",
            'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
            f"also_copy = {toml_list(ALSO_COPY)}",
            # The tests start gRPC servers and threads, which a plain fork of a warm process does not survive.
            'process_isolation = "forkserver"',
            # The tests make gRPC calls without deadlines, so a mutant that breaks the guard hangs them:
            # stop it after 5x its tests' usual time (mutmut's default is 15x) and count it a timeout.
            "timeout_multiplier = 5.0",
            "use_git_change_detection = false",
            "",
        ]
    )
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + config)


def mutmut_command() -> list[str]:
    beside = Path(sys.executable).parent / "mutmut"
    found = str(beside) if beside.exists() else shutil.which("mutmut")
    if found is None:
        sys.exit("mutmut is not installed: pip install -e '.[dev]'")
    return [found]


def tool_env(work: Path) -> dict[str, str]:
    """SQLite only; and the mutated copy first on the path, also for the CLI processes some tests start."""
    unset = ("CLEARPOINT_TEST_DATABASE_URL", "CLEARPOINT_REQUIRE_POSTGRES")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPATH"] = str(work / "mutants" / "src")
    return env


def run_mutmut(name: str, work: Path, jobs: int, mutants: list[str]) -> None:
    started = time.monotonic()
    command = [*mutmut_command(), "run", "--max-children", str(jobs), *mutants]
    done = subprocess.run(command, cwd=work, env=tool_env(work))
    print(f"   mutmut exited {done.returncode} after {time.monotonic() - started:.0f}s", flush=True)
    if done.returncode != 0:
        sys.exit(f"mutmut failed on group {name}; its output is above, its files in {work}")


def run_group(name: str, group: Group, jobs: int) -> dict[str, str]:
    """Every mutant of the group, from scratch; the verdict of each."""
    work = prepare(name, group)
    print(f"== {name}: {', '.join(group.modules)}", flush=True)
    print(f"   tests: {' '.join(tests_of(name, group))}", flush=True)
    run_mutmut(name, work, jobs, [])
    return keep(work, verdicts(work))


def keep(work: Path, found: dict[str, str]) -> dict[str, str]:
    """Saved beside mutmut's files: mutmut forgets every verdict when the test selection changes."""
    (work / "verdicts.json").write_text(json.dumps(found, indent=1, sort_keys=True))
    return found


def retest_survivors(name: str, group: Group, jobs: int, only: str, timeouts: bool = False) -> dict[str, str]:
    """Only the last run's survivors, against the current tests; the other verdicts are kept.

    Sound while only tests changed since that run (more tests can only kill more); after a change
    to the code under test, run the group afresh. mutmut resets its own record when the test
    selection changes, so the kept verdicts are the ones read here before the run.
    """
    work = SCRATCH / name
    if not (work / "mutants").is_dir():
        sys.exit(f"no earlier run of group {name} to retest: run it without --retest-survivors first")
    saved = work / "verdicts.json"
    before: dict[str, str] = json.loads(saved.read_text()) if saved.exists() else verdicts(work)
    again = {"survived", "timeout"} if timeouts else {"survived"}
    survivors = sorted(m for m, status in before.items() if status in again and fnmatch.fnmatch(m, only))
    print(f"== {name}: retesting {len(survivors)} {' and '.join(sorted(again))} mutants of the last run", flush=True)
    print(f"   tests: {' '.join(tests_of(name, group))}", flush=True)
    if not survivors:
        return before
    refresh_tests(name, group, work)
    run_mutmut(name, work, jobs, survivors)
    after = verdicts(work)
    return keep(work, {m: after.get(m, status) if m in survivors else status for m, status in before.items()})


def verdicts(work: Path) -> dict[str, str]:
    """Each mutant's status, from `mutmut results --all true` (lines `    <mutant>: <status>`)."""
    done = subprocess.run(
        [*mutmut_command(), "results", "--all", "true"],
        cwd=work,
        env=tool_env(work),
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for line in done.stdout.splitlines():
        mutant, sep, status = line.strip().rpartition(": ")
        if sep:
            found[mutant] = status
    return found


def tally_by_module(group: Group, found: dict[str, str]) -> dict[str, Tally]:
    tallies = {module: Tally() for module in group.modules}
    prefixes = {import_name(module) + ".": module for module in group.modules}
    for mutant, status in found.items():
        module = next((m for prefix, m in prefixes.items() if mutant.startswith(prefix)), None)
        if module is None:
            continue
        tally = tallies[module]
        tally.counts[status] = tally.counts.get(status, 0) + 1
        if status == "survived":
            tally.survivors.append(mutant)
    return tallies


def score(tally: Tally) -> str:
    return f"{100 * tally.counts['killed'] / tally.total:.1f}%" if tally.total else "-"


def report(name: str, tallies: dict[str, Tally]) -> Tally:
    group = Tally()
    header = f"{'':52} {'total':>6} {'killed':>6} {'surv.':>6} {'t/out':>6} {'susp.':>6} {'other':>6}  score"
    print(header)
    rows = [*tallies.items()]
    for _, tally in rows:
        group.add(tally)
    for label, tally in [*rows, (f"group {name}", group)]:
        c = tally.counts
        other = tally.total - c["killed"] - c["survived"] - c["timeout"] - c["suspicious"]
        print(
            f"{label[-52:]:52} {tally.total:6} {c['killed']:6} {c['survived']:6} {c['timeout']:6}"
            f" {c['suspicious']:6} {other:6}  {score(tally)}"
        )
    return group


def show_survivors(work: Path, survivors: list[str]) -> None:
    for mutant in survivors:
        shown = subprocess.run(
            [*mutmut_command(), "show", mutant], cwd=work, env=tool_env(work), capture_output=True, text=True
        )
        print(shown.stdout.rstrip() or f"# {mutant}: {shown.stderr.strip()}")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Run by hand, outside CI (minutes to tens of minutes per group). Scratch files go to .mutation/ "
            "(git-ignored). 'other' counts mutants with no test reaching them, segfaults and skips. "
            f"Groups: {', '.join(f'{n} ({len(g.modules)} modules)' for n, g in GROUPS.items())}."
        ),
    )
    parser.add_argument("--module", default="all", choices=[*GROUPS, "all"], help="the group to mutate (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--list-survivors", action="store_true", help="print the diff of every surviving mutant")
    parser.add_argument(
        "--retest-survivors",
        action="store_true",
        help="rerun only the last run's survivors against the current tests (after adding tests; code unchanged)",
    )
    parser.add_argument(
        "--timeouts",
        action="store_true",
        help="with --retest-survivors: the mutants that timed out too (a busy machine makes tests slow)",
    )
    parser.add_argument(
        "--only",
        default="*",
        metavar="GLOB",
        help="with --retest-survivors: only the survivors whose name matches, e.g. '*scan_signatures*'",
    )
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    names = [*GROUPS] if args.module == "all" else [args.module]
    summaries: dict[str, Tally] = {}
    for name in names:
        group = GROUPS[name]
        if args.retest_survivors:
            found = retest_survivors(name, group, args.jobs, args.only, args.timeouts)
        else:
            found = run_group(name, group, args.jobs)
        print()
        summaries[name] = report(name, tally_by_module(group, found))
        if args.list_survivors:
            print()
            show_survivors(SCRATCH / name, summaries[name].survivors)
        print(flush=True)
    if len(summaries) > 1:
        print("== summary")
        report("all", {f"group {n}": t for n, t in summaries.items()})


if __name__ == "__main__":
    main()
