"""Write (or check) the one OpenAPI document of calsync's HTTP API: ``python -m local.openapi``.

Every function of template.yaml with HttpApi routes is imported by file path and its Powertools
resolver (``app``) generates its part; ``calsync.api.openapi.merge`` joins them, and
``local.api_docs.describe`` adds what a client developer reads (summaries, descriptions, examples).
The result is committed as functions/api/openapi.json, which ApiFunction serves at /v1/openapi.json;
a test fails when it is not what the code generates (`make openapi` writes it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from local.template import ROOT, functions, layer_paths, load

OUTPUT = ROOT / "functions" / "api" / "openapi.json"


def _load_app(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module.app


def build() -> dict[str, Any]:
    fns = functions(load())
    for layer in layer_paths(fns):
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))
    from calsync.api.openapi import merge, schema_of

    documents = []
    public: list[str] = []
    for lid, fn in sorted(fns.items()):
        routes = [r for r in fn.routes if r.path != "/v1/openapi.json"]
        if not routes:
            continue
        documents.append(schema_of(_load_app(fn.handler_file(), f"_calsync_openapi_{lid}")))
        public += [r.route_key for r in routes if not r.auth]
    from local.api_docs import describe

    return describe(merge(documents, public))


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed document is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
