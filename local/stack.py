"""``python -m local`` (what ``make run`` runs): the whole of calsync on this machine.

Order: check every port is free (before anything starts) -> start DynamoDB Local (or moto), moto and
Radicale side by side -> create the template's resources -> load the demo data -> serve the API ->
start the SQS pollers and the scheduler -> print how to use it. SIGINT / SIGTERM stop all of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from local.config import HOST, REGION, ConfigError, StackInfo, ports_from_env, state_dir
from local.template import TEMPLATE, Resolver, functions, jwt_config, layer_paths, load


class _Stopped(Exception):
    """SIGINT or SIGTERM arrived."""


def log(line: str) -> None:
    print(f"[calsync-local] {line}", file=sys.stderr, flush=True)


def fail(message: str, code: int = 2) -> int:
    print(f"calsync-local: error: {message}", file=sys.stderr, flush=True)
    return code


def speedup_from_env() -> float:
    """``CALSYNC_SCHEDULE_SPEEDUP``: how much faster than their rate schedules fire; 0 = never by
    themselves (``calsync-local invoke <Function>`` runs one when you, or a test, say so)."""
    raw = os.environ.get("CALSYNC_SCHEDULE_SPEEDUP", "1").strip() or "1"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"CALSYNC_SCHEDULE_SPEEDUP={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError("CALSYNC_SCHEDULE_SPEEDUP must be >= 0 (0: schedules run only when invoked)")
    return value


def main(started: float | None = None) -> int:
    started = time.monotonic() if started is None else started
    try:
        ports = ports_from_env()
        speedup = speedup_from_env()
        from local.servers import check_ports_free

        check_ports_free(ports)
        tpl = load(TEMPLATE)
        from local.overrides import parameters_from_env, secrets_from_env

        parameters, secret_values = parameters_from_env(tpl), secrets_from_env(tpl)
    except ConfigError as exc:
        return fail(str(exc))
    except (OSError, ValueError) as exc:
        return fail(f"cannot read {TEMPLATE}: {exc}")

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            return  # already stopping
        stop.set()
        raise _Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    running: list[Any] = []
    threads: list[threading.Thread] = []
    state = state_dir()
    try:
        _run(
            tpl,
            ports,
            speedup=speedup,
            state=state,
            stop=stop,
            running=running,
            threads=threads,
            started=started,
            parameters=parameters,
            secret_values=secret_values,
        )
        while not stop.wait(0.5):
            pass
    except _Stopped as exc:
        log(f"{exc}: stopping")
    except ConfigError as exc:
        stop.set()
        _shutdown(running, threads, state)
        return fail(str(exc))
    except Exception as exc:
        stop.set()
        log(f"start-up failed: {type(exc).__name__}: {exc}")
        _shutdown(running, threads, state)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _shutdown(running, threads, state)
    log("stopped; nothing is left running")
    return 0


def _shutdown(running: list[Any], threads: list[threading.Thread], state: Path) -> None:
    from local.servers import stop_all

    for t in threads:
        t.join(timeout=5)
    stop_all(running, log)
    with contextlib.suppress(FileNotFoundError):
        (state / "stack.json").unlink()


class _ApiServer:
    name = "API"

    def __init__(self, app: Any, port: int) -> None:
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(HOST, port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="api", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _run(
    tpl: dict[str, Any],
    ports: dict[str, int],
    *,
    speedup: float,
    state: Path,
    stop: threading.Event,
    running: list[Any],
    threads: list[threading.Thread],
    started: float,
    parameters: dict[str, str] | None = None,
    secret_values: dict[str, str] | None = None,
) -> None:
    from local import servers
    from local.auth import SigningKey

    state.mkdir(parents=True, exist_ok=True)
    logs = state / "logs"
    fns = functions(tpl)
    for path in layer_paths(fns):  # the layers' code (package calsync) for the demo data and handlers
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))

    # ---- servers, side by side
    ddb = servers.find_dynamodb_local()
    ddb_proc = None
    if ddb is not None:
        ddb_proc = servers.start_dynamodb_local(ddb[0], ddb[1], ports["dynamodb"], logs)
        running.append(ddb_proc)
        backend = "dynamodb-local"
    else:
        why = (
            "CALSYNC_FORCE_NO_JAVA=1"
            if os.environ.get("CALSYNC_FORCE_NO_JAVA") == "1"
            else (
                "Java is not installed"
                if not __import__("shutil").which("java")
                else "Amazon DynamoDB Local is not installed (make ddb-local)"
            )
        )
        print(
            f"WARNING: {why}: using moto's server for DynamoDB on port {ports['dynamodb']} "
            "instead of Amazon DynamoDB Local.",
            file=sys.stderr,
            flush=True,
        )
        backend = "moto"

    from local import demo

    radicale_config = servers.write_radicale_config(state, ports["caldav"])
    now = datetime.now().astimezone()
    caldav_paths = demo.seed_radicale(state / "radicale", now)
    radicale = servers.start_radicale(radicale_config, logs)
    running.append(radicale)

    moto = servers.MotoServer("moto", ports["aws"])
    moto.start()
    running.append(moto)
    if ddb_proc is None:
        moto_ddb = servers.MotoServer("moto (DynamoDB)", ports["dynamodb"])
        moto_ddb.start()
        running.append(moto_ddb)

    key = SigningKey.load_or_create(state)
    if ddb_proc is not None:
        ddb_proc.wait_ready(ports["dynamodb"])
    radicale.wait_ready(ports["caldav"])
    phases = [("servers", time.monotonic())]

    # ---- resources from the template
    from local.resources import create_aws_resources, create_tables, names

    info = StackInfo(pid=os.getpid(), ports=ports, region=REGION, dynamodb_backend=backend)
    info.children = [s.proc.pid for s in running if isinstance(s, servers.Subprocess)]
    params = dict(parameters or {})  # CALSYNC_PARAMETERS (local/overrides.py)
    if params:
        log("template parameters from CALSYNC_PARAMETERS: " + " ".join(f"{k}={v}" for k, v in params.items()))
    created = names(tpl, REGION, params)
    create_tables(tpl, info.dynamodb_endpoint, REGION, created, parameters=params)
    create_aws_resources(
        tpl, info.aws_endpoint, REGION, created, parameters=params, secret_values=secret_values
    )
    resolver = Resolver(tpl, REGION, refs=created.refs, attrs=created.attrs, parameters=params)
    info.refs, info.attrs, info.parameters = created.refs, created.attrs, resolver.parameters
    info.write(state)
    phases.append(("resources", time.monotonic()))

    # ---- the functions' runtime, and the demo data
    from local.runtime import Runtime

    os.environ.pop("AWS_PROFILE", None)
    # ---- the live channel (docs/adr/0015): AppSync Events' protocol on 127.0.0.1; the functions
    # publish to it (LIVE_EVENTS_URL, over the template's value) with a key of this run, clients
    # connect with their JWT
    import secrets

    from local.auth import verify as verify_jwt
    from local.live import LiveServer

    issuer, audiences = jwt_config(tpl, resolver)
    live = LiveServer(
        HOST,
        ports["live"],
        lambda t: verify_jwt(t, key, issuer=issuer, audience=audiences),
        secrets.token_hex(16),
    )
    live.start()
    running.append(live)
    live_env = {"LIVE_EVENTS_URL": live.publish_url, "LIVE_EVENTS_API_KEY": live.api_key}

    runtime = Runtime(fns, resolver, {**info.endpoint_env(), **live_env})
    runtime.install_environment()
    if runtime.conflicts:
        log(f"functions set {sorted(runtime.conflicts)} differently: invocations run one at a time")
    summary = seed_table(info, tpl, now)
    phases.append(("demo data", time.monotonic()))

    # ---- the API
    from local.api import LocalApi

    routes = [(fn.logical_id, r) for fn in fns.values() for r in fn.routes]
    app = LocalApi(routes, runtime.invoke, key, issuer, audiences, log=log)
    api = _ApiServer(app, ports["api"])
    api.start()
    running.append(api)
    for lid, fn in fns.items():  # import now, so that a broken handler shows at once
        if fn.routes or fn.sqs or fn.schedules:
            try:
                runtime.handler(lid)
            except Exception as exc:
                log(
                    f"WARNING: {lid}: cannot import its handler yet ({type(exc).__name__}: {exc}); "
                    "its routes answer 500 until it can be imported"
                )

    # ---- event sources
    from local.resources import client
    from local.sources import Scheduler, SqsPoller

    sqs = client("sqs", info.aws_endpoint, REGION) if any(fn.sqs for fn in fns.values()) else None
    for lid, fn in fns.items():
        for src in fn.sqs:
            if not src.enabled:
                continue
            poller = SqsPoller(
                lid,
                src,
                sqs=sqs,
                queue_url=created.queue_urls[src.queue],
                queue_arn=created.attrs[f"{src.queue}.Arn"],
                region=REGION,
                invoke=runtime.invoke,
                stop=stop,
                log=log,
            )
            poller.start()
            threads.append(poller)
    scheduler = Scheduler(
        [(lid, s) for lid, fn in fns.items() for s in fn.schedules],
        speedup=speedup,
        region=REGION,
        invoke=runtime.invoke,
        stop=stop,
        log=log,
        clock=time.monotonic,
        wall=lambda: datetime.now().astimezone(),
    )
    scheduler.start()
    threads.append(scheduler)

    ready_s = _wait_api(ports["api"], started)
    phases.append(("API", time.monotonic()))
    last = started
    timing = []
    for name, at in phases:
        timing.append(f"{name} {at - last:.1f} s")
        last = at
    token = key.issue(
        issuer=issuer, audience=audiences[0], user="alice", locations=["hq"], expires_in=12 * 3600
    )
    _banner(
        info,
        ready_s=ready_s,
        timing=", ".join(timing),
        token=token,
        summary=summary,
        resources=created.summary,
        routes=routes,
        scheduler=scheduler,
        caldav_paths=caldav_paths,
        speedup=speedup,
    )


def seed_table(info: StackInfo, tpl: dict[str, Any], now: datetime, wipe: bool = False) -> Any:
    """Load the demo data into the stack's table (``calsync-local seed`` calls this with wipe=True)."""
    import boto3

    from calsync.store.repository import Repository
    from local import demo
    from local.config import LOCAL_ENV_VARS
    from local.template import table_defs

    tables = table_defs(tpl, Resolver(tpl, info.region))
    if not tables:
        raise ConfigError("template.yaml defines no AWS::DynamoDB::Table")
    name = info.refs.get(tables[0].logical_id, tables[0].name)
    table = boto3.resource(
        "dynamodb",
        endpoint_url=info.dynamodb_endpoint,
        region_name=info.region,
        aws_access_key_id=LOCAL_ENV_VARS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_ENV_VARS["AWS_SECRET_ACCESS_KEY"],
    ).Table(str(name))
    repo = Repository(table)
    if wipe:
        demo.wipe(repo)
    return demo.seed(repo, now)


def _wait_api(port: int, started: float) -> float:
    import urllib.request

    url = f"http://{HOST}:{port}/.well-known/jwks.json"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            break
        time.sleep(0.05)
    return time.monotonic() - started


def _banner(
    info: StackInfo,
    *,
    ready_s: float,
    timing: str,
    token: str,
    summary: Any,
    resources: list[str],
    routes: list[Any],
    scheduler: Any,
    caldav_paths: list[str],
    speedup: float,
) -> None:
    api = info.api_url
    from local.demo import CALDAV_PASSWORDS

    lines = [
        "",
        f"calsync is running on {HOST}. Ctrl-C stops everything.",
        f"The API answered {ready_s:.1f} s after start ({timing}).",
        "",
        f"  API          {api}   ({len(routes)} routes from template.yaml)",
        f"  Swagger UI   {api}/docs",
        f"  OpenAPI      {api}/v1/openapi.json",
        f"  JWKS         {api}/.well-known/jwks.json",
        f"  Live         ws://{HOST}:{info.ports['live']}/event/realtime   (AppSync Events, ADR 0015)",
        f"  DynamoDB     {info.dynamodb_endpoint}   ("
        + (
            "Amazon DynamoDB Local, in memory"
            if info.dynamodb_backend == "dynamodb-local"
            else "moto: no Java"
        )
        + ")",
        f"  AWS (moto)   {info.aws_endpoint}   (SQS, KMS, Secrets Manager, S3)",
        f"  CalDAV       {info.caldav_url}   (Radicale; users "
        + ", ".join(f"{u}/{p}" for u, p in CALDAV_PASSWORDS.items())
        + ")",
        "",
        "  resources:   " + ("; ".join(resources) or "none"),
        f"  demo data:   {summary.people} people, {summary.rooms} rooms, {summary.calendars} calendars, "
        f"{summary.occurrences} events around today ({summary.ended} ended > 61 min ago: "
        "`calsync-local invoke CleanupFunction` deletes them)",
        "               stored directly in the table; CalDAV sync (Radicale -> table) is a later issue",
        (
            f"  schedules:   {len(scheduler.jobs)}, manual (CALSYNC_SCHEDULE_SPEEDUP=0): "
            "`calsync-local invoke <Function>` runs one"
            if scheduler.manual
            else f"  schedules:   {len(scheduler.jobs)} running"
            + (f" at {speedup:g}x speed" if speedup != 1 else "")
        )
        + (f"; skipped: {', '.join(scheduler.skipped)}" if scheduler.skipped else ""),
        "",
        "A token for alice (location hq, valid 12 h):",
        "",
        f"  TOKEN={token}",
        "",
        "Try:",
        "",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{api}/v1/me/meetings?explain=true'",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{api}/v1/rooms/hq-aurora/meetings'",
        "  calsync-local token --user dana --location hq --admin hq",
        "",
    ]
    print("\n".join(lines), flush=True)
