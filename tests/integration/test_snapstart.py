"""What each function's snapshot holds (calsync.snapstart's before-snapshot hook, docs/adr/0025).

In a fresh interpreter per function, as Lambda does when it publishes a version with SnapStart: the
handler module is imported, then the before-snapshot hooks run. Every AWS endpoint is a closed port:
the hook must build what the first answer would build (the ``Wiring``, each route's validation, the
deferred models) without sending anything.
"""

from __future__ import annotations

import pytest

from tests.integration.test_api_import import FUNCTIONS, _run

PROBE = """
import json, os, sys
import {module}
from calsync import snapstart
snapstart.run_before_snapshot()
import pydantic
from calsync.wiring import Wiring
mod = sys.modules[{module!r}]
def subclasses(c):
    for s in c.__subclasses__():
        yield s
        yield from subclasses(s)
models = [m for m in subclasses(pydantic.BaseModel) if m.__module__.startswith('calsync')
          and not m.__pydantic_generic_metadata__['parameters']]
routes = [r for o in vars(mod).values() for r in [*getattr(o, '_static_routes', ()),
          *getattr(o, '_dynamic_routes', ())]]
print(json.dumps({{
    'wiring': [n for n, o in vars(mod).items() if isinstance(o, Wiring) and not o.built],
    'routes': [r.rule for r in routes if r._dependant is None],
    'models': sorted(m.__name__ for m in models if not m.__pydantic_complete__),
    'primed': bool(models),
}}))
"""


# Their Wiring reads the Microsoft app's client id from its OAuth secret (Secrets Manager) when it
# is built, unless MICROSOFT_CLIENT_ID is set: a call, so the hook leaves it to the first request
# (and logs it) rather than keep a secret in the snapshot. The client secrets themselves are read
# at each use (a rotated one is picked up: test_secret_rotation.py), so GoogleAccountsFunction's
# Wiring, which read its secret once when built, is now in the snapshot too.
BUILT_ON_FIRST_REQUEST = {"MicrosoftAccountsFunction", "MicrosoftSyncFunction"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_before_the_snapshot_every_function_builds_what_its_first_answer_needs(logical_id: str) -> None:
    handler = FUNCTIONS[logical_id].handler
    state = _run(
        logical_id,
        PROBE.format(module=handler.rpartition(".")[0]),
        {"_HANDLER": handler, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},  # nothing answers there
    )
    left = ["wiring"] if logical_id in BUILT_ON_FIRST_REQUEST else []
    assert state == {"wiring": left, "routes": [], "models": [], "primed": True}


def test_template_gives_every_function_snapstart() -> None:
    assert sorted(lid for lid, fn in FUNCTIONS.items() if not fn.snapstart) == []
