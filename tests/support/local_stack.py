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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from local.config import free_ports as free_ports  # re-exported: the e2e tests draw ports here
from local.config import stack_ports as stack_ports

READY_TIMEOUT = 60.0
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
        return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running anything
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return True


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    ports: dict[str, int]
    state: Path
    out: Path
    err: Path
    ready_s: float = 0.0

    @classmethod
    def start(
        cls,
        tmp: Path,
        *,
        parameters: Mapping[str, str] | None = None,
        secrets: Mapping[str, Any] | None = None,
        **extra_env: str,
    ) -> Stack:
        """The stack on free ports with ``extra_env`` (and template ``parameters``, ``secrets`` as
        ``start_stack``), once its API answers and its banner is out."""
        stack = start_stack(tmp, stack_ports(), parameters=parameters, secrets=secrets, env=extra_env)
        deadline = time.monotonic() + 2 * READY_TIMEOUT
        while "TOKEN=" not in stack.out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # the banner comes once the demo's calendars are synced (local/demo.py)
        return stack

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state / "stack.json").read_text())
        return data

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "local.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def token(self, *args: str) -> str:
        done = self.cli("token", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def invoke(self, function: str, event: str | None = None) -> None:
        """Run ``function`` once against the stack, as its schedule would (``calsync-local invoke``,
        with ``event``: a file under events/); with ``CALSYNC_SCHEDULE_SPEEDUP=0`` this is the only
        way a schedule runs."""
        done = self.cli("invoke", function, *(["-e", str(ROOT / "events" / event)] if event else []))
        assert done.returncode == 0, done.stderr

    def sqs(self) -> Any:
        import boto3

        info = self.info()
        return boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{info['ports']['aws']}",
            region_name=info["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def busy_queues(self) -> dict[str, int]:
        """Sync queues (those with a dead-letter queue) that still hold a job: waiting, in flight
        (a function is running it) or delayed. Empty: every job sent so far has run to its end."""
        sqs, busy = self.sqs(), {}
        for url in sqs.list_queues().get("QueueUrls", []):
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            if "RedrivePolicy" not in attrs:
                continue
            held = sum(
                int(attrs.get(a, 0))
                for a in (
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                )
            )
            if held:
                busy[url.rsplit("/", 1)[-1]] = held
        return busy

    def idle(self, timeout: float = 120.0) -> None:
        """Until every job on the stack's sync queues has been run (a causal wait, not a quiet time)."""
        until("the sync queues to be empty", lambda: not self.busy_queues() or None, timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise
        return self.proc.returncode


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


def until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2) -> T:
    """Until ``probe`` answers something true. The timeout only bounds a broken run: it is generous,
    since a loaded machine is slow, and no test relies on something NOT happening within it."""
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
