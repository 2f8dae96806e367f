"""Lambda SnapStart runtime hooks (docs/adr/0025).

With SnapStart, Lambda runs a function's init once, when a version is published, runs the
before-snapshot hooks, and snapshots the memory; a cold start then restores that snapshot and runs
the after-restore hooks (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html).
The hooks come from the runtime's ``snapshot_restore_py`` module; outside Lambda (tests, the bench's
emulation of a snapshot by ``fork``) a registry of the same shape stands in, and
``run_before_snapshot``/``run_after_restore`` run it in the runtime's order (before: the reverse of
registration; after: the order of registration).

Before the snapshot, :func:`prime` builds what the first answer would build anyway, with no side
effect and no call to AWS: the pydantic models of the loaded calsync modules, the dependencies of
each route of the handler module's Powertools resolver (its validation adapters), the handler
module's ``Wiring`` (its boto3 clients and resources: no request is sent), and botocore's loaded
service models. After a restore, :func:`reset` reseeds ``random`` (botocore's retry jitter and the
providers' backoff draw from it: every restored copy would draw the same numbers). Nothing else of
the snapshot must differ per copy: ``uuid4``, ``secrets`` and ``os.urandom`` read the kernel at each
call, no connection is opened before the snapshot, and with SnapStart Lambda gives the SDK container
credentials, which botocore refreshes when they expire (a WARNING after the restore if the clients
sign with access keys from the environment instead).

This module is imported by ``calsync/__init__.py``: every function registers the hooks (the runtime
only runs the hooks of a module the handler imports), and they run only where SnapStart is on.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import random
import socket
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

_Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class LocalHooks:
    """The runtime's registry where there is no runtime: registered the same way, run in its order."""

    def __init__(self) -> None:
        self.before: list[_Hook] = []
        self.after: list[_Hook] = []

    def register_before_snapshot(
        self, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Callable[..., Any]:
        self.before.append((func, args, kwargs))
        return func

    def register_after_restore(
        self, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Callable[..., Any]:
        self.after.append((func, args, kwargs))
        return func

    def run_before_snapshot(self) -> None:
        """Run the before-snapshot hooks as the runtime does (the reverse of their registration)."""
        for func, args, kwargs in reversed(self.before):
            func(*args, **kwargs)

    def run_after_restore(self) -> None:
        """Run the after-restore hooks as the runtime does (in the order of their registration)."""
        for func, args, kwargs in self.after:
            func(*args, **kwargs)


LOCAL_HOOKS = LocalHooks()
run_before_snapshot = LOCAL_HOOKS.run_before_snapshot
run_after_restore = LOCAL_HOOKS.run_after_restore

try:  # the Lambda runtime's (python3.12+): it runs what is registered there
    from snapshot_restore_py import (  # type: ignore[import-not-found]
        register_after_restore,
        register_before_snapshot,
    )

    IN_RUNTIME = True
except ImportError:  # anywhere else: the local registry (run by run_before_snapshot/run_after_restore)
    register_before_snapshot = LOCAL_HOOKS.register_before_snapshot
    register_after_restore = LOCAL_HOOKS.register_after_restore
    IN_RUNTIME = False


def handler_module() -> Any | None:
    """The module of the function's handler (``_HANDLER``, set by Lambda: ``app.handler``)."""
    name = os.environ.get("_HANDLER", "").rpartition(".")[0]
    return sys.modules.get(name) if name else None


def build_models() -> int:
    """Build the deferred pydantic models (docs/adr/0022) of every loaded calsync module."""
    base = sys.modules.get("pydantic")
    if base is None:
        return 0
    built = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("calsync") or module is None:
            continue
        for obj in list(vars(module).values()):
            model: Any = obj
            if (
                isinstance(obj, type)
                and issubclass(obj, base.BaseModel)
                and obj.__module__ == name
                and not model.__pydantic_complete__
                and not model.__pydantic_generic_metadata__["parameters"]
            ):
                model.model_rebuild()
                built += 1
    return built


def prime_routes(module: Any) -> int:
    """Each route's dependencies of the module's Powertools resolvers: the validation adapters of
    its parameters and body, built on a route's first request otherwise."""
    primed = 0
    for obj in list(vars(module).values()):
        routes = [*getattr(obj, "_static_routes", ()), *getattr(obj, "_dynamic_routes", ())]
        for route in routes:
            if getattr(route, "dependant", None) is not None:
                getattr(route, "body_field", None)
                primed += 1
    return primed


class CallBeforeSnapshot(RuntimeError):
    """A connection was opened while the snapshot is being prepared."""


@contextlib.contextmanager
def no_connections() -> Iterator[None]:
    """No socket connects in the block, but to the container credentials endpoint (with SnapStart,
    Lambda gives the SDK its credentials there). A ``RuntimeError``, which botocore does not retry."""
    allowed = urllib.parse.urlsplit(os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")).hostname
    real = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if allowed is None or host != allowed:
            raise CallBeforeSnapshot(f"no connection before the snapshot: {address!r}")
        real(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]


def build_wiring(module: Any) -> list[str]:
    """Build the module's ``Wiring`` (docs/adr/0023) where that sends nothing (its clients and
    tables); one that needs a call (e.g. a secret read) is left to the first request. The names of
    those left."""
    wiring = sys.modules.get("calsync.wiring")  # loaded where a handler module holds a Wiring
    if wiring is None:
        return []
    left = []
    for name, obj in list(vars(module).items()):
        if isinstance(obj, wiring.Wiring) and not obj.built:
            try:
                with no_connections():
                    obj()
            except Exception as exc:  # the first request builds it, as without SnapStart
                left.append(name)
                logger.warning(
                    "snapstart: %s.%s is built on the first request: it calls out (%s: %s)",
                    module.__name__,
                    name,
                    type(exc).__name__,
                    str(exc)[:200],
                )
    return left


def load_service_models() -> None:
    """botocore's data for the DynamoDB resource (every function has the table): the JSON models are
    kept by the default session's loader, so a later client or resource reads none again; the
    session resolves its credentials here too (with SnapStart: from the container endpoint)."""
    boto3 = importlib.import_module("boto3")
    boto3.resource("dynamodb")


def prime() -> None:
    """Before the snapshot: what the first answer would build anyway."""
    load_service_models()  # first: it resolves the default session's credentials (outside the guard)
    module = handler_module()
    if module is not None:
        build_wiring(module)
        prime_routes(module)
    build_models()


def reset() -> None:
    """After a restore: what must differ in each restored copy."""
    random.seed()  # from os.urandom: no two copies draw the same jitter
    check_credentials()


def check_credentials() -> str | None:
    """With SnapStart, Lambda gives the SDK container credentials, which botocore refreshes; access
    keys from the environment, resolved before the snapshot, would stay as they were: say so."""
    boto3 = sys.modules.get("boto3")
    session = getattr(boto3, "DEFAULT_SESSION", None)
    creds = session.get_credentials() if session is not None else None  # cached: no call
    method = getattr(creds, "method", None)
    if method == "env":
        logger.warning("snapstart: the restored clients sign with access keys from the environment")
    return method


register_before_snapshot(prime)
register_after_restore(reset)
