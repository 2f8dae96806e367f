"""``calsync-local``: tokens for the local API, one-off function invocations, demo data.

    calsync-local token --user alice --location hq [--admin hq] [--expires-in 3600]
    calsync-local invoke <LogicalId> [-e events/file.json]
    calsync-local seed

``seed`` empties the running stack's table and has the demo people connect their Radicale calendars
again through the API (local/demo.py).

``invoke`` runs the function in this process against the running stack's servers (their ports are
in ``.local/stack.json``, written by ``make run``), like ``sam local invoke``. Without ``-e`` it uses
the function's default sample event: the file in ``events/`` whose name is the function's code
directory name (``events/cleanup.json`` for ``functions/cleanup``), else the first one that starts
with it (``events/cleanup-*.json``); a function with a schedule and no sample gets a scheduled event.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from local.config import ConfigError, StackInfo, state_dir
from local.template import ROOT, TEMPLATE, Function, Resolver, functions, jwt_config, layer_paths, load

EVENTS_DIR = ROOT / "events"


def _template() -> dict[str, Any]:
    try:
        return load(TEMPLATE)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {TEMPLATE}: {exc}") from exc


def cmd_token(args: argparse.Namespace) -> int:
    from local.auth import SigningKey

    tpl = _template()
    issuer, audiences = jwt_config(tpl, Resolver(tpl))
    key = SigningKey.load_or_create(state_dir())
    print(
        key.issue(
            issuer=issuer,
            audience=audiences[0],
            user=args.user,
            locations=args.location or [],
            admin_of=args.admin or [],
            expires_in=args.expires_in,
        )
    )
    return 0


def default_event_file(fn: Function, events_dir: Path = EVENTS_DIR) -> Path | None:
    exact = events_dir / f"{fn.dir_name}.json"
    if exact.exists():
        return exact
    candidates = sorted(events_dir.glob(f"{fn.dir_name}*.json")) if events_dir.is_dir() else []
    return candidates[0] if candidates else None


def _event_for(fn: Function, path: str | None, region: str) -> tuple[Any, str]:
    if path:
        return json.loads(Path(path).read_text()), path
    sample = default_event_file(fn)
    if sample is not None:
        return json.loads(sample.read_text()), str(sample.relative_to(ROOT))
    if fn.schedules:
        from local.sources import scheduled_event

        return scheduled_event(
            f"calsync-local-{fn.logical_id}", datetime.now().astimezone(), region
        ), "a scheduled event (no sample in events/)"
    return {}, "{} (no sample in events/)"


def cmd_invoke(args: argparse.Namespace) -> int:
    from local.runtime import FunctionError, Runtime

    tpl = _template()
    fns = functions(tpl)
    if args.function not in fns:
        raise ConfigError(
            f"no function {args.function!r} in template.yaml (there are: {', '.join(sorted(fns))})"
        )
    info = StackInfo.read(state_dir())
    from local.servers import port_open

    if not port_open(info.ports["dynamodb"]):
        raise ConfigError(
            f"the local stack is not running (nothing on port {info.ports['dynamodb']}): `make run`"
        )
    fn = fns[args.function]
    event, source = _event_for(fn, args.event, info.region)
    resolver = Resolver(tpl, info.region, refs=info.refs, attrs=info.attrs, parameters=info.parameters)
    os.environ.pop("AWS_PROFILE", None)
    runtime = Runtime({fn.logical_id: fn}, resolver, info.endpoint_env())
    runtime.install_environment()
    print(f"invoking {fn.logical_id} ({fn.handler}) with {source}", file=sys.stderr, flush=True)
    try:
        # like `sam local invoke`: the function's own output (logs, metrics) on stderr, its result on stdout
        with contextlib.redirect_stdout(sys.stderr):
            result = runtime.invoke(fn.logical_id, event)
    except FunctionError as exc:
        cause = exc.__cause__
        print(json.dumps({"errorType": type(cause).__name__, "errorMessage": str(cause)}))
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_seed(_args: argparse.Namespace) -> int:
    tpl = _template()
    info = StackInfo.read(state_dir())
    for path in layer_paths(functions(tpl)):  # the layer's package calsync, before the demo imports it
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from local.demo import DemoError
    from local.stack import reseed

    try:
        summary, synced, used = reseed(info, tpl, datetime.now().astimezone())
    except (DemoError, OSError) as exc:
        raise ConfigError(f"the demo could not be loaded through the API at {info.api_url}: {exc}") from exc
    print(
        f"demo data reloaded: {summary.people} people, {summary.rooms} rooms, {summary.calendars} calendars "
        f"with {summary.occurrences} events in Radicale; {', '.join(summary.connected)} connected through "
        f"the API, {synced}/{used} calendars synced"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="calsync-local", description="Tools for calsync's local stack (make run)."
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("token", help="print a JWT the local API accepts")
    t.add_argument("--user", required=True, help="the person's id (claim sub)")
    t.add_argument("--location", action="append", help="a location the person belongs to (repeatable)")
    t.add_argument("--admin", action="append", help="a location the person administers (repeatable)")
    t.add_argument(
        "--expires-in", type=int, default=3600, metavar="S", help="seconds until it expires (3600)"
    )
    t.set_defaults(func=cmd_token)

    i = sub.add_parser("invoke", help="run one function once against the running stack")
    i.add_argument("function", metavar="LogicalId", help="the function's logical id in template.yaml")
    i.add_argument("-e", "--event", help="a JSON event file (default: the function's sample in events/)")
    i.set_defaults(func=cmd_invoke)

    s = sub.add_parser(
        "seed", help="empty the running stack's table and connect the demo's Radicale calendars again"
    )
    s.set_defaults(func=cmd_seed)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"calsync-local: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
