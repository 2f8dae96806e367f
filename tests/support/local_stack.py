"""Start ``python -m local`` as a subprocess on free ports with template parameter overrides and
secret values (``CALSYNC_PARAMETERS`` / ``CALSYNC_SECRETS``, local/overrides.py), for the end-to-end
tests that point a provider's endpoints at a fake server. The ports are chosen first, so that a
parameter (a webhook URL) can name the stack's own API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

from tests.e2e.test_local_stack import PORT_VARS, ROOT, Stack

READY_TIMEOUT = 60.0
T = TypeVar("T")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stack_ports() -> dict[str, int]:
    """CALSYNC_*_PORT -> a free port."""
    return dict(zip(PORT_VARS, free_ports(len(PORT_VARS)), strict=True))


def start_stack(
    tmp: Path,
    ports: Mapping[str, int],
    *,
    parameters: Mapping[str, str] | None = None,
    secrets: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Stack:
    """The stack, answering on its API; raises (with its stderr) when it does not start."""
    state = tmp / "state"
    full_env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "CALSYNC_STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if parameters:
        full_env["CALSYNC_PARAMETERS"] = " ".join(f"{k}={v}" for k, v in parameters.items())
    if secrets:
        full_env["CALSYNC_SECRETS"] = json.dumps(dict(secrets))
    full_env.pop("AWS_PROFILE", None)
    out, err = tmp / "stack.out", tmp / "stack.err"
    api = f"http://127.0.0.1:{ports['CALSYNC_API_PORT']}"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=full_env,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        start_new_session=True,
    )
    stack = Stack(proc, full_env, {k.split("_")[1].lower(): v for k, v in ports.items()}, state, out, err)
    deadline = started + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the stack exited with {proc.returncode}:\n{err.read_text()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{api}/v1/openapi.json", timeout=1).status_code == 200:
                stack.ready_s = time.monotonic() - started
                return stack
        time.sleep(0.1)
    stack.stop()
    raise AssertionError(f"the stack did not answer within {READY_TIMEOUT} s:\n{err.read_text()}")


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """Yield the stack; kill it and its servers if a test left it running."""
    try:
        yield stack
    finally:
        if stack.proc.poll() is None:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            for pid in stack.info().get("children", []) if (stack.state / "stack.json").exists() else []:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def until(what: str, probe: Callable[[], T | None], timeout: float = 15.0, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def table_of(stack: Stack) -> Any:
    """The stack's DynamoDB table (boto3 resource)."""
    import boto3

    info = stack.info()
    return boto3.resource(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{info['ports']['dynamodb']}",
        region_name=info["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    ).Table(info["refs"]["Table"])
