"""(a) Cold start as Lambda pays it: every function's init (its handler's import) and its first answer.

For each function of template.yaml, a fresh ``python -I -S -B`` runs it FROM ITS BUILT ARTIFACTS, the
way ``make artifacts-check`` does (local/artifacts.py: its code directory, its layers merged in template
order, the runtime's boto3 & co., the template's environment, DynamoDB Local — or moto's server
without Java — and moto for the other AWS services): it imports the handler and answers the
function's default sample event (``events/``, as ``python -m local invoke`` picks it). The time from
the import to the answer is compared with a baseline run through the same harness: a handler module
that imports boto3 and, on its event, creates one DynamoDB client and does one GetItem on the same
DynamoDB. Interpreter start-up is not counted (the same for both).

The ratio judged is of CPU time (the function's process: imports, compiling, answering), because
the two cores of the machines it runs on are shared: under load, wall time mostly measures the wait
for a core (and DynamoDB Local's own time, which is not the function's). Wall time is shown too.
Interleaved rounds (every round runs every target once), medians:
- ``as shipped``: the artifact directories as they are; ``-B`` because Lambda's ``/var/task`` and
  ``/opt`` are read-only: whatever bytecode the build does not ship is compiled on every cold start;
- ``compiled`` (not with ``--shipped-only``): a copy of the same directories with bytecode compiled
  beforehand (what the artifacts would cost if they shipped it);
- ``SnapStart`` (emulated, docs/adr/0025): the same artifacts as shipped; after the handler's import
  the process runs the before-snapshot hooks (calsync.snapstart) and forks: the child stands for a
  copy restored from the snapshot, and only its CPU time is counted: the after-restore hooks and the
  first answer. What fork does not model: Lambda's restore of the snapshot itself (the microVM's
  memory read back from the snapshot cache, reported as ``Restore Duration`` and not billed) and
  the first touches of restored memory pages; a forked child shares its parent's pages, warm.
  The ratio is to the same baseline as shipped (a Lambda cold start without SnapStart).
The runtime directory gets bytecode before the runs (the Lambda runtime's own boto3 ships compiled).

Host build: ``.aws-sam/host/build`` (made by ``make artifacts-check``; ``--build`` or a missing build
runs the same ``sam build`` first). Targets: HTTP functions <= 1.5, the others <= 2.0: judged on the
SnapStart column for a function that template.yaml gives SnapStart, on the as-shipped one otherwise.
"""

from __future__ import annotations

import compileall
import math
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import table
from local import artifacts as arts
from local.cli import default_event_file
from local.template import TEMPLATE, function_environment, functions, load

HTTP_TARGET = 1.5
OTHER_TARGET = 2.0
BASELINE_ID = "baseline"
# The baseline's handler: boto3, one DynamoDB client, one GetItem (a key that does not exist).
BASELINE_CODE = """import os

import boto3


def handler(event, context):
    client = boto3.client("dynamodb")
    key = {"pk": {"S": "BENCH#cold-start"}, "sk": {"S": "BENCH#cold-start"}}
    return client.get_item(TableName=os.environ["TABLE_NAME"], Key=key).get("Item") is None
"""


@dataclass
class Target:
    name: str
    art: arts.Artifact
    env: dict[str, str]
    event: Path | None
    http: bool = False
    snapstart: bool = False  # SnapStart on in template.yaml: its target is judged on that column
    shipped: list[float] = field(default_factory=list)  # CPU seconds
    shipped_wall: list[float] = field(default_factory=list)
    compiled: list[float] = field(default_factory=list)  # CPU seconds
    snapshot: list[float] = field(default_factory=list)  # CPU seconds, SnapStart emulated
    dirs: dict[str, tuple[arts.Artifact, Path]] = field(default_factory=dict)  # variant -> (art, merged)
    error: str | None = None


def compile_tree(root: Path) -> None:
    """Bytecode for every module under ``root`` (this interpreter's; unchecked hash, as shipped)."""
    compileall.compile_dir(
        root,
        quiet=2,
        workers=0,
        invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def _has_bytecode(root: Path) -> bool:
    return any(root.rglob("__pycache__/*.pyc"))


def _compiled_copy(art: arts.Artifact, merged: Path, dest: Path) -> tuple[arts.Artifact, Path]:
    shutil.rmtree(dest, ignore_errors=True)
    code = dest / "task"
    shutil.copytree(art.code, code, ignore=shutil.ignore_patterns("__pycache__"))
    python = dest / "python"
    shutil.copytree(merged, python)
    compile_tree(code)
    compile_tree(python)
    copy = arts.Artifact(art.logical_id, art.handler, code, art.layers, art.requirements, art.events)
    return copy, python


def _run_once(
    target: Target, variant: str, runtime: Path, workdir: Path, timeout: int
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the import and the first answer."""
    art, merged = target.dirs["shipped" if variant == "snapstart" else variant]
    events = (target.event,) if target.event is not None else ()
    outcome = arts.run_function(
        art,
        merged,
        runtime,
        target.env,
        timeout=timeout,
        workdir=workdir,
        events=events,
        import_all=False,
        snapstart=variant == "snapstart",
    )
    if outcome.problems:
        raise RuntimeError(outcome.problems[0].splitlines()[0][:300])
    cpu, wall = outcome.first_answer_cpu_seconds, outcome.first_answer_seconds
    if target.event is None:
        cpu, wall = outcome.init_cpu_seconds, outcome.init_seconds
    if cpu is None or wall is None:
        raise RuntimeError("no timing in the function's result")
    return cpu, wall


def bench_coldstart(
    runs: int,
    *,
    build: bool = False,
    only: list[str] | None = None,
    compiled: bool = True,
    build_dir: Path = arts.BUILD_DIR,
) -> int:
    """``build_dir``: another host build of the same template (e.g. of an older commit: its runtime
    directory beside it), to compare."""
    tpl = load(TEMPLATE)
    plat, py_version = arts.host_target()
    runtime = build_dir.parent / "runtime"
    if build or not (build_dir / "template.yaml").exists() or not runtime.is_dir():
        arts.build(build_dir, plat, py_version)
        arts.install_runtime(runtime, plat, py_version)
    if not _has_bytecode(runtime):
        compile_tree(runtime)
    fns = functions(tpl)
    work = build_dir.parent / "bench"  # the merged layers, compiled copies, logs
    work.mkdir(parents=True, exist_ok=True)
    with arts.aws_side(tpl, work) as (endpoints, resolver), tempfile.TemporaryDirectory() as tmp:
        base_dir = Path(tmp) / BASELINE_ID
        base_dir.mkdir()
        (base_dir / "baseline.py").write_text(BASELINE_CODE)
        base_art = arts.Artifact(BASELINE_ID, "baseline.handler", base_dir, ())
        table_env = function_environment(next(iter(fns.values())), resolver)
        base = Target(
            "baseline: import boto3, 1 client, 1 GetItem",
            base_art,
            arts.lambda_environment(base_art, table_env, endpoints),
            Path(tmp) / "event.json",
        )
        (Path(tmp) / "event.json").write_text("{}")
        empty = Path(tmp) / "opt" / "python"
        empty.mkdir(parents=True)
        base.dirs = {"shipped": (base_art, empty), "compiled": (base_art, empty)}
        targets = [base]
        for art in arts.artifacts(tpl, build_dir):
            if only and art.logical_id not in only:
                continue
            fn = fns[art.logical_id]
            merged = arts.merge_layers(art, work / "opt" / art.logical_id)
            target = Target(
                art.logical_id,
                art,
                arts.lambda_environment(art, function_environment(fn, resolver), endpoints),
                default_event_file(fn),
                http=bool(fn.routes),
                snapstart=fn.snapstart,
            )
            target.dirs = {"shipped": (art, merged)}
            if compiled:
                target.dirs["compiled"] = _compiled_copy(art, merged, work / "compiled" / art.logical_id)
            targets.append(target)
        # one untimed round: DynamoDB Local's first requests, the page cache; finds what does not run
        for target in targets:
            try:
                _run_once(target, "shipped", runtime, work, 60)
            except RuntimeError as exc:
                target.error = str(exc)
        for _ in range(runs):
            for target in targets:
                if target.error is None:
                    cpu, wall = _run_once(target, "shipped", runtime, work, 60)
                    target.shipped.append(cpu)
                    target.shipped_wall.append(wall)
                    if compiled:
                        target.compiled.append(_run_once(target, "compiled", runtime, work, 60)[0])
                    target.snapshot.append(_run_once(target, "snapstart", runtime, work, 60)[0])
    return report(targets, runs, build_dir)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(targets: list[Target], runs: int, build_dir: Path) -> int:
    base = targets[0]
    if base.error is not None:
        print(f"(a) the baseline does not run: {base.error}")
        return 1
    b_cpu, b_wall, b_compiled = (_median(v) for v in (base.shipped, base.shipped_wall, base.compiled))
    rows = []
    missed = 0
    for t in targets:
        if t.error is not None:
            rows.append([t.name, "-", "-", "-", "-", "-", "-", "-", "-", "-", f"does not run: {t.error}"])
            missed += 1
            continue
        cpu, wall, compiled, snap = (_median(v) for v in (t.shipped, t.shipped_wall, t.compiled, t.snapshot))
        ratio = cpu / b_cpu
        target = HTTP_TARGET if t.http else OTHER_TARGET
        note = ""
        if t is not base:
            judged = snap / b_cpu if t.snapstart else ratio
            column = "SnapStart" if t.snapstart else "as shipped"
            note = f"{'met' if judged <= target else 'NOT met'} (<= {target}, {column})"
            missed += judged > target
        rows.append(
            [
                t.name,
                "HTTP" if t.http else ("" if t is base else "other"),
                f"{cpu * 1000:6.0f} ms",
                f"{ratio:5.2f}x",
                f"{wall * 1000:6.0f} ms",
                f"{wall / b_wall:5.2f}x",
                "-" if math.isnan(compiled) else f"{compiled * 1000:6.0f} ms",
                "-" if math.isnan(compiled) else f"{compiled / b_compiled:5.2f}x",
                f"{snap * 1000:6.0f} ms",
                f"{snap / b_cpu:5.2f}x",
                note,
            ]
        )
    print(
        f"(a) cold start from the built artifacts ({build_dir}): import + first answer to the "
        f"sample event,\n    {sys.executable} -I -S -B, median of {runs} interleaved runs; "
        "CPU time of the function's process (the ratio judged) and wall time;\n    SnapStart "
        "emulated: a fork after the init and the before-snapshot hooks, the child's CPU time (after-restore "
        "hooks + first answer),\n    ratio to the baseline as shipped. Fork does not model Lambda's restore "
        "of the snapshot (Restore Duration, not billed)\n    nor the first touches of restored memory pages"
    )
    header = [
        "function", "kind", "shipped CPU", "ratio", "wall", "ratio", "compiled CPU", "ratio",
        "SnapStart CPU", "ratio", "target",
    ]  # fmt: skip
    print(table(header, rows))
    print()
    return missed
