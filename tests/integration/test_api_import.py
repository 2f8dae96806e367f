"""What the functions' imports load (docs/adr/0010-cold-start-tracing-and-imports.md).

A handler module imports what its routes need anyway (boto3 included: Lambda pays it at init, where
SnapStart could keep it, instead of on the first request), but builds nothing: no client, no table,
no settings read. No function imports the X-Ray SDK (Lambda's active tracing needs none), and a
module only one route needs stays deferred: the accounts function imports no provider SDK until a
disconnect needs it. The cost itself is measured by `make bench` (bench/coldstart.py), not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.template import functions, layer_paths, load

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = functions(load())
# environment of a deployed function, enough for the settings to be read
ENV = {
    "TABLE_NAME": "calsync-test",
    "CREDENTIALS_KEY_ID": "alias/calsync-test",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_LAMBDA_FUNCTION_NAME": "calsync-test",  # Powertools' Tracer would be enabled in Lambda
}


def _run(logical_id: str, code: str, extra_env: dict[str, str] | None = None) -> dict[str, object]:
    """``code`` in a fresh interpreter whose path is the function's code directory and its layers
    (as in Lambda), then the other layers' sources (the build copies some of their modules into a
    function's code: MicrosoftWebhookFunction); it prints one JSON object."""
    fn = FUNCTIONS[logical_id]
    own = layer_paths({logical_id: fn})
    layers = own + [p for p in layer_paths(FUNCTIONS) if p not in own]
    path = os.pathsep.join([str(fn.code_uri), *(str(p) for p in layers)])
    env = {**os.environ, **ENV, **(extra_env or {}), "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=fn.code_uri
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_no_function_imports_the_xray_sdk(logical_id: str) -> None:
    module = FUNCTIONS[logical_id].handler.rpartition(".")[0]
    state = _run(
        logical_id,
        f"import json, sys, {module}\n"
        "print(json.dumps({'xray': sorted(m for m in sys.modules if m.startswith('aws_xray_sdk'))}))\n",
    )
    assert state == {"xray": []}


def test_api_import_loads_what_every_route_needs_and_builds_nothing() -> None:
    probe = (
        "import json, sys, app\n"
        "print(json.dumps({'boto3': 'boto3' in sys.modules, 'built': app.wiring.built,"
        " 'moto': 'moto' in sys.modules}))\n"
    )
    assert _run("ApiFunction", probe) == {"boto3": True, "built": False, "moto": False}


def test_accounts_loads_no_provider_sdk_until_a_disconnect_needs_it() -> None:
    # wiring() is what every route of the function builds first (settings, clients, table: no call)
    probe = (
        "import json, sys, app\n"
        "app.wiring()\n"
        "sdk = lambda: sorted(m for m in ('googleapiclient', 'msal') if m in sys.modules)\n"
        "before = sdk()\n"
        "from calsync.domain.models import Provider\n"
        "stoppers = app.wiring().service._deps.stop_push\n"
        "print(json.dumps({'before': before, 'providers': sorted(p.value for p in stoppers)}))\n"
    )
    assert _run("AccountsFunction", probe) == {"before": [], "providers": ["google", "microsoft"]}


HTTP_FUNCTIONS = sorted(lid for lid, fn in FUNCTIONS.items() if fn.routes)
# Powertools modules a function answering API Gateway HTTP events never uses (docs/adr/0022): the other
# resolvers (AppSync, Bedrock, VPC Lattice) and the event classes of other services.
UNUSED_POWERTOOLS = (
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.event_handler.vpc_lattice",
    "aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event",
    "aws_lambda_powertools.utilities.data_classes.kinesis_firehose_event",
    "aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event",
    "aws_lambda_powertools.event_handler.events_appsync.appsync_events",
)


@pytest.mark.parametrize("logical_id", HTTP_FUNCTIONS)
def test_http_functions_load_one_resolver_and_no_other_services_events(logical_id: str) -> None:
    module = FUNCTIONS[logical_id].handler.rpartition(".")[0]
    state = _run(
        logical_id,
        f"import json, sys, {module}\n"
        f"print(json.dumps({{'loaded': [m for m in {UNUSED_POWERTOOLS!r} if m in sys.modules]}}))\n",
    )
    assert state == {"loaded": []}


def test_http_functions_build_no_model_at_import() -> None:
    # every calsync model is built on its first use (defer_build): a route builds what it validates
    probe = (
        "import json, app, pydantic\n"
        "def subclasses(c):\n"
        "    for s in c.__subclasses__():\n"
        "        yield s\n"
        "        yield from subclasses(s)\n"
        "ours = [m for m in subclasses(pydantic.BaseModel) if m.__module__.startswith('calsync')]\n"
        "built = [m.__name__ for m in ours if m.__pydantic_complete__]\n"
        "print(json.dumps({'models': len(ours) > 10, 'built': built}))\n"
    )
    assert _run("ApiFunction", probe) == {"models": True, "built": []}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_no_function_builds_powertools_parser_models(logical_id: str) -> None:
    # the batch utility imports them for its annotations when pydantic is loaded first; calsync
    # validates the records' bodies with its own models and passes the processors no model
    module = FUNCTIONS[logical_id].handler.rpartition(".")[0]
    state = _run(
        logical_id,
        f"import json, sys, {module}\n"
        "print(json.dumps({'parser': sorted(m for m in sys.modules\n"
        "    if m.startswith('aws_lambda_powertools.utilities.parser'))}))\n",
    )
    assert state == {"parser": []}
