"""calsync.lean_imports: Powertools' catch-all packages, loaded name by name (docs/adr/0022).

Each case runs in a fresh interpreter: the stand-ins replace packages only before their first import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_a_name_of_the_package_loads_only_its_own_module() -> None:
    state = _run(
        "import json, sys, calsync\n"
        "from aws_lambda_powertools.event_handler import Response\n"
        "from aws_lambda_powertools.utilities.data_classes import SQSEvent\n"
        "print(json.dumps({'response': Response.__module__, 'sqs': SQSEvent.__module__,\n"
        " 'appsync': 'aws_lambda_powertools.event_handler.appsync' in sys.modules,\n"
        " 'kafka': 'aws_lambda_powertools.utilities.data_classes.kafka_event' in sys.modules}))\n"
    )
    assert state == {
        "response": "aws_lambda_powertools.event_handler.api_gateway",
        "sqs": "aws_lambda_powertools.utilities.data_classes.sqs_event",
        "appsync": False,
        "kafka": False,
    }


def test_the_stand_in_offers_the_same_names_and_objects_as_the_package() -> None:
    # the real package's names (imported as usual), then the stand-in's, in another interpreter
    names = (
        "import json, importlib\n"
        "out = {}\n"
        "for p in ('aws_lambda_powertools.event_handler', 'aws_lambda_powertools.utilities.data_classes'):\n"
        "    m = importlib.import_module(p)\n"
        "    out[p] = {n: f'{getattr(m, n).__module__}.{getattr(m, n).__name__}' for n in m.__all__}\n"
        "print(json.dumps(out))\n"
    )
    real = _run(names)
    lazy = _run("import calsync\n" + names)
    assert lazy == real
    assert (
        "event_source" in real["aws_lambda_powertools.utilities.data_classes"]
    )  # the decorator, not its module


def test_a_name_the_package_does_not_have_is_an_attribute_error() -> None:
    state = _run(
        "import json, calsync, aws_lambda_powertools.event_handler as eh\n"
        "try:\n"
        "    eh.NoSuchResolver\n"
        "except AttributeError as exc:\n"
        "    print(json.dumps({'error': str(exc)}))\n"
    )
    assert state == {
        "error": "module 'aws_lambda_powertools.event_handler' has no attribute 'NoSuchResolver'"
    }


def test_a_package_imported_already_is_left_as_it_is() -> None:
    state = _run(
        "import json, sys, aws_lambda_powertools.event_handler as before\n"
        "import calsync.lean_imports\n"
        "calsync.lean_imports.install()\n"
        "print(json.dumps({'same': sys.modules['aws_lambda_powertools.event_handler'] is before,\n"
        " 'appsync': 'aws_lambda_powertools.event_handler.appsync' in sys.modules}))\n"
    )
    assert state == {"same": True, "appsync": True}


def test_the_batch_utility_imported_before_pydantic_loads_no_parser_models() -> None:
    state = _run(
        "import json, sys, calsync, pydantic\n"
        "from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor\n"
        "print(json.dumps({'parser': [m for m in sys.modules if '.utilities.parser' in m],\n"
        " 'processor': SqsFifoPartialProcessor.__module__}))\n"
    )
    assert state == {
        "parser": [],
        "processor": "aws_lambda_powertools.utilities.batch.sqs_fifo_partial_processor",
    }
