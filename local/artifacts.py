"""``python -m local.artifacts`` (``make artifacts-check``): prove the built Lambda artifacts run.

1. ``sam build --build-dir .aws-sam/host/build --cache-dir .aws-sam/host/cache`` with the layer
   Makefiles' ``PLATFORM`` / ``PY_VERSION`` set to this machine's (same Makefiles, same requirements,
   wheels for the host instead of arm64 / CPython 3.13; a cache of its own, see ``HOST_DIR``), and
   ``local/lambda-runtime.txt`` (what the Lambda Python runtime ships: boto3 and its dependencies)
   installed into ``.aws-sam/host/runtime``.
2. Packaging rules, per function: no distribution (or top-level module, or file) shipped by two of
   its layers, nor by its code and a layer; none over a runtime-provided one (unless
   ``RUNTIME_SHADOW_ALLOWED``); every installed distribution's requirements, and every layer's
   requirements.txt, met by what the function has (its layers + the runtime); no extension module
   built for another machine or CPython. With ``--shipped-build-dir .aws-sam/build`` (what
   ``make artifacts-check`` passes) the same rules run on the deployed build for the template's
   target (arm64, python3.13): nothing of it runs here.
3. Every function runs FROM ITS ARTIFACTS ONLY, in a fresh ``python -I -S`` with ``sys.path`` set to
   its code directory, its layers merged in template order into one ``python`` directory (a later
   layer overwrites an earlier one's files, as Lambda fills ``/opt/python``), the runtime directory
   and the standard library; with the environment template.yaml gives it, pointed at DynamoDB Local
   (moto's server without Java) and moto for the other services, resources created from
   template.yaml (local/resources.py). It imports its handler, answers each of its sample events
   (``events/<code dir>.json`` and ``events/<code dir>-*.json``) and imports every first-party
   module it ships (``calsync*`` packages and the code directory's modules), so that a module a
   route imports late is checked even if no sample reaches it.

Fails (exit 1) on: an import that fails, an unhandled exception, an HTTP answer >= 500 (unless the
function only failed to reach a provider, see ``UNREACHABLE``), SQS records reported failed, a log line
naming ImportError / ModuleNotFoundError / FileNotFoundError, or a packaging rule broken. A 4xx
(a sample naming something that does not exist) is fine. docs/adr/0008-layer-package-owners.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.template import ROOT, TEMPLATE, Resolver, function_environment, functions, load, logical_id_of

# The host build, its own SAM cache and build.toml: samconfig.toml sets `cached = true`, and SAM keys
# its cache on the sources, not on PLATFORM: a shared cache would hand host layers to `make build`.
HOST_DIR = ROOT / ".aws-sam" / "host"
BUILD_DIR = HOST_DIR / "build"
RUNTIME_REQUIREMENTS = ROOT / "local" / "lambda-runtime.txt"
EVENTS_DIR = ROOT / "events"
SAM = ROOT / ".tools" / "venv" / "bin" / "sam"
REGION = "eu-west-1"
# Distributions a layer may ship over the runtime's copy on purpose (each one decided in an ADR).
RUNTIME_SHADOW_ALLOWED: frozenset[str] = frozenset()
# Words in a function's output that mean a packaging failure even when the handler caught it.
PACKAGING_ERRORS = re.compile(r"ModuleNotFoundError|ImportError|FileNotFoundError|No module named")
# A connection refused by the closed port below: the provider is unreachable on purpose (no network
# in CI); msal, for one, fetches its authority's OpenID configuration over HTTPS. A 5xx is accepted
# only with this in the function's output (and no packaging error): the code path went as far as
# opening a connection, so every module on it was there.
UNREACHABLE = re.compile(r"host='127\.0\.0\.1', port=9\)")
# Endpoints of Google and Microsoft: a port nothing listens on, so that no sample reaches the internet.
_CLOSED = "127.0.0.1:9"
PARAMETERS = {
    "GoogleAuthUri": f"http://{_CLOSED}/o/oauth2/v2/auth",
    "GoogleTokenUri": f"http://{_CLOSED}/token",
    "GoogleApiEndpoint": f"http://{_CLOSED}/calendar/v3/",
    "GoogleWebhookUrl": "https://api.calsync.test/v1/webhooks/google",
    "MicrosoftAuthority": f"https://{_CLOSED}/common",
    "GraphEndpoint": f"http://{_CLOSED}/v1.0",
    "MicrosoftWebhookUrl": "https://api.calsync.test/v1/webhooks/microsoft",
}


def log(line: str) -> None:
    print(f"[artifacts] {line}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- build


def host_target() -> tuple[str, str]:
    """(pip --platform, --python-version) of this machine and interpreter."""
    if sys.platform != "linux":
        raise SystemExit(
            f"artifacts-check builds manylinux wheels: it runs on Linux only (not {sys.platform})"
        )
    return f"manylinux2014_{platform.machine()}", f"{sys.version_info[0]}.{sys.version_info[1]}"


def build(build_dir: Path, plat: str, py_version: str) -> None:
    env = {**os.environ, "PLATFORM": plat, "PY_VERSION": py_version, "SAM_CLI_TELEMETRY": "0"}
    log(f"sam build --build-dir {build_dir} (PLATFORM={plat} PY_VERSION={py_version})")
    cache = build_dir.parent / "cache"
    subprocess.run(
        [str(SAM), "build", "--build-dir", str(build_dir), "--cache-dir", str(cache)],
        cwd=ROOT,
        env=env,
        check=True,
    )


def install_runtime(
    dest: Path, plat: str, py_version: str, requirements: Path = RUNTIME_REQUIREMENTS
) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    log(f"runtime-provided packages ({requirements.relative_to(ROOT)}) -> {dest}")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--no-deps", "--target", str(dest), "--platform", plat, "--implementation", "cp",
         "--python-version", py_version, "--only-binary=:all:", "-r", str(requirements)],
        check=True,
    )  # fmt: skip
    shutil.rmtree(dest / "bin", ignore_errors=True)


# ---------------------------------------------------------------------------- what a function is made of


@dataclass(frozen=True)
class Artifact:
    logical_id: str
    handler: str
    code: Path  # the function's artifact directory (/var/task)
    layers: tuple[tuple[str, Path], ...]  # (layer logical id, its python directory), template order
    requirements: tuple[Path, ...] = ()  # the layers' requirements.txt (sources)
    events: tuple[Path, ...] = ()


def sample_events(code_dir_name: str, events_dir: Path = EVENTS_DIR) -> tuple[Path, ...]:
    """The function's sample events: ``<dir>.json`` and ``<dir>-*.json`` (local/cli.py picks its
    default among these)."""
    exact = events_dir / f"{code_dir_name}.json"
    return tuple(([exact] if exact.exists() else []) + sorted(events_dir.glob(f"{code_dir_name}-*.json")))


def artifacts(tpl: Mapping[str, Any], build_dir: Path, events_dir: Path = EVENTS_DIR) -> list[Artifact]:
    glob = (tpl.get("Globals") or {}).get("Function") or {}
    out = []
    for lid, fn in functions(tpl).items():
        props = tpl["Resources"][lid].get("Properties") or {}
        layer_ids = [logical_id_of(x) for x in [*(glob.get("Layers") or []), *(props.get("Layers") or [])]]
        layers, reqs = [], []
        for layer in layer_ids:
            assert layer is not None, f"{lid}: a layer that is not a resource of the template"
            layers.append((layer, build_dir / layer / "python"))
            content = tpl["Resources"][layer]["Properties"]["ContentUri"]
            req = ROOT / str(content) / "requirements.txt"
            if req.exists():
                reqs.append(req)
        out.append(
            Artifact(
                lid,
                fn.handler,
                build_dir / lid,
                tuple(layers),
                tuple(reqs),
                sample_events(fn.dir_name, events_dir),
            )
        )
    return out


def _files(root: Path, *, bytecode: bool = False) -> Iterator[str]:
    """The files under ``root`` (relative, sorted); the ``__pycache__`` ones only with ``bytecode``."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and (bytecode or "__pycache__" not in path.parts):
            yield path.relative_to(root).as_posix()


def top_level(root: Path) -> set[str]:
    """Importable top-level names in a directory (packages, modules, extension modules)."""
    names = set()
    for entry in root.iterdir() if root.is_dir() else []:
        if entry.name.endswith((".dist-info", ".egg-info", ".data")) or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            names.add(entry.name)
        elif entry.suffix in (".py", ".so", ".pyd"):
            names.add(entry.name.split(".", 1)[0])
    return names


def distributions(root: Path) -> dict[str, Path]:
    """Canonical distribution name -> its .dist-info directory."""
    from packaging.utils import canonicalize_name

    out: dict[str, Path] = {}
    for info in sorted(root.glob("*.dist-info")) if root.is_dir() else []:
        out[canonicalize_name(info.name[: -len(".dist-info")].rsplit("-", 1)[0])] = info
    return out


def _version(info: Path) -> str:
    for line in (info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "0"


def _requires(info: Path) -> list[str]:
    lines = (info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")]


ELF_MACHINES = {62: "x86_64", 183: "aarch64"}  # e_machine of the ELF header


def foreign_binaries(root: Path, machine: str, py_version: str) -> list[str]:
    """Extension modules built for another machine (ELF e_machine) or another CPython (file name tag):
    what a build for the wrong target (or a SAM cache shared between targets) leaves behind."""
    tag = "cpython-" + py_version.replace(".", "")
    out = []
    for rel in _files(root):
        if not rel.endswith(".so") and ".so." not in rel:
            continue
        name = rel.rsplit("/", 1)[-1]
        found = re.search(r"\.(cpython-\d+)-", name)
        if found and found.group(1) != tag:
            out.append(f"{rel} is built for {found.group(1)}, not {tag}")
            continue
        with (root / rel).open("rb") as f:
            head = f.read(20)
        if head[:4] == b"\x7fELF" and len(head) == 20:
            built = ELF_MACHINES.get(int.from_bytes(head[18:20], "little"), "another machine")
            if built != machine:
                out.append(f"{rel} is built for {built}, not {machine}")
    return out


def bytecode_problems(root: Path, py_version: str) -> list[str]:
    """Modules under ``root`` without bytecode for CPython ``py_version`` that Lambda can use as it is:
    ``__pycache__/<module>.cpython-XY.pyc``, hash-based and unchecked (PEP 552; a timestamp-based one
    would be compared with the source's mtime, which the zip does not keep exactly), and no bytecode
    of another CPython (docs/adr/0011)."""
    tag = "cpython-" + py_version.replace(".", "")
    missing, stale, checked = [], [], []
    for py in sorted(root.rglob("*.py")) if root.is_dir() else []:
        rel = py.relative_to(root)
        if any(part.endswith((".dist-info", ".data")) for part in rel.parts):
            continue
        pyc = py.parent / "__pycache__" / f"{py.stem}.{tag}.pyc"
        if not pyc.is_file():
            missing.append(rel.as_posix())
            continue
        with pyc.open("rb") as f:
            flags = int.from_bytes(f.read(8)[4:8], "little")
        if flags != 0b01:  # bit 0: hash-based; bit 1: check the source
            checked.append(rel.as_posix())
    for pyc in sorted(root.rglob("__pycache__/*.pyc")) if root.is_dir() else []:
        if f".{tag}." not in pyc.name:
            stale.append(pyc.relative_to(root).as_posix())
    out = []
    for what, files in (
        (f"module(s) without {tag} bytecode", missing),
        ("module(s) whose bytecode is not unchecked-hash", checked),
        (f"bytecode file(s) of another CPython than {tag}", stale),
    ):
        if files:
            out.append(f"{len(files)} {what}, e.g. {', '.join(files[:3])}")
    return out


def packaging_problems(
    art: Artifact, runtime: Path, py_version: str, machine: str | None = None
) -> list[str]:
    """The packaging rules of one function (module docstring, point 2); ``machine`` (x86_64, aarch64):
    also no extension module built for another machine or Python."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    problems = []
    for layer, path in (("its code", art.code), *art.layers):
        problems += [f"{layer}: {p}" for p in bytecode_problems(path, py_version)]
        if machine is not None:
            problems += [f"{layer}: {p}" for p in foreign_binaries(path, machine, py_version)]
    seen_files: dict[str, str] = {}
    seen_dists: dict[str, str] = {}
    seen_names: dict[str, str] = {name: "its code" for name in top_level(art.code)}
    for layer, path in art.layers:
        if not path.is_dir():
            problems.append(f"layer {layer}: no artifact directory {path}")
            continue
        for name in sorted(top_level(path)):
            if name in seen_names:
                problems.append(f"module {name!r} is shipped by {seen_names[name]} and by {layer}")
            seen_names.setdefault(name, layer)
        for dist in distributions(path):
            if dist in seen_dists:
                problems.append(f"distribution {dist} is shipped by {seen_dists[dist]} and by {layer}")
            seen_dists.setdefault(dist, layer)
        for rel in _files(path):
            if rel in seen_files and not rel.split("/", 1)[0].endswith(".dist-info"):
                problems.append(
                    f"file {rel} is shipped by {seen_files[rel]} and by {layer} (the later one wins)"
                )
            seen_files.setdefault(rel, layer)
    runtime_dists = distributions(runtime)
    runtime_names = top_level(runtime)
    for dist, layer in sorted(seen_dists.items()):
        if dist in runtime_dists and dist not in RUNTIME_SHADOW_ALLOWED:
            problems.append(f"{layer} ships {dist}, which shadows the Lambda runtime's copy")
    for name, owner in sorted(seen_names.items()):
        if name in runtime_names and owner != "its code":
            owned = {d for d, lay in seen_dists.items() if lay == owner} & set(runtime_dists)
            if not owned & RUNTIME_SHADOW_ALLOWED:
                problems.append(f"{owner} ships module {name!r}, which shadows the Lambda runtime's")
    # requirements: every installed distribution's, and the layers' requirements.txt
    have = {d: _version(info) for d, info in runtime_dists.items()}
    infos = {}
    for _, path in art.layers:
        for dist, info in distributions(path).items():
            have[dist] = _version(info)
            infos[dist] = info
    infos = {**{d: i for d, i in runtime_dists.items() if d not in infos}, **infos}
    marker_env = {"python_version": py_version, "python_full_version": f"{py_version}.0", "extra": ""}

    def check(requirement: str, who: str) -> None:
        try:
            req = Requirement(requirement)
        except InvalidRequirement:
            problems.append(f"{who}: cannot parse requirement {requirement!r}")
            return
        if req.marker is not None and not req.marker.evaluate(marker_env):
            return
        name = canonicalize_name(req.name)
        if name not in have:
            problems.append(f"{who} requires {req}, which {art.logical_id} does not have")
        elif req.specifier and not req.specifier.contains(have[name], prereleases=True):
            problems.append(f"{who} requires {req}, {art.logical_id} has {name} {have[name]}")

    for dist, info in sorted(infos.items()):
        for requirement in _requires(info):
            check(requirement, f"{dist} {have[dist]}")
    for req_file in art.requirements:
        for raw in req_file.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                check(
                    line, str(req_file.relative_to(ROOT)) if req_file.is_relative_to(ROOT) else str(req_file)
                )
    return problems


def merge_layers(art: Artifact, dest: Path) -> Path:
    """The function's layers merged in template order into ``dest/python`` (hard links where the file
    system allows, copies otherwise): what Lambda makes of them in ``/opt/python``, shipped bytecode
    (``__pycache__``) included."""
    target = dest / "python"
    shutil.rmtree(dest, ignore_errors=True)
    target.mkdir(parents=True)
    for _, layer in art.layers:
        for rel in _files(layer, bytecode=True):
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.exists():
                out.unlink()  # a later layer overwrites an earlier one's file
            try:
                os.link(layer / rel, out)
            except OSError:
                shutil.copy2(layer / rel, out)
    return target


def first_party_modules(code: Path, merged: Path) -> list[str]:
    """The modules to import: the code directory's, and every module of the calsync* packages."""
    mods = []
    for root, prefix_filter in ((code, None), (merged, "calsync")):
        for py in sorted(root.rglob("*.py")):
            rel = py.relative_to(root)
            if prefix_filter and not rel.parts[0].startswith(prefix_filter):
                continue
            if "__pycache__" in rel.parts or rel.name == "__main__.py":
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                mods.append(".".join(parts))
    return mods


# ---------------------------------------------------------------------------- running a function

# Runs in the isolated interpreter: nothing but the standard library until sys.path is set.
RUNNER = r"""
import importlib, json, os, sys, time, traceback, uuid
req = json.loads(sys.stdin.read())
sys.path[:0] = req["paths"]
out = {"events": [], "imports": [], "init_error": None, "sys_path": list(sys.path), "seconds": {}}

class Context:
    def __init__(self):
        self.function_name = req["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = req["memory"]
        self.invoked_function_arn = "arn:aws:lambda:%s:123456789012:function:%s" % (
            req["region"], req["function_name"])
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + req["function_name"]
        self.log_stream_name = "artifacts-check"
        self._deadline = time.monotonic() + req["timeout"]
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

def failure(exc):
    tb = "".join(traceback.format_exception(exc))
    return {"type": type(exc).__name__, "message": str(exc)[:500], "traceback": tb}

# what Lambda pays: the init (handler import), then each answer; wall time and this process's CPU time
start, cpu = time.perf_counter(), time.process_time()
try:
    module_name, _, attr = req["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attr)
except BaseException as exc:
    out["init_error"] = failure(exc)
else:
    out["seconds"]["init"] = time.perf_counter() - start
    out["seconds"]["init_cpu"] = time.process_time() - cpu
    if req["snapstart"]:
        # SnapStart emulated (docs/adr/0025): the before-snapshot hooks, then a fork stands for the
        # snapshot; the child (its CPU time starts at 0) is the restored copy: it runs the
        # after-restore hooks and answers, and writes the result; the parent waits
        hooks = sys.modules.get("calsync.snapstart")
        if hooks is not None:
            hooks.run_before_snapshot()
        out["seconds"]["snapshot_cpu"] = time.process_time() - cpu
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child:
            os._exit(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
        start, cpu = time.perf_counter(), time.process_time()
        if hooks is not None:
            hooks.run_after_restore()
    for name, event in req["events"]:
        try:
            out["events"].append({"event": name, "result": handler(event, Context())})
        except BaseException as exc:
            out["events"].append({"event": name, "error": failure(exc)})
        out["events"][-1]["seconds"] = time.perf_counter() - start  # since the init began
        out["events"][-1]["cpu_seconds"] = time.process_time() - cpu
    for mod in req["modules"]:
        try:
            importlib.import_module(mod)
        except BaseException as exc:
            out["imports"].append({"module": mod, "error": failure(exc)})
with open(req["result_file"], "w") as f:
    json.dump(out, f, default=str)
"""


@dataclass
class Outcome:
    logical_id: str
    problems: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # "event -> 200" lines
    # wall and CPU seconds (this process's) of the handler's import, and of the import and the first
    # event's answer
    init_seconds: float | None = None
    init_cpu_seconds: float | None = None
    first_answer_seconds: float | None = None
    first_answer_cpu_seconds: float | None = None


def run_function(
    art: Artifact,
    merged: Path,
    runtime: Path,
    env: Mapping[str, str],
    *,
    python: str = sys.executable,
    timeout: int = 30,
    memory: int = 512,
    workdir: Path,
    events: tuple[Path, ...] | None = None,
    import_all: bool = True,
    snapstart: bool = False,
) -> Outcome:
    """Run one function from its artifacts in ``python -I -S -B`` (``-B``: Lambda's ``/var/task`` and
    ``/opt`` are read-only, so no bytecode is written: only what the artifacts ship is used); the
    problems it showed. ``events``: these instead of its sample events; ``import_all``: then import
    every first-party module it ships; ``snapstart``: the answers are timed in a fork made after the
    init and the before-snapshot hooks, which runs the after-restore hooks first (SnapStart emulated)."""
    outcome = Outcome(art.logical_id)
    result_file = workdir / f"{art.logical_id}.result.json"
    result_file.unlink(missing_ok=True)
    request = {
        "paths": [str(art.code), str(merged), str(runtime)],
        "handler": art.handler,
        "function_name": f"calsync-{art.logical_id}",
        "region": env.get("AWS_REGION", REGION),
        "memory": memory,
        "timeout": timeout,
        "events": [[p.name, json.loads(p.read_text())] for p in (art.events if events is None else events)],
        "modules": first_party_modules(art.code, merged) if import_all else [],
        "result_file": str(result_file),
        "snapstart": snapstart,
    }
    try:
        proc = subprocess.run(
            [python, "-I", "-S", "-B", "-c", RUNNER],
            check=False,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=dict(env),
            cwd=art.code,  # Lambda's working directory is /var/task
            timeout=timeout * max(1, len(art.events)) + 120,
        )
    except subprocess.TimeoutExpired:
        outcome.problems.append("timed out")
        return outcome
    output = proc.stdout + proc.stderr
    (workdir / f"{art.logical_id}.log").write_text(output)
    if not result_file.exists():
        outcome.problems.append(f"the interpreter exited with {proc.returncode}: {output[-2000:]}")
        return outcome
    result = json.loads(result_file.read_text())
    outcome.init_seconds = result["seconds"].get("init")
    outcome.init_cpu_seconds = result["seconds"].get("init_cpu")
    if result["events"]:
        outcome.first_answer_seconds = result["events"][0].get("seconds")
        outcome.first_answer_cpu_seconds = result["events"][0].get("cpu_seconds")
    if result["init_error"]:
        err = result["init_error"]
        outcome.problems.append(f"init: {err['type']}: {err['message']}\n{err['traceback']}")
        return outcome
    for ev in result["events"]:
        if "error" in ev:
            err = ev["error"]
            outcome.problems.append(f"{ev['event']}: {err['type']}: {err['message']}\n{err['traceback']}")
            continue
        answer = ev["result"]
        status = answer.get("statusCode") if isinstance(answer, dict) else None
        if isinstance(status, int):
            outcome.answers.append(f"{ev['event']} -> {status}")
            if status >= 500 and UNREACHABLE.search(output):
                outcome.answers[-1] += " (provider endpoint unreachable on purpose)"
            elif status >= 500:
                outcome.problems.append(f"{ev['event']}: HTTP {status}: {str(answer.get('body'))[:500]}")
        else:
            outcome.answers.append(f"{ev['event']} -> {json.dumps(answer, default=str)[:120]}")
            if isinstance(answer, dict) and answer.get("batchItemFailures"):
                # the worker catches what a record raised (Powertools' batch processor, unlogged)
                outcome.problems.append(f"{ev['event']}: records failed: {answer['batchItemFailures']}")
    for imp in result["imports"]:
        err = imp["error"]
        outcome.problems.append(f"import {imp['module']}: {err['type']}: {err['message']}")
    for line in output.splitlines():
        if PACKAGING_ERRORS.search(line):
            outcome.problems.append(f"its output names a packaging error: {line[:500]}")
    return outcome


# ---------------------------------------------------------------------------- the AWS side


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def aws_side(tpl: Mapping[str, Any], workdir: Path) -> Iterator[tuple[dict[str, str], Resolver]]:
    """DynamoDB Local (moto's server without Java) and moto for the other services, with the
    template's resources: (the endpoint environment, a resolver that names them)."""
    from local import servers
    from local.config import LOCAL_ENV_VARS
    from local.resources import create_aws_resources, create_tables, names

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    running: list[Any] = []
    try:
        ddb_port, aws_port = _free_port(), _free_port()
        found = servers.find_dynamodb_local()
        if found is not None:
            ddb = servers.start_dynamodb_local(found[0], found[1], ddb_port, workdir)
            running.append(ddb)
            ddb.wait_ready(ddb_port, timeout=60)
        else:
            log("WARNING: no Java or DynamoDB Local (make ddb-local): DynamoDB on moto's server")
            moto_ddb = servers.MotoServer("moto (DynamoDB)", ddb_port)
            moto_ddb.start()
            running.append(moto_ddb)
        moto = servers.MotoServer("moto", aws_port)
        moto.start()
        running.append(moto)
        ddb_url, aws_url = f"http://127.0.0.1:{ddb_port}", f"http://127.0.0.1:{aws_port}"
        created = names(tpl, REGION, PARAMETERS)
        create_tables(tpl, ddb_url, REGION, created, parameters=PARAMETERS)
        create_aws_resources(tpl, aws_url, REGION, created, parameters=PARAMETERS)
        resolver = Resolver(tpl, REGION, refs=created.refs, attrs=created.attrs, parameters=dict(PARAMETERS))
        env = {
            "AWS_ACCESS_KEY_ID": LOCAL_ENV_VARS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_ENV_VARS["AWS_SECRET_ACCESS_KEY"],
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_ENDPOINT_URL_DYNAMODB": ddb_url,
        }
        yield env, resolver
    finally:
        servers.stop_all(running, log)


def lambda_environment(
    art: Artifact, fn_env: Mapping[str, str], endpoints: Mapping[str, str]
) -> dict[str, str]:
    """What Lambda sets (the parts handlers and Powertools read) + the template's + the endpoints."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(art.code),
        "_HANDLER": art.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"calsync-{art.logical_id}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        **fn_env,
        **endpoints,
    }


# ---------------------------------------------------------------------------- main


def check(build_dir: Path, py_version: str, only: Iterable[str] = ()) -> int:
    tpl = load(TEMPLATE)
    runtime = build_dir.parent / "runtime"
    arts = [a for a in artifacts(tpl, build_dir) if not only or a.logical_id in set(only)]
    fns = functions(tpl)
    failed = 0
    machine = platform.machine()
    problems = {a.logical_id: packaging_problems(a, runtime, py_version, machine) for a in arts}
    workdir = build_dir.parent / "check"
    workdir.mkdir(parents=True, exist_ok=True)
    with aws_side(tpl, workdir) as (endpoints, resolver):
        for art in arts:
            merged = merge_layers(art, workdir / "opt" / art.logical_id)
            env = lambda_environment(art, function_environment(fns[art.logical_id], resolver), endpoints)
            outcome = run_function(
                art, merged, runtime, env, timeout=fns[art.logical_id].timeout,
                memory=fns[art.logical_id].memory, workdir=workdir,
            )  # fmt: skip
            all_problems = problems[art.logical_id] + outcome.problems
            status = "FAIL" if all_problems else "ok"
            print(
                f"{status:4} {art.logical_id}: {', '.join(outcome.answers) or 'no sample event'}", flush=True
            )
            for p in all_problems:
                print(f"     - {p}", flush=True)
            failed += bool(all_problems)
    print(f"{len(arts) - failed} of {len(arts)} functions run from their artifacts (logs: {workdir})")
    return 1 if failed else 0


def shipped_target(tpl: Mapping[str, Any]) -> tuple[str, str]:
    """(pip --platform, --python-version) of the template's functions (Globals: python3.13, arm64)."""
    glob = (tpl.get("Globals") or {}).get("Function") or {}
    runtime = str(glob.get("Runtime", ""))
    arch = (glob.get("Architectures") or ["x86_64"])[0]
    if not runtime.startswith("python3."):
        raise SystemExit(f"template.yaml: Globals.Function.Runtime {runtime!r} is not a Python runtime")
    return f"manylinux2014_{'aarch64' if arch == 'arm64' else 'x86_64'}", runtime.removeprefix("python")


def check_shipped(shipped_dir: Path, work_dir: Path) -> int:
    """The packaging rules on the build that is deployed (make build: arm64 / CPython 3.13), with the
    runtime's packages for that target; nothing runs there (other machine, other Python)."""
    tpl = load(TEMPLATE)
    if not (shipped_dir / "template.yaml").exists():
        log(f"{shipped_dir} holds no build (make build): the deployed artifacts' packaging is not checked")
        return 0
    plat, py_version = shipped_target(tpl)
    runtime = work_dir / f"runtime-{plat}-{py_version}"
    install_runtime(runtime, plat, py_version)
    failed = 0
    for art in artifacts(tpl, shipped_dir):
        problems = packaging_problems(art, runtime, py_version, plat.removeprefix("manylinux2014_"))
        print(
            f"{'FAIL' if problems else 'ok':4} {art.logical_id} as deployed ({plat}, {py_version})",
            flush=True,
        )
        for problem in problems:
            print(f"     - {problem}", flush=True)
        failed += bool(problems)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.artifacts", description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="where sam build puts the host build")
    p.add_argument("--no-build", action="store_true", help="check what --build-dir holds (no sam build)")
    p.add_argument(
        "--shipped-build-dir",
        type=Path,
        help="also check the packaging rules on this build for the template's target (make build's)",
    )
    p.add_argument("functions", nargs="*", metavar="LogicalId", help="only these functions")
    args = p.parse_args(argv)
    plat, py_version = host_target()
    build_dir = args.build_dir.resolve()
    if not args.no_build:
        build(build_dir, plat, py_version)
        install_runtime(build_dir.parent / "runtime", plat, py_version)
    shipped = (
        check_shipped(args.shipped_build_dir.resolve(), build_dir.parent) if args.shipped_build_dir else 0
    )
    return check(build_dir, py_version, args.functions) or shipped


if __name__ == "__main__":
    sys.exit(main())
