"""The artifact check (local/artifacts.py, `make artifacts-check`) and the layer Makefiles it relies
on: a function runs from its artifact directories only, and the check fails when an artifact lacks a
module or a data file it uses, ships a package twice or shadows the runtime's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local.artifacts import (
    Artifact,
    artifacts,
    bytecode_problems,
    merge_layers,
    packaging_problems,
    run_function,
    sample_events,
)
from local.template import ROOT, template

APP = """
import json
from pathlib import Path

import mylib

DATA = Path(__file__).parent / "data.json"


def lambda_handler(event, context):
    if "import" in event:
        __import__(event["import"])
    return {"statusCode": event.get("status", 200), "body": DATA.read_text() + mylib.VALUE}
"""


def _pyc(module: Path, tag: str = "cpython-313", flags: int = 0b01) -> None:
    """A bytecode file beside ``module`` as the build ships it (header only: magic, flags, hash)."""
    cache = module.parent / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / f"{module.stem}.{tag}.pyc").write_bytes(b"\xf3\r\r\n" + flags.to_bytes(4, "little") + bytes(8))


def _dist(site: Path, name: str, version: str, *requires: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


@pytest.fixture
def build(tmp_path: Path) -> tuple[Artifact, Path]:
    """A function whose code imports ``mylib`` (layer A, needs ``dep>=2``) and reads data.json."""
    code = tmp_path / "Fn"
    code.mkdir()
    (code / "app.py").write_text(APP)
    (code / "data.json").write_text('{"ok": true}')
    layer_a = tmp_path / "LayerA" / "python"
    layer_a.mkdir(parents=True)
    (layer_a / "mylib.py").write_text("import dep\nVALUE = dep.VALUE\n")
    _dist(layer_a, "mylib", "1.0", "dep>=2")
    layer_b = tmp_path / "LayerB" / "python"
    layer_b.mkdir(parents=True)
    (layer_b / "dep.py").write_text("VALUE = 'from B'\n")
    _dist(layer_b, "dep", "2.0")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "six.py").write_text("")
    _dist(runtime, "six", "1.17.0")
    events = tmp_path / "events"
    events.mkdir()
    (events / "fn-ok.json").write_text("{}")
    for module in (code / "app.py", layer_a / "mylib.py", layer_b / "dep.py"):
        _pyc(module)
    art = Artifact(
        "Fn",
        "app.lambda_handler",
        code,
        (("LayerA", layer_a), ("LayerB", layer_b)),
        (),
        (events / "fn-ok.json",),
    )
    return art, tmp_path


def _run(art: Artifact, tmp: Path) -> list[str]:
    merged = merge_layers(art, tmp / "opt" / art.logical_id)
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return run_function(art, merged, tmp / "runtime", env, timeout=20, workdir=work).problems


def test_a_function_runs_from_its_artifacts(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    assert _run(art, tmp) == []
    assert packaging_problems(art, tmp / "runtime", "3.13") == []


def test_the_interpreter_sees_nothing_but_the_artifacts(build: tuple[Artifact, Path]) -> None:
    """yaml is installed where the check runs; the function does not ship it, so it cannot import it."""
    art, tmp = build
    (tmp / "events" / "fn-ok.json").write_text(json.dumps({"import": "yaml"}))
    problems = _run(art, tmp)
    assert any("ModuleNotFoundError" in p and "yaml" in p for p in problems), problems


def test_a_module_missing_from_a_layer_fails(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    (tmp / "LayerB" / "python" / "dep.py").unlink()
    problems = _run(art, tmp)
    assert any("init: ModuleNotFoundError: No module named 'dep'" in p for p in problems), problems


def test_a_data_file_missing_from_the_code_fails(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    (tmp / "Fn" / "data.json").unlink()
    problems = _run(art, tmp)
    assert any("FileNotFoundError" in p for p in problems), problems


def test_a_server_error_fails_a_client_error_does_not(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    (tmp / "events" / "fn-ok.json").write_text(json.dumps({"status": 404}))
    assert _run(art, tmp) == []
    (tmp / "events" / "fn-ok.json").write_text(json.dumps({"status": 502}))
    assert any("HTTP 502" in p for p in _run(art, tmp))


def test_a_module_of_the_code_that_no_sample_imports_is_still_imported(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    (tmp / "Fn" / "late.py").write_text("import not_shipped\n")
    problems = _run(art, tmp)
    assert problems == ["import late: ModuleNotFoundError: No module named 'not_shipped'"]


def test_a_later_layer_overwrites_an_earlier_ones_file(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    (tmp / "LayerB" / "python" / "mylib.py").write_text("VALUE = 'B wins'\n")
    merged = merge_layers(art, tmp / "opt")
    assert (merged / "mylib.py").read_text() == "VALUE = 'B wins'\n"
    assert (merged / "dep.py").exists()


def test_a_package_in_two_layers_is_a_problem(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    layer_b = tmp / "LayerB" / "python"
    (layer_b / "mylib.py").write_text("VALUE = 1\n")
    _dist(layer_b, "mylib", "1.0")
    problems = packaging_problems(art, tmp / "runtime", "3.13")
    assert "distribution mylib is shipped by LayerA and by LayerB" in problems
    assert "module 'mylib' is shipped by LayerA and by LayerB" in problems
    assert "file mylib.py is shipped by LayerA and by LayerB (the later one wins)" in problems


def test_a_layer_shadowing_the_runtime_is_a_problem(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    layer_a = tmp / "LayerA" / "python"
    (layer_a / "six.py").write_text("")
    _dist(layer_a, "six", "1.16.0")
    problems = packaging_problems(art, tmp / "runtime", "3.13")
    assert "LayerA ships six, which shadows the Lambda runtime's copy" in problems
    assert "LayerA ships module 'six', which shadows the Lambda runtime's" in problems


def test_an_unmet_requirement_is_a_problem(build: tuple[Artifact, Path]) -> None:
    art, tmp = build
    layer_b = tmp / "LayerB" / "python"
    shutil.rmtree(layer_b / "dep-2.0.dist-info")
    _dist(layer_b, "dep", "1.5")
    req = tmp / "requirements.txt"
    req.write_text("# comment\nsix>=1.18  # newer than the runtime's\nmylib\n")
    art = Artifact(art.logical_id, art.handler, art.code, art.layers, (req,), art.events)
    problems = packaging_problems(art, tmp / "runtime", "3.13")
    assert "mylib 1.0 requires dep>=2, Fn has dep 1.5" in problems
    assert f"{req} requires six>=1.18, Fn has six 1.17.0" in problems
    assert len(problems) == 2


def test_sample_events_are_the_code_dirs_own(tmp_path: Path) -> None:
    for name in ("google_sync.json", "google_sync-jobs.json", "google_sync_x-jobs.json", "google.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in sample_events("google_sync", tmp_path)] == [
        "google_sync.json",
        "google_sync-jobs.json",
    ]


def test_every_function_of_the_template_has_a_sample_and_its_layers_in_template_order() -> None:
    arts = {a.logical_id: a for a in artifacts(template(), Path("/build"))}
    assert len(arts) == 17
    assert [lid for lid, _ in arts["AccountsFunction"].layers] == [
        "CoreLayer",
        "CaldavLayer",
        "GoogleLayer",
        "MicrosoftLayer",
    ]
    assert arts["AccountsFunction"].layers[0][1] == Path("/build/CoreLayer/python")
    assert [p.name for p in arts["CaldavSyncFunction"].requirements[1:]] == ["requirements.txt"]
    assert all(a.events for a in arts.values()), [lid for lid, a in arts.items() if not a.events]


# ---------------------------------------------------------------------------- the layer Makefiles

LAYERS = {
    "core": "CoreLayer",
    "caldav": "CaldavLayer",
    "google": "GoogleLayer",
    "microsoft": "MicrosoftLayer",
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_layer_builds_for_the_platform_and_python_of_the_environment(layer: str, tmp_path: Path) -> None:
    """sam build passes its environment to make: PLATFORM / PY_VERSION select the wheels."""
    env = {
        **os.environ,
        "PLATFORM": "manylinux2014_x86_64",
        "PY_VERSION": "3.11",
        "ARTIFACTS_DIR": str(tmp_path),
    }
    dry = subprocess.run(
        ["make", "-n", "-f", str(ROOT / "layers" / layer / "Makefile"), f"build-{LAYERS[layer]}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--platform manylinux2014_x86_64" in dry
    assert "--python-version 3.11" in dry
    assert "aarch64" not in dry
    assert "cpython-3" not in dry  # no file named for one platform / interpreter


def test_removing_a_distribution_removes_every_file_it_installed(tmp_path: Path) -> None:
    site = tmp_path / "python"
    (site / "cffi").mkdir(parents=True)
    (site / "cffi" / "__init__.py").write_text("")
    (site / "_cffi_backend.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    _dist(site, "cffi", "2.0")
    (site / "cffi-2.0.dist-info" / "RECORD").write_text(
        "cffi/__init__.py,sha256=x,0\n_cffi_backend.cpython-311-x86_64-linux-gnu.so,sha256=y,0\n"
        "../../bin/cffi-tool,,\ncffi-2.0.dist-info/RECORD,,\n"
    )
    (site / "keep.py").write_text("")
    _dist(site, "keep", "1.0")
    subprocess.run(["sh", str(ROOT / "layers" / "remove-dists.sh"), str(site), "cffi", "absent"], check=True)
    assert sorted(p.name for p in site.iterdir()) == ["keep-1.0.dist-info", "keep.py"]


def test_the_check_runs_with_the_interpreter_it_builds_for() -> None:
    from local.artifacts import host_target

    plat, version = host_target()
    assert version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert plat.startswith("manylinux2014_")


def _elf(path: Path, machine: int) -> None:
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44))


def test_an_extension_module_for_another_machine_or_python_is_a_problem(build: tuple[Artifact, Path]) -> None:
    """What a SAM build cache shared between targets leaves: x86_64 / cp311 files in an arm64 / 3.13 build."""
    art, tmp = build
    layer_a = tmp / "LayerA" / "python"
    _elf(layer_a / "_native.abi3.so", 183)  # aarch64
    assert packaging_problems(art, tmp / "runtime", "3.13", "aarch64") == []
    _elf(layer_a / "_cffi_backend.cpython-311-x86_64-linux-gnu.so", 62)
    _elf(layer_a / "_rust.abi3.so", 62)
    problems = packaging_problems(art, tmp / "runtime", "3.13", "aarch64")
    assert problems == [
        "LayerA: _cffi_backend.cpython-311-x86_64-linux-gnu.so is built for cpython-311, not cpython-313",
        "LayerA: _rust.abi3.so is built for x86_64, not aarch64",
    ]


def test_a_module_without_usable_bytecode_for_the_runtime_is_a_problem(build: tuple[Artifact, Path]) -> None:
    """Lambda's /opt and /var/task are read-only: a module without bytecode is compiled at every cold
    start, and so is one whose bytecode is timestamp-checked (the zip does not keep the mtime)."""
    art, tmp = build
    layer_a, layer_b = tmp / "LayerA" / "python", tmp / "LayerB" / "python"
    (layer_a / "more.py").write_text("")
    _pyc(layer_a / "more.py", tag="cpython-311")
    (layer_b / "dep.py").with_name("__pycache__").joinpath("dep.cpython-313.pyc").unlink()
    _pyc(layer_b / "dep.py", flags=0b00)  # timestamp-based
    assert packaging_problems(art, tmp / "runtime", "3.13") == [
        "LayerA: 1 module(s) without cpython-313 bytecode, e.g. more.py",
        "LayerA: 1 bytecode file(s) of another CPython than cpython-313, e.g. "
        "__pycache__/more.cpython-311.pyc",
        "LayerB: 1 module(s) whose bytecode is not unchecked-hash, e.g. dep.py",
    ]


def test_the_build_ships_bytecode_that_is_used_without_looking_at_the_source(tmp_path: Path) -> None:
    """layers/bytecode.sh, with the interpreter of PY_VERSION (here this one's)."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    site = tmp_path / "python"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("WHAT = 'the shipped bytecode'\n")
    env = {**os.environ, "PY_VERSION": version}
    subprocess.run(["sh", str(ROOT / "layers" / "bytecode.sh"), str(site)], env=env, check=True)
    assert bytecode_problems(site, version) == []
    (site / "pkg" / "__init__.py").write_text("WHAT = 'the source'\n")  # same size, another mtime
    probe = f"import sys; sys.path.insert(0, {str(site)!r}); import pkg; print(pkg.WHAT)"
    what = subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert what == "the shipped bytecode"  # unchecked-hash: the source is never looked at


@pytest.mark.parametrize(
    ("makefile", "target"),
    [
        *((f"layers/{n}/Makefile", f"build-{lid}") for n, lid in LAYERS.items()),
        ("functions/api/Makefile", "build-ApiFunction"),
    ],
)
def test_every_artifact_gets_bytecode_for_the_runtimes_python(
    makefile: str, target: str, tmp_path: Path
) -> None:
    env = {**os.environ, "ARTIFACTS_DIR": str(tmp_path)}
    env.pop("PY_VERSION", None)
    dry = subprocess.run(
        ["make", "-n", "-f", str(ROOT / makefile), target],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "PY_VERSION=3.13 sh" in dry and "bytecode.sh" in dry
    assert dry.rstrip().splitlines()[-1].startswith("PY_VERSION=3.13 sh")  # last: after every copy


def test_the_deployed_build_is_checked_for_the_templates_target() -> None:
    from local.artifacts import shipped_target

    assert shipped_target(template()) == ("manylinux2014_aarch64", "3.13")


SNAPSTART_HOOKS = """
import os
calls = []
def run_before_snapshot():
    calls.append(("before", os.getpid()))
def run_after_restore():
    calls.append(("after", os.getpid()))
"""


def test_snapstart_is_emulated_by_a_fork_after_the_before_snapshot_hooks(tmp_path: Path) -> None:
    # docs/adr/0025: the before-snapshot hooks run in the process that imported the handler; the
    # after-restore hooks and the answer run in its fork, whose result is the one reported
    code = tmp_path / "Fn"
    (code / "calsync").mkdir(parents=True)
    (code / "calsync" / "__init__.py").write_text("")
    (code / "calsync" / "snapstart.py").write_text(SNAPSTART_HOOKS)
    (code / "app.py").write_text(
        "import os\nfrom calsync import snapstart\nINIT = os.getpid()\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'body': [INIT, os.getpid(), snapstart.calls]}\n"
    )
    (tmp_path / "event.json").write_text("{}")
    art = Artifact("Fn", "app.handler", code, ())
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "opt").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for snapstart in (False, True):
        outcome = run_function(
            art, tmp_path / "opt", tmp_path, env, workdir=work, events=(tmp_path / "event.json",),
            import_all=False, snapstart=snapstart,
        )  # fmt: skip
        assert outcome.problems == []
        init, answer, calls = json.loads((work / "Fn.result.json").read_text())["events"][0]["result"]["body"]
        if snapstart:
            assert answer != init
            assert calls == [["before", init], ["after", answer]]
        else:
            assert (answer, calls) == (init, [])
