"""`make mutation`: mutation testing of the pure domain and of the sync engine (issue 14, 1b).

mutmut 3 names a mutated module after its path relative to ``.``, ``src/`` or ``source/`` and puts
only ``mutants/``, ``mutants/src`` and ``mutants/source`` on ``sys.path``. calsync's code lives in
``layers/core`` (a Lambda layer, put on the path by pytest's ``pythonpath``), so mutmut would name
``layers.core.calsync.domain.rules`` what the tests import as ``calsync.domain.rules`` and stop.
This script therefore lays the repository out the way mutmut expects, in ``.mutation/`` (ignored by
git): ``layers/core/calsync`` as ``src/calsync``, next to copies of ``tests/``, ``local/``,
``template.yaml`` and ``pyproject.toml`` (whose ``[tool.mutmut]`` section is written for that
layout), runs ``mutmut run`` there, and then checks every surviving mutant against the accepted
equivalent mutants listed in ``docs/mutation.md``.

Exit status: 0 when every survivor is an accepted equivalent one, 1 otherwise (and when an
accepted entry no longer matches any survivor: the list must not rot).

    python -m tools.mutation [--fresh] [--jobs N] [--report]

A first run tests every mutant (about 1,000; 30-45 minutes on two busy cores). Later runs test the
mutants of changed functions, then every earlier survivor again; ``--fresh`` starts from scratch.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".mutation"
ACCEPTED = ROOT / "docs" / "mutation.md"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
# mutmut's verdicts that are not a kill; "no tests" means that no selected test runs the function
NOT_KILLED = ("survived", "no tests", "timeout", "suspicious", "skipped")


def stage() -> None:
    """Copy what the tests need into .mutation/, in mutmut's layout (mtimes kept: mutmut re-mutates
    a file only when it changed)."""
    STAGE.mkdir(exist_ok=True)
    for name in ("src", "tests", "local"):
        shutil.rmtree(STAGE / name, ignore_errors=True)
    shutil.copytree(ROOT / "layers" / "core" / "calsync", STAGE / "src" / "calsync", ignore=IGNORE)
    shutil.copytree(ROOT / "tests", STAGE / "tests", ignore=IGNORE)
    shutil.copytree(ROOT / "local", STAGE / "local", ignore=IGNORE)
    for name in ("template.yaml", "pyproject.toml"):
        shutil.copy2(ROOT / name, STAGE / name)


def run_mutmut(jobs: int, names: list[str] | None = None) -> int:
    """``mutmut run``: new and changed mutants only (mutmut keeps earlier verdicts), or ``names`` again."""
    # CI=1: the property tests are derandomized (tests/conftest.py), so a verdict is repeatable
    env = {**os.environ, "CI": "1"}
    mutmut = Path(sys.executable).with_name("mutmut")
    cmd = [str(mutmut), "run", "--max-children", str(jobs), *(names or [])]
    return subprocess.call(cmd, cwd=STAGE, env=env)


def _changed_lines(diff: str) -> tuple[str, str]:
    minus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return " / ".join(minus), " / ".join(plus)


def verdicts() -> list[tuple[str, str, str]]:
    """(mutant name, status, "module.function: OLD ==> NEW") of every mutant (run in .mutation/)."""
    os.chdir(STAGE)
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    out = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in sorted(data.exit_code_by_key.items(), key=lambda kv: _natural(kv[0])):
            status = status_by_exit_code[code]
            key = ""
            if status in NOT_KILLED:
                old, new = _changed_lines(get_diff_for_mutant(name, path=path))
                key = f"{_function(name)}: {old} ==> {new}".rstrip()
            out.append((name, status, key))
    return out


def _natural(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def _function(mutant: str) -> str:
    """``calsync.domain.rules.x__select__mutmut_3`` -> ``calsync.domain.rules._select``;
    methods (``xǁSyncEngineǁsync__mutmut_1``) -> ``calsync.sync.engine.SyncEngine.sync``."""
    head = mutant.rpartition("__mutmut_")[0]
    module, _, mangled = head.rpartition(".")
    if mangled.startswith("xǁ"):
        return f"{module}." + ".".join(mangled[2:].split("ǁ"))
    return f"{module}.{mangled.removeprefix('x_')}"


def accepted() -> dict[str, str]:
    """The accepted equivalent mutants of docs/mutation.md: the lines of its ```mutants block (the
    same ``module.function: OLD ==> NEW`` as printed here), each followed by an indented reason."""
    text = ACCEPTED.read_text(encoding="utf-8")
    block = re.search(r"^```mutants\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    entries: dict[str, str] = {}
    last = None
    for line in (block.group(1) if block else "").splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if last is None:
                raise SystemExit(f"{ACCEPTED}: a reason without a mutant: {line!r}")
            entries[last] = (entries[last] + " " + line.strip()).strip()
        else:
            last = line.strip()
            entries[last] = ""
    missing = [k for k, reason in entries.items() if not reason]
    if missing:
        raise SystemExit(f"{ACCEPTED}: accepted mutants without a reason: {missing}")
    return entries


def _module(mutant: str) -> str:
    return mutant.rpartition("__mutmut_")[0].rpartition(".")[0]


def report(found: list[tuple[str, str, str]], ok: dict[str, str]) -> int:
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    unexpected = []
    seen = set()
    for name, status, key in found:
        counts = per_module[_module(name)]
        counts["mutants"] += 1
        if status not in NOT_KILLED:
            counts[status] += 1
        elif key in ok:
            counts["accepted"] += 1
            seen.add(key)
        else:
            counts[status] += 1
            unexpected.append((name, status, key))
    print("\nPer module (accepted = equivalent mutants listed in docs/mutation.md):")
    for module in sorted(per_module):
        counts = ", ".join(f"{n} {s}" for s, n in sorted(per_module[module].items()) if s != "mutants")
        print(f"  {module}: {per_module[module]['mutants']} mutants: {counts}")
    stale = sorted(set(ok) - seen)
    for name, status, key in unexpected:
        print(f"NOT KILLED ({status}) {name}\n    {key}")
    for key in stale:
        print(f"STALE accepted entry (no such surviving mutant any more): {key}")
    print(f"\n{len(unexpected)} not killed and not accepted; {len(seen)} accepted; {len(stale)} stale")
    return 1 if unexpected or stale else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="forget every earlier verdict (rm mutants/)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--report", action="store_true", help="only report the verdicts of the last run")
    args = parser.parse_args()
    if not args.report:
        if args.fresh:
            shutil.rmtree(STAGE / "mutants", ignore_errors=True)
        stage()
        # which test runs which function is collected again each time (one run of the selected tests):
        # mutmut's incremental bookkeeping of it does not survive the tests changing under it
        (STAGE / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        code = run_mutmut(args.jobs)
        if code != 0:
            print(f"mutmut run failed ({code})", file=sys.stderr)
            return code
        # mutmut keeps a survivor's verdict while its function is unchanged: test them again against
        # the tests as they are now (a new test may kill them)
        cwd = Path.cwd()
        again = [name for name, status, _ in verdicts() if status in NOT_KILLED]
        os.chdir(cwd)
        if again and not args.fresh:
            code = run_mutmut(args.jobs, again)
            if code != 0:
                print(f"mutmut run failed ({code})", file=sys.stderr)
                return code
    return report(verdicts(), accepted())


if __name__ == "__main__":
    sys.exit(main())
