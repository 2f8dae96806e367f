"""Ports, directories and the ``stack.json`` that tells the CLI where the running stack is."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local.template import ROOT

HOST = "127.0.0.1"
REGION = "eu-west-1"
LOCAL_ENV_VARS = {  # what every function (and the CLI) gets besides the template's environment
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "calsync",
    "CALSYNC_LOCAL": "1",
}

# (name, env var, default)
PORTS: tuple[tuple[str, str, int], ...] = (
    ("api", "CALSYNC_API_PORT", 3000),
    ("dynamodb", "CALSYNC_DYNAMODB_PORT", 8000),
    ("aws", "CALSYNC_AWS_PORT", 5000),
    ("caldav", "CALSYNC_CALDAV_PORT", 5232),
    ("live", "CALSYNC_LIVE_PORT", 3001),  # the live channel (AppSync Events emulation, local/live.py)
)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (all held while drawn, so none is drawn twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def stack_ports() -> dict[str, int]:
    """Every ``CALSYNC_*_PORT`` of ``PORTS`` -> a free port: a second stack beside a running one
    (the tests', ``tools.start_time``)."""
    names = [var for _, var, _ in PORTS]
    return dict(zip(names, free_ports(len(names)), strict=True))


class ConfigError(Exception):
    """A setting of the local stack is wrong; the message says which and what to do (exit 2)."""


def state_dir() -> Path:
    """Where the stack keeps its state (``.local/``; ``CALSYNC_STATE_DIR`` to use another)."""
    return Path(os.environ.get("CALSYNC_STATE_DIR") or ROOT / ".local").resolve()


def npm_prefix() -> Path:
    return ROOT / ".local" / "npm"


def ports_from_env(env: dict[str, str] | None = None) -> dict[str, int]:
    env = dict(os.environ) if env is None else env
    ports: dict[str, int] = {}
    for name, var, default in PORTS:
        raw = env.get(var, "").strip()
        try:
            port = int(raw) if raw else default
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a port number") from None
        if not 0 < port < 65536:
            raise ConfigError(f"{var}={port} is not a port number (1-65535)")
        ports[name] = port
    seen: dict[int, str] = {}
    for name, var, _ in PORTS:
        if ports[name] in seen:
            raise ConfigError(
                f"{var} and {seen[ports[name]]} are both {ports[name]}: give each part its own port"
            )
        seen[ports[name]] = var
    return ports


def port_var(name: str) -> str:
    return next(var for n, var, _ in PORTS if n == name)


@dataclass
class StackInfo:
    """What ``python -m local`` writes to ``<state>/stack.json`` while it runs."""

    pid: int
    ports: dict[str, int]
    region: str
    dynamodb_backend: str  # "dynamodb-local" or "moto"
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    children: list[int] = field(default_factory=list)  # pids of the server subprocesses

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['dynamodb']}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.ports['aws']}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports['api']}"

    @property
    def caldav_url(self) -> str:
        return f"http://{HOST}:{self.ports['caldav']}"

    def endpoint_env(self) -> dict[str, str]:
        return {
            **LOCAL_ENV_VARS,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def write(self, directory: Path) -> Path:
        path = directory / "stack.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, directory: Path) -> StackInfo:
        path = directory / "stack.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"no running local stack ({path} is missing): start it with `make run`"
            ) from None
        return cls(**data)
