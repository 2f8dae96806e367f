"""Settings of a local stack that differ from template.yaml's defaults, like ``sam deploy
--parameter-overrides`` and an operator setting a secret after deploy:

- ``CALSYNC_PARAMETERS="GoogleAuthUri=http://127.0.0.1:8001/auth GoogleTokenUri=…"``: template
  parameters (``Name=Value`` pairs separated by spaces or commas; a value runs to the next pair, so
  it may hold commas itself). Every name must be a parameter of template.yaml.
- ``CALSYNC_SECRETS='{"GoogleOAuthSecret": {"client_id": "…", "client_secret": "…"}}'``: the value
  of AWS::SecretsManager::Secret resources by logical id (a string, or a JSON object/array that is
  stored as its JSON text) instead of the generated placeholder. Values are never printed.

Both are checked before anything starts: a mistake is a ``ConfigError`` (exit 2) naming the setting.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from local.config import ConfigError
from local.template import resources_of_type

PARAMETERS_VAR = "CALSYNC_PARAMETERS"
SECRETS_VAR = "CALSYNC_SECRETS"

_PAIR = re.compile(r"(?:^|[\s,]+)([A-Za-z0-9]+)=")


def parse_parameters(raw: str) -> dict[str, str]:
    """``"A=1 B=x,y C=http://h/p?q=1"`` -> ``{"A": "1", "B": "x,y", "C": "http://h/p?q=1"}``."""
    raw = raw.strip()
    if not raw:
        return {}
    starts = list(_PAIR.finditer(raw))
    if not starts or starts[0].start() != 0:
        raise ConfigError(f"{PARAMETERS_VAR} must be Name=Value pairs (e.g. Stage=dev LogLevel=DEBUG)")
    out: dict[str, str] = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(raw)
        name = m.group(1)
        if name in out:
            raise ConfigError(f"{PARAMETERS_VAR}: {name} is given twice")
        out[name] = raw[m.end() : end].strip()
    return out


def parameters_from_env(tpl: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The template parameters ``CALSYNC_PARAMETERS`` overrides (checked against template.yaml)."""
    env = os.environ if env is None else env
    given = parse_parameters(env.get(PARAMETERS_VAR, ""))
    known = tpl.get("Parameters") or {}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(
            f"{PARAMETERS_VAR}: template.yaml has no parameter {', '.join(unknown)} "
            f"(there are: {', '.join(sorted(known))})"
        )
    for name, value in given.items():
        spec = known[name] if isinstance(known[name], dict) else {}
        allowed = spec.get("AllowedValues")
        if allowed and value not in [str(a) for a in allowed]:
            raise ConfigError(f"{PARAMETERS_VAR}: {name} must be one of {', '.join(map(str, allowed))}")
        pattern = spec.get("AllowedPattern")
        if isinstance(pattern, str) and not re.fullmatch(pattern, value):
            raise ConfigError(f"{PARAMETERS_VAR}: {name}={value!r} does not match {pattern!r}")
    return given


def secrets_from_env(tpl: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secret values by logical id from ``CALSYNC_SECRETS`` (checked against template.yaml)."""
    env = os.environ if env is None else env
    raw = env.get(SECRETS_VAR, "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError(f'{SECRETS_VAR} is not JSON (want {{"LogicalId": value, …}})') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{SECRETS_VAR} must be a JSON object {{"LogicalId": value, …}}')
    known = resources_of_type(tpl, "AWS::SecretsManager::Secret")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{SECRETS_VAR}: template.yaml has no AWS::SecretsManager::Secret {', '.join(unknown)} "
            f"(there are: {', '.join(sorted(known)) or 'none'})"
        )
    out: dict[str, str] = {}
    for lid, value in data.items():
        if isinstance(value, str):
            out[lid] = value
        elif isinstance(value, dict | list):
            out[lid] = json.dumps(value)
        else:
            raise ConfigError(f"{SECRETS_VAR}: the value of {lid} must be a string or a JSON object")
        if not out[lid]:
            raise ConfigError(f"{SECRETS_VAR}: the value of {lid} is empty")
    return out
