"""The composition root: how a function gets what it works with (docs/adr/0023).

Each kind of function has one small, typed object of dependencies (the table's repositories, the
clock, its providers' factories), built from the settings (``calsync.config``) by one function in
the layer. A handler module holds one ``Wiring`` of it: built on the first request, once per
container, and read by the routes through Powertools' ``Depends``. A test builds the same object,
with its fakes, and hands it over with ``use`` for the time of a ``with`` block: no module global
is assigned, and what a test leaves behind is what it found.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Generic, TypeVar

import boto3

from calsync.config import get_settings
from calsync.domain.models import Provider

D = TypeVar("D")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Wiring(Generic[D]):
    """One function's dependencies: ``build()`` runs on the first call, once per container."""

    def __init__(self, build: Callable[[], D]) -> None:
        self._build = build
        self._deps: D | None = None
        self._lock = threading.Lock()

    def __call__(self) -> D:
        deps = self._deps
        if deps is None:
            with self._lock:
                if self._deps is None:
                    self._deps = self._build()
                deps = self._deps
        return deps

    @property
    def built(self) -> bool:
        """Whether the deps were built (or handed over) already."""
        return self._deps is not None

    @contextmanager
    def use(self, deps: D) -> Iterator[D]:
        """``deps`` for the calls made inside the block (tests, benches); then what was before."""
        with self._lock:
            saved, self._deps = self._deps, deps
        try:
            yield deps
        finally:
            with self._lock:
                self._deps = saved


def table_from_settings() -> Any:
    """The calsync table named by TABLE_NAME."""
    return boto3.resource("dynamodb").Table(get_settings().table_name)


# What calsync asks of each provider, registered once: its layer's ``provider`` module has
# ``writers(context, **options)`` (the scheduling function's writer) and, where the provider has
# push channels, ``push_stopper(table, box, **options)`` (C9). A layer is imported when first needed.
PROVIDER_MODULES: dict[Provider, str] = {
    Provider.CALDAV: "calsync_caldav.provider",
    Provider.GOOGLE: "calsync_google.provider",
    Provider.MICROSOFT: "calsync_microsoft.provider",
}


def provider_module(provider: Provider) -> ModuleType | None:
    """The provider layer's ``provider`` module; ``None`` where the function lacks the layer."""
    try:
        return importlib.import_module(PROVIDER_MODULES[provider])
    except ImportError:
        return None
