"""Run the template's function handlers in this process, as Lambda would.

Environment: Lambda gives each function its own process; here they share one, and environment
variables are process-global. The template's functions share almost all of their variables
(Globals), so the union is set once, at start-up, before any handler is imported. A variable that
two functions set to *different* values is the exception: then every invocation runs under one lock
with its own function's values swapped in (correct, slower; a warning says so).

Concurrency: like one warm Lambda container per function, a function runs one invocation at a time
(a lock per function): Powertools' resolver keeps the current event on the app object.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from local.template import Function, Resolver, function_environment, layer_paths

Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_s: int
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """The handler raised (Lambda's "Unhandled" error); the traceback was printed."""


class Runtime:
    def __init__(self, fns: Mapping[str, Function], resolver: Resolver, base_env: Mapping[str, str]) -> None:
        self.functions = dict(fns)
        self._envs = {lid: {**function_environment(fn, resolver), **base_env} for lid, fn in fns.items()}
        shared: dict[str, str] = {}
        self.conflicts: set[str] = set()
        for env in self._envs.values():
            for k, v in env.items():
                if k in shared and shared[k] != v:
                    self.conflicts.add(k)
                shared.setdefault(k, v)
        self.shared_env = {k: v for k, v in shared.items() if k not in self.conflicts}
        self._modules: dict[str, ModuleType] = {}
        # One invocation of a function at a time; and one of ANY function with HTTP routes at a time:
        # Powertools keeps the request being resolved at class level (BaseRouter.current_event), so
        # two resolvers in one process read each other's request (in AWS each runs in its own).
        http = threading.Lock()
        self._locks = {lid: http if fn.routes else threading.Lock() for lid, fn in fns.items()}
        self._env_lock = threading.Lock()
        self._import_lock = threading.Lock()
        self.region = base_env.get("AWS_REGION", resolver.region)

    def environment(self, logical_id: str) -> dict[str, str]:
        return dict(self._envs[logical_id])

    def install_environment(self) -> None:
        """Set the shared environment and the layers' paths (call once, before any invocation)."""
        os.environ.update(self.shared_env)
        for path in layer_paths(self.functions):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))

    def handler(self, logical_id: str) -> Handler:
        """Import the function's handler module by file path, under a unique module name."""
        fn = self.functions[logical_id]
        with self._import_lock:
            module = self._modules.get(logical_id)
            if module is None:
                path = fn.handler_file()
                if not path.exists():
                    raise FileNotFoundError(f"{logical_id}: handler file {path} does not exist (yet)")
                name = f"_calsync_fn_{logical_id}"
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                code_dir = str(fn.code_uri)
                sys.path.insert(0, code_dir)  # like Lambda: the code directory is on the path
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
                finally:
                    with contextlib.suppress(ValueError):
                        sys.path.remove(code_dir)
                self._modules[logical_id] = module
        handler: Handler = getattr(module, fn.handler_name)
        return handler

    def context(self, logical_id: str) -> LambdaContext:
        fn = self.functions[logical_id]
        name = f"calsync-local-{logical_id}"
        return LambdaContext(
            function_name=name,
            memory_limit_in_mb=fn.memory,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:123456789012:function:{name}",
            aws_request_id=str(uuid.uuid4()),
            timeout_s=fn.timeout,
        )

    @contextlib.contextmanager
    def _environment_of(self, logical_id: str) -> Iterator[None]:
        if not self.conflicts:
            yield
            return
        with self._env_lock:
            saved = {k: os.environ.get(k) for k in self.conflicts}
            own = self._envs[logical_id]
            for k in self.conflicts:
                if k in own:
                    os.environ[k] = own[k]
                else:
                    os.environ.pop(k, None)
            try:
                yield
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def lock_for(self, logical_id: str) -> threading.Lock:
        """What an invocation of ``logical_id`` holds while it runs."""
        return self._locks[logical_id]

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Call the handler once; FunctionError (traceback printed) if it raises."""
        handler = self.handler(logical_id)
        with self._locks[logical_id], self._environment_of(logical_id):
            try:
                return handler(event, self.context(logical_id))
            except Exception as exc:
                traceback.print_exc()
                raise FunctionError(f"{logical_id}: {type(exc).__name__}: {exc}") from exc
