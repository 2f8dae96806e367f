"""schemathesis against the local stack (issue 13 point 7, X5): every operation of the served OpenAPI
document, with valid and invalid inputs, once with a member's and admin's token and once with none.
No answer may be a 5xx, and every answer must be one the document lists, with its documented content
type, headers and schema.

Bounded: ``FUZZ_EXAMPLES`` examples per operation, mode and caller (derandomized, so a failure is
reproducible run after run; raise it locally with CALSYNC_FUZZ_EXAMPLES=100 for a deeper run)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup

from tests.e2e.test_local_microsoft import TlsGraph, _self_signed
from tests.support.local_stack import Stack

pytestmark = pytest.mark.e2e

FUZZ_EXAMPLES = int(os.environ.get("CALSYNC_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {
            # the token is the test's to give (one run with, one without): schemathesis neither adds
            # nor mutates Authorization, so a "negative" case is never a valid request with a token
            "with-security-parameters": False,
            # query parameters the document does not name are ignored, as HTTP APIs commonly do (the
            # document does not promise to refuse them); only the named ones are fuzzed
            "allow-extra-parameters": False,
        }
    }
)


@dataclass
class Run:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    no_negative: int = 0

    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # no schedules in the background: the fuzzer is the only caller. Microsoft's identity platform
    # is the fake (over https, as msal requires): a sign-in start reads its OpenID configuration,
    # and without it the answer would depend on whether this machine reaches Microsoft (a 503)
    tmp = tmp_path_factory.mktemp("fuzz")
    cert, key = _self_signed(tmp)
    graph = TlsGraph()
    graph.start_tls(cert, key)
    s = Stack.start(
        tmp,
        parameters={"MicrosoftAuthority": graph.authority, "GraphEndpoint": graph.graph_endpoint},
        secrets={"MicrosoftOAuthSecret": {"client_id": "local-app-id", "client_secret": "local-app-secret"}},
        CALSYNC_SCHEDULE_SPEEDUP="0",
        REQUESTS_CA_BUNDLE=str(cert),
    )
    try:
        yield s
    finally:
        graph.stop()
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)
            for pid in s.info().get("children", []) if (s.state / "stack.json").exists() else []:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def fuzz(stack: Stack, headers: dict[str, str]) -> Run:
    document = requests.get(f"{stack.api}/v1/openapi.json", timeout=10).json()  # what the stack serves
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    run = Run()
    session = requests.Session()

    def check(label: str, case: Any) -> None:
        response = case.call(base_url=stack.api, session=session, headers=headers, timeout=30)
        run.requests += 1
        run.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as exc:  # collected: all of them are reported at the end
            run.failures.append(
                f"{label} -> {response.status_code}: {type(exc).__name__}: {str(exc)[:600]}\n"
                f"  {case.as_curl_command(headers)}"
            )

    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} [{mode.value}]"
            one = _fuzz_one(check, label, operation.as_strategy(generation_mode=mode))
            try:
                one()
            except Unsatisfiable:  # nothing to make invalid (no parameter, no body): no negative case
                run.no_negative += 1
    print(
        f"\nfuzzed {run.requests} requests in {time.monotonic() - started:.0f} s; "
        f"statuses {dict(sorted(run.statuses.items()))}; {run.no_negative} operations without negative cases"
    )
    return run


def _fuzz_one(check: Callable[[str, Any], None], label: str, strategy: Any) -> Callable[[], None]:
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        check(label, case)

    return one  # type: ignore[no-any-return]


@pytest.mark.parametrize("caller", ["member-and-admin", "no-token"])
def test_every_operation_answers_as_documented(stack: Stack, caller: str) -> None:
    headers = {}
    if caller != "no-token":
        token = stack.token("--user", "alice", "--location", "hq", "--admin", "hq")
        headers = {"Authorization": f"Bearer {token}"}
    run = fuzz(stack, headers)
    assert run.requests >= 31 * 2 * FUZZ_EXAMPLES // 2  # every operation was reached
    assert run.server_errors() == 0, "\n".join(run.failures)
    assert run.failures == [], f"{len(run.failures)} failures:\n" + "\n".join(run.failures[:40])
