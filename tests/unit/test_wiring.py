"""One way to wire a function (docs/adr/0023): ``calsync.wiring.Wiring`` builds once per container,
``use`` hands a test's deps over for a ``with`` block and always puts back what was there; the
wired functions keep no service locator of their own, and no test assigns a function module's
globals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from calsync.wiring import Wiring

ROOT = Path(__file__).resolve().parents[2]
# every function: each holds a ``Wiring`` of its kind and no locator of its own
WIRED = sorted(app.parent.name for app in (ROOT / "functions").glob("*/app.py"))


def test_every_function_is_listed() -> None:
    assert {"google_renew", "live_due", "presence", "scheduling"} <= set(WIRED) and len(WIRED) >= 17


def test_builds_once_on_first_use() -> None:
    built: list[object] = []

    def build() -> object:
        built.append(object())
        return built[-1]

    wiring = Wiring(build)
    assert built == []  # nothing at import time
    first = wiring()
    assert wiring() is first and len(built) == 1


def test_use_hands_deps_over_and_puts_back_what_was_there_even_on_failure() -> None:
    wiring = Wiring(lambda: "from settings")
    assert wiring() == "from settings"
    with wiring.use("outer"):
        assert wiring() == "outer"
        with pytest.raises(RuntimeError), wiring.use("inner"):
            assert wiring() == "inner"
            raise RuntimeError
        assert wiring() == "outer"
    assert wiring() == "from settings"


def test_use_before_first_build_leaves_it_unbuilt() -> None:
    calls: list[int] = []
    wiring = Wiring(lambda: calls.append(1) or "built")
    with wiring.use("test"):
        assert wiring() == "test"
    assert calls == []
    assert wiring() == "built" and calls == [1]


def _module_globals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("name", WIRED)
def test_a_wired_function_holds_one_wiring_and_no_locator_of_its_own(name: str) -> None:
    names = _module_globals(ROOT / "functions" / name / "app.py")
    assert "wiring" in names
    assert not names & {"set_dependencies", "set_table", "set_aws", "_overrides", "clock"}


# ---- no test patches a module's globals: a function's (functions.X.app) or a layer's (calsync*) ----
LAYER_PACKAGES = {p.name for p in (ROOT / "layers").glob("*/calsync*") if (p / "__init__.py").exists()}


def _is_module(dotted: str) -> bool:
    """``functions.cleanup.app``, ``calsync.store.wide``, ``calsync_google.writer``: a module (or a
    package) of a function or of a layer."""
    top = dotted.split(".", maxsplit=1)[0]
    if top == "functions":
        bases = [ROOT]
    elif top in LAYER_PACKAGES:
        bases = list((ROOT / "layers").iterdir())
    else:
        return False
    rel = Path(*dotted.split("."))
    return any(
        (base / rel).with_suffix(".py").exists() or (base / rel / "__init__.py").exists() for base in bases
    )


def _bound_modules(tree: ast.AST) -> dict[str, str]:
    """The names a test binds to such a module (``import calsync.x as y``, ``from calsync import x``,
    ``from functions.x import app as y``, ``y = importlib.import_module("calsync.x")``); by name, the
    module."""
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_module(alias.name):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if _is_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args:
            arg = node.value.args[0]
            if isinstance(arg, ast.Constant) and _is_module(str(arg.value)):
                modules.update({t.id: str(arg.value) for t in node.targets if isinstance(t, ast.Name)})
    return modules


def _root_name(node: ast.expr) -> str | None:
    """``a`` of ``a``, ``a.b``, ``a.b.c``, ``a.b[k]``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _patched_globals(path: Path) -> list[str]:
    """Where a test changes a global of a function's or a layer's module: ``<module>.<attr> = …``
    (also in a tuple, or an item of it), ``monkeypatch.setattr(<module>, …)`` / ``delattr``,
    ``setattr("calsync.x.y", …)``, ``monkeypatch.setitem(<module>.<attr>, …)`` / ``delitem``. A
    class's attribute (``setattr(module.Class, …)``) is not a module's global and is not counted."""
    tree = ast.parse(path.read_text())
    modules = _bound_modules(tree)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []
    for node in ast.walk(tree):
        hits: list[tuple[ast.expr, bool]] = []  # (expression, whether it is the module itself)
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elts = target.elts if isinstance(target, ast.Tuple) else [target]
                hits += [(t.value, True) for t in elts if isinstance(t, ast.Attribute)]
                hits += [(t.value, False) for t in elts if isinstance(t, ast.Subscript)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            first = node.args[0]
            if node.func.attr in {"setattr", "delattr"}:
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    dotted = first.value.rsplit(".", 1)[0]
                    if _is_module(dotted):
                        found.append(f"{where}:{node.lineno} {dotted}")
                    continue
                hits.append((first, True))
            elif node.func.attr in {"setitem", "delitem"}:
                hits.append((first, False))
        for hit, itself in hits:
            module = modules.get(_root_name(hit) or "")
            if module is not None and itself and not isinstance(hit, ast.Name):
                # ``a.b.c`` after ``import a.b.c``: the module; else a class's or an object's attribute
                dotted = ast.unparse(hit)
                module = dotted if _is_module(dotted) else None
            if module is not None:
                found.append(f"{where}:{node.lineno} {module}")
    return found


def test_the_check_finds_each_way_of_patching(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\n"
        "import calsync.store.photos as photos\n"
        "import calsync_microsoft.auth\n"
        "from calsync.store import wide\n"
        "from calsync.api.service import ApiService\n"
        "from functions.cleanup import app as cleanup\n"
        "service = importlib.import_module('calsync.api.service')\n"
        "due = importlib.import_module('functions.live_due.app')\n"
        "wide.WIDE_THRESHOLD = 2\n"
        "wide.WIDE_THRESHOLD, x = 2, 1\n"
        "wide.LIMITS['x'] = 2\n"
        "monkeypatch.setattr(service, 'MEETINGS_LIMIT', 3)\n"
        "monkeypatch.setattr('calsync_google.writer.uuid', None)\n"
        "monkeypatch.setitem(photos.TYPES, 'k', 1)\n"
        "calsync_microsoft.auth.SCOPES = ()\n"
        "cleanup.clock = None\n"
        "due.clock, y = None, 1\n"
        "monkeypatch.setattr(due, 'clock', None)\n"
        "monkeypatch.setitem(due._overrides, 'limit', 3)\n"
        # not a module's global: a class's attribute, an object's, a local's, another library's
        "monkeypatch.setattr(ApiService, 'x', 1)\n"
        "monkeypatch.setattr(photos.PhotoStore, 'x', 1)\n"
        "store = photos.PhotoStore(None, 'b')\n"
        "store.bucket = 'c'\n"
        "monkeypatch.setattr('boto3.client', None)\n"
        "with due.wiring.use(None): pass\n"
    )
    found = sorted(hit.split(" ")[-1] for hit in _patched_globals(sample))
    assert found == [
        "calsync.api.service",
        "calsync.store.photos",
        "calsync.store.wide",
        "calsync.store.wide",
        "calsync.store.wide",
        "calsync_google.writer",
        "calsync_microsoft.auth",
        "functions.cleanup.app",
        "functions.live_due.app",
        "functions.live_due.app",
        "functions.live_due.app",
    ]


def test_no_test_patches_a_module_global() -> None:
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    assert [hit for f in files for hit in _patched_globals(f)] == []
