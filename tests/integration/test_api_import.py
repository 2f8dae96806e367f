"""The API function's cold start: importing functions/api/app.py does nothing but definitions (no
boto3, no X-Ray SDK, no table), and costs about what `import boto3` alone does (target <= 1.5x)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lambda puts the layer (/opt/python) and the function's directory (/var/task) on sys.path
LAMBDA_PATH = os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT / "functions" / "api")])
ROUNDS = 5
# (Powertools imports the bare ``botocore`` package for its user agent: cheap, and not a client)
HEAVY = ("boto3", "botocore.session", "botocore.client", "aws_xray_sdk", "moto")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": LAMBDA_PATH, "TABLE_NAME": "", "AWS_DEFAULT_REGION": "eu-west-1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)


def test_import_does_nothing_but_definitions() -> None:
    # ARCHITECTURE: nothing builds a boto3 client or reads settings at import time
    probe = (
        f"HEAVY = {HEAVY!r}\n"
        "import json, sys, app\n"
        "heavy = sorted(m for m in HEAVY if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'table': app._table is None,"
        " 'repository': app._repository.cache_info().currsize}))\n"
    )
    state = json.loads(_run(probe).stdout)
    assert state == {"heavy": [], "table": True, "repository": 0}


def _cpu_seconds(code: str) -> float:
    """CPU time (user + sys) of a fresh interpreter running ``code``: steadier than wall time."""
    best = float("inf")
    for _ in range(ROUNDS):
        env = {**os.environ, "PYTHONPATH": LAMBDA_PATH}
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        assert status == 0
        best = min(best, usage.ru_utime + usage.ru_stime)
    return best


def test_cold_import_costs_about_as_much_as_boto3() -> None:
    # measured (best of 5, CPU time, whole process) about 1.3-1.45x `import boto3`; a regression guard
    # with head room for noisy machines: importing boto3 or the X-Ray SDK at import time would
    # double it
    boto3 = _cpu_seconds("import boto3")
    app = _cpu_seconds("import app")
    ratio = app / boto3
    print(f"cold import: app {app * 1000:.0f} ms, boto3 {boto3 * 1000:.0f} ms, ratio {ratio:.2f}")
    assert ratio <= 2.0
