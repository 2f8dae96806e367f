"""Powertools' catch-all package ``__init__`` modules, loaded name by name (docs/adr/0022).

``aws_lambda_powertools.event_handler/__init__`` imports every resolver (AppSync with asyncio,
Bedrock, VPC Lattice, ...), ``aws_lambda_powertools.utilities.data_classes/__init__`` the event
class of every AWS service and ``aws_lambda_powertools.utilities.batch/__init__`` every processor,
while a function uses one resolver (API Gateway HTTP) or one event type (SQS, EventBridge):
importing any of their submodules runs the whole ``__init__`` first, at every cold start.

:func:`install` puts a lazy stand-in for each of these packages in ``sys.modules``: the package
itself (its ``__path__``, so submodules import as usual), whose names (``from
aws_lambda_powertools.event_handler import Response``) are each imported on first use from the
submodule the real ``__init__`` takes them from. The names are read from that ``__init__``'s own
``from .x import y`` lines, so the stand-in offers exactly the names of the installed Powertools; an
``__init__`` that does anything else is imported as usual.

It must run before anything imports these packages: ``calsync/__init__.py`` calls it, and the
functions import Powertools' event handler through :mod:`calsync.api.http`. A package already
imported is left as it is (the same objects either way: only when they are loaded differs).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

LAZY_PACKAGES = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.batch",
)
# Imported by install() while pydantic is not loaded yet: the batch utility's type aliases, which
# otherwise import (and build) Powertools' parser models of SQS, DynamoDB streams, Kinesis and Kafka
# records whenever pydantic is already loaded, for annotations only (calsync passes the batch
# processors no model: its workers validate the records' bodies themselves).
BEFORE_PYDANTIC = ("aws_lambda_powertools.utilities.batch.types",)


def install(packages: tuple[str, ...] = LAZY_PACKAGES) -> None:
    for name in packages:
        if name not in sys.modules:
            _install(name)
    if "pydantic" not in sys.modules:
        for name in BEFORE_PYDANTIC:
            importlib.import_module(name)


def _install(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        return  # not installed as a source package: imported as usual
    try:
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return
    exports: dict[str, tuple[str, str]] = {}  # name -> (module, its name there)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                exports[alias.asname or alias.name] = (module, alias.name)
        elif not _harmless(node):
            return  # the __init__ does more than re-export: imported as usual
    package = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # PEP 562: the module's missing names
        try:
            module, original = exports[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None
        value = getattr(importlib.import_module(module, name), original)
        setattr(package, attr, value)
        return value

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    package.__all__ = sorted(exports)  # type: ignore[attr-defined]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    setattr(_module(parent), child, package)


def _harmless(node: ast.stmt) -> bool:
    """A docstring, ``from __future__`` or ``__all__ = [...]``: nothing the stand-in loses."""
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    return isinstance(node, ast.Assign) and all(
        isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
    )


def _module(name: str) -> ModuleType:
    return sys.modules.get(name) or importlib.import_module(name)
