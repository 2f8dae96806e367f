"""Read resource definitions from template.yaml, so tests and the local stack build AWS resources
from the template's own definitions rather than from a second copy of them.

One copy only: the reader lives in ``local.template`` (the local stack uses it too); this module
re-exports it for the tests.
"""

from __future__ import annotations

from local.template import (
    ROOT,
    TEMPLATE,
    Resolver,
    functions,
    load,
    resource,
    resources_of_type,
    table_create_kwargs,
    table_ttl_attribute,
    template,
)

__all__ = [
    "ROOT",
    "TEMPLATE",
    "Resolver",
    "functions",
    "load",
    "resource",
    "resources_of_type",
    "table_create_kwargs",
    "table_ttl_attribute",
    "template",
]
