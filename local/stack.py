"""``python -m local`` (what ``make run`` runs): the whole of calsync on this machine.

Order: check every port is free (before anything starts) -> write the demo calendars to Radicale's
folder -> start DynamoDB Local (or moto), moto and Radicale side by side -> while Java starts, create
the template's resources on moto and import the handlers -> create the table -> serve the API, start
the SQS pollers and the scheduler -> the demo people connect their Radicale accounts through the
API, and the CalDAV sync fills the table -> print how to use it. One line per step while it starts
(with how long it took); SIGINT / SIGTERM stop all of it.
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
from typing import TYPE_CHECKING, Any

from local.config import HOST, REGION, ConfigError, StackInfo, ports_from_env, state_dir
from local.template import TEMPLATE, Resolver, functions, jwt_config, layer_paths, load

if TYPE_CHECKING:
    from local import demo


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
        log(f"start-up failed: {type(exc).__name__}: {exc} (what ran meanwhile: {state}/logs/start.log)")
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
    steps = _Steps(started)
    quiet = _QuietUntilReady(logs / "start.log")
    sys.stdout = quiet.stdout  # before the handlers are imported: their loggers keep this stream
    # no access-log line per request to moto's (or the API's) werkzeug server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
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
    demo_data = demo.seed_radicale(state / "radicale", now)
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
    radicale.wait_ready(ports["caldav"])
    steps.done("servers", f"moto and Radicale listening; {demo_data.calendars} demo calendars in Radicale")

    # ---- resources from the template: moto's first, while DynamoDB Local (Java) is still starting
    from local.resources import create_aws_resources, create_tables, names

    info = StackInfo(pid=os.getpid(), ports=ports, region=REGION, dynamodb_backend=backend)
    info.children = [s.proc.pid for s in running if isinstance(s, servers.Subprocess)]
    params = dict(parameters or {})  # CALSYNC_PARAMETERS (local/overrides.py)
    if params:
        log("template parameters from CALSYNC_PARAMETERS: " + " ".join(f"{k}={v}" for k, v in params.items()))
    created = names(tpl, REGION, params)  # the table's name is known before it exists
    create_aws_resources(
        tpl, info.aws_endpoint, REGION, created, parameters=params, secret_values=secret_values
    )
    resolver = Resolver(tpl, REGION, refs=created.refs, attrs=created.attrs, parameters=params)
    info.refs, info.attrs, info.parameters = created.refs, created.attrs, resolver.parameters
    steps.done("resources", f"{len(created.summary)} created on moto from template.yaml")

    # ---- the functions' runtime: every handler imported now, so that a broken one shows at once
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
    imported = 0
    for lid, fn in fns.items():
        if fn.routes or fn.sqs or fn.schedules:
            try:
                runtime.handler(lid)
                imported += 1
            except Exception as exc:
                log(
                    f"WARNING: {lid}: cannot import its handler yet ({type(exc).__name__}: {exc}); "
                    "its routes answer 500 until it can be imported"
                )
    steps.done("functions", f"{imported} handlers imported")

    # ---- the table, once DynamoDB Local listens
    if ddb_proc is not None:
        ddb_proc.wait_ready(ports["dynamodb"])
    tables = len(created.summary)
    create_tables(tpl, info.dynamodb_endpoint, REGION, created, parameters=params)
    info.write(state)
    steps.done(
        "dynamodb",
        ("Amazon DynamoDB Local" if ddb_proc is not None else "moto (no Java)")
        + f" listening; {len(created.summary) - tables} table(s) created",
    )

    # ---- the API
    from local.api import LocalApi

    routes = [(fn.logical_id, r) for fn in fns.values() for r in fn.routes]
    app = LocalApi(routes, runtime.invoke, key, issuer, audiences, log=quiet)
    api = _ApiServer(app, ports["api"])
    api.start()
    running.append(api)

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
                log=quiet,
            )
            poller.start()
            threads.append(poller)
    scheduler = Scheduler(
        [(lid, s) for lid, fn in fns.items() for s in fn.schedules],
        speedup=speedup,
        region=REGION,
        invoke=runtime.invoke,
        stop=stop,
        log=quiet,
        clock=time.monotonic,
        wall=lambda: datetime.now().astimezone(),
    )
    scheduler.start()
    threads.append(scheduler)

    _wait_api(ports["api"])
    steps.done("api", f"{info.api_url}: {len(routes)} routes; SQS pollers and schedules running")
    token = key.issue(
        issuer=issuer, audience=audiences[0], user="alice", locations=["hq"], expires_in=12 * 3600
    )

    # ---- the demo people connect their Radicale accounts through the API; the sync fills the table
    from local.demo import DemoError

    try:
        summary = connect_demo(info, key, (issuer, audiences[0]), now, demo_data)
    except DemoError as exc:  # the stack runs on, so that what refused can be looked at
        log(f"WARNING: the demo could not be set up through the API: {exc} (see {logs / 'start.log'})")
        summary = demo_data
    synced, used = wait_synced(info, tpl, stop)
    steps.done(
        "demo",
        f"{len(summary.connected)} CalDAV accounts connected through the API, "
        f"{synced}/{used} calendars synced from Radicale by CaldavSyncFunction",
    )
    quiet.open()
    _banner(
        info,
        ready_s=time.monotonic() - started,
        timing=steps.timing(),
        token=token,
        summary=summary,
        resources=created.summary,
        routes=routes,
        scheduler=scheduler,
        speedup=speedup,
    )


class _Steps:
    """One line per start-up step, with how long it took."""

    def __init__(self, started: float) -> None:
        self.last = started
        self.taken: list[tuple[str, float]] = []

    def done(self, name: str, what: str) -> None:
        now = time.monotonic()
        self.taken.append((name, now - self.last))
        log(f"{name + ':':<11}{what} ({now - self.last:.1f} s)")
        self.last = now

    def timing(self) -> str:
        return ", ".join(f"{name} {s:.1f} s" for name, s in self.taken)


class _QuietUntilReady:
    """While the stack starts, what runs in it (the demo's API requests and syncs: the API's, pollers'
    and schedules' lines, the functions' own log and metric lines on stdout) goes to
    .local/logs/start.log, so that the terminal shows one line per step; once the banner is out, to
    the terminal. Tracebacks (stderr) always reach the terminal."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: Any = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self._open = False
        self.stdout = _Stdout(self, sys.stdout)

    def __call__(self, line: str) -> None:
        with self._lock:
            if self._open:
                log(line)
            else:
                self._file.write(line + "\n")
                self._file.flush()

    def write_stdout(self, text: str) -> bool:
        """Whether ``text`` was kept in the file (False: the terminal's turn)."""
        with self._lock:
            if not self._open:
                self._file.write(text)
                self._file.flush()
            return not self._open

    def open(self) -> None:
        with self._lock:
            self._open = True
            self._file.close()


class _Stdout:
    """sys.stdout while the stack runs (the functions' loggers keep the stream they found)."""

    def __init__(self, gate: _QuietUntilReady, real: Any) -> None:
        self._gate, self._real = gate, real

    def write(self, text: str) -> int:
        if not self._gate.write_stdout(text):
            self._real.write(text)
        return len(text)

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def connect_demo(
    info: StackInfo, key: Any, jwt: tuple[str, str], now: datetime, summary: demo.DemoSummary
) -> demo.DemoSummary:
    """The demo people connect their Radicale accounts through the stack's API (local/demo.py)."""
    from local import demo

    issuer, audience = jwt

    def token(user: str, admin_of: list[str]) -> str:
        return str(
            key.issue(
                issuer=issuer,
                audience=audience,
                user=user,
                locations=[demo.LOCATION],
                admin_of=admin_of,
                expires_in=600,
            )
        )

    return demo.connect(info.api_url, f"{info.caldav_url}/", token, summary, now)


def wait_synced(
    info: StackInfo, tpl: dict[str, Any], stop: threading.Event, timeout: float = 60
) -> tuple[int, int]:
    """Until every calendar that a person or a room uses has a sync cursor (its first sync ran to its
    end): (synced, used). Those whose sync failed or took longer are named in a WARNING line."""
    from boto3.dynamodb.conditions import Attr

    from calsync.store import keys

    table = _table(info, tpl)
    used = [
        str(item["pk"])
        for item in table.scan(FilterExpression=Attr("sk").eq(keys.CALENDAR), ConsistentRead=True)["Items"]
        if item.get("subscribers")
    ]
    waiting = set(used)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline and not stop.is_set():
        for pk in sorted(waiting):
            item = table.get_item(Key={"pk": pk, "sk": keys.SYNC}, ConsistentRead=True).get("Item")
            if item and item.get("cursor"):
                waiting.discard(pk)
        if waiting:
            time.sleep(0.1)
    if waiting:
        log(
            f"WARNING: {len(waiting)} demo calendar(s) not synced after {timeout:.0f} s "
            f"({', '.join(sorted(waiting))}): GET /v1/me/accounts shows why (lastError); the sync "
            "queue retries them"
        )
    return len(used) - len(waiting), len(used)


def _table(info: StackInfo, tpl: dict[str, Any]) -> Any:
    import boto3

    from local.config import LOCAL_ENV_VARS
    from local.template import table_defs

    tables = table_defs(tpl, Resolver(tpl, info.region))
    if not tables:
        raise ConfigError("template.yaml defines no AWS::DynamoDB::Table")
    name = info.refs.get(tables[0].logical_id, tables[0].name)
    return boto3.resource(
        "dynamodb",
        endpoint_url=info.dynamodb_endpoint,
        region_name=info.region,
        aws_access_key_id=LOCAL_ENV_VARS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_ENV_VARS["AWS_SECRET_ACCESS_KEY"],
    ).Table(str(name))


def reseed(info: StackInfo, tpl: dict[str, Any], now: datetime) -> Any:
    """``calsync-local seed``: empty the running stack's table, write the demo calendars to Radicale
    again and connect them through the API as at start (the stack's own pollers run the syncs)."""
    from local import demo
    from local.auth import SigningKey

    table = _table(info, tpl)
    kwargs: dict[str, Any] = {"ProjectionExpression": "pk, sk"}
    while True:
        page = table.scan(**kwargs)
        with table.batch_writer() as batch:
            for item in page.get("Items", []):
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    summary = demo.seed_radicale(state_dir() / "radicale", now)
    issuer, audiences = jwt_config(tpl, Resolver(tpl, info.region))
    key = SigningKey.load_or_create(state_dir())
    summary = connect_demo(info, key, (issuer, audiences[0]), now, summary)
    synced, used = wait_synced(info, tpl, threading.Event())
    return summary, synced, used


def web_page_url(info: StackInfo, token: str, user: str = "alice") -> str:
    """The reference web page (local/web/, ADR 0024) for ``user`` of the demo, its settings in the
    URL's fragment: the token, the live channel's socket, the colleagues and the room it shows."""
    from urllib.parse import urlencode

    from local import demo

    colleagues = [p for p in demo.PEOPLE if p not in (user, *demo.ROOM_OWNERS)]
    settings = {
        "token": token,
        "live": f"ws://{HOST}:{info.ports['live']}/event/realtime",
        "people": ",".join(colleagues),
        "room": next(iter(demo.ROOMS)),
    }
    return f"{info.api_url}/app/#{urlencode(settings, safe=',/:')}"


def _wait_api(port: int) -> None:
    import urllib.request

    url = f"http://{HOST}:{port}/.well-known/jwks.json"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        time.sleep(0.05)


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
    speedup: float,
) -> None:
    api = info.api_url
    from local.demo import CALDAV_PASSWORDS

    page = web_page_url(info, token)

    lines = [
        "",
        f"calsync is running on {HOST}. Ctrl-C stops everything.",
        f"Ready {ready_s:.1f} s after start ({timing}).",
        "",
        f"  API          {api}   ({len(routes)} routes from template.yaml)",
        f"  Swagger UI   {api}/docs",
        f"  OpenAPI      {api}/v1/openapi.json",
        f"  JWKS         {api}/.well-known/jwks.json",
        f"  Live         ws://{HOST}:{info.ports['live']}/event/realtime   (AppSync Events, ADR 0015)",
        f"  Web page     {api}/app/   (the reference client, ADR 0024: open the link below)",
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
        f"  demo data:   {summary.people} people, {summary.rooms} rooms, {summary.calendars} calendars with "
        f"{summary.occurrences} events around today, in Radicale;",
        f"               {', '.join(summary.connected)} connected their accounts through the API and "
        "CaldavSyncFunction synced them into the table",
        f"               ({summary.ended} ended > 61 min ago: `calsync-local invoke CleanupFunction` deletes "
        "them); carol's account is yours to connect (README)",
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
        "The reference web page as alice (her meetings, the room hq-aurora, her colleagues' presence,"
        " kept current by the live channel; the token is in the link's fragment, which the browser"
        " does not send to any server):",
        "",
        f"  {page}",
        "",
        "Try:",
        "",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{api}/v1/me/meetings?explain=true'",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{api}/v1/rooms/hq-aurora/meetings'",
        "  calsync-local token --user dana --location hq --admin hq",
        "",
    ]
    print("\n".join(lines), flush=True)
