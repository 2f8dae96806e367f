"""Read template.yaml: resources, functions and their event sources, with CloudFormation intrinsics
resolved to local names. The tests and the local stack build AWS resources from the template's own
definitions through this module, never from a second copy of them.

The template is read from disk when asked (``load()``), so a template being edited is picked up at
the next start of the stack. ``template()`` / ``resource()`` / ``table_create_kwargs()`` read the
repository's template.yaml (cached), as the tests need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

ACCOUNT_ID = "123456789012"
STACK_NAME = "calsync-local"
# Parameters without a default in template.yaml get these values in the local stack.
LOCAL_PARAMETERS: dict[str, str] = {
    "Stage": "dev",
    "JwtIssuer": "https://idp.calsync.local/",
    "JwtAudience": "calsync-local",
}


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short-form tags (!Ref, !Sub, …) as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if name == "Fn::GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template, keeping intrinsic functions as ``{"Ref": …}`` data."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ValueError(f"{path}: not a CloudFormation template (no Resources)")
    return data


@lru_cache(maxsize=1)
def template() -> dict[str, Any]:
    return load(TEMPLATE)


def resource(logical_id: str, tpl: Mapping[str, Any] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = (tpl or template())["Resources"]
    return dict(resources[logical_id])


def resources_of_type(tpl: Mapping[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {
        lid: r for lid, r in tpl["Resources"].items() if isinstance(r, dict) and r.get("Type") == type_name
    }


def table_create_kwargs(
    table_name: str, logical_id: str = "Table", tpl: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``create_table`` arguments from the AWS::DynamoDB::Table definition in template.yaml."""
    props = resource(logical_id, tpl)["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    if props.get("StreamSpecification"):
        spec = props["StreamSpecification"]
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec["StreamViewType"]}
    return kwargs


def table_ttl_attribute(logical_id: str = "Table", tpl: Mapping[str, Any] | None = None) -> str | None:
    spec = resource(logical_id, tpl)["Properties"].get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None


# ---------------------------------------------------------------------------- intrinsics


@dataclass
class Resolver:
    """Resolves Ref / GetAtt / Sub / If / Join / Select / Split / Equals to local values.

    ``refs`` maps a logical id to what ``!Ref`` gives (table name, queue URL, key id, …) and
    ``attrs`` maps ``"LogicalId.Attr"`` to what ``!GetAtt`` gives (ARNs, queue names, …).
    """

    tpl: Mapping[str, Any]
    region: str = "eu-west-1"
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        params: dict[str, str] = {}
        for name, spec in (self.tpl.get("Parameters") or {}).items():
            if name in self.parameters:
                params[name] = self.parameters[name]
            elif name in LOCAL_PARAMETERS:
                params[name] = LOCAL_PARAMETERS[name]
            elif "Default" in spec:
                params[name] = _scalar(spec["Default"])
            else:
                params[name] = ""
        self.parameters = {**self.parameters, **params}

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }.get(name, "")

    def ref(self, name: str) -> str | None:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        return f"{STACK_NAME}-{name}"

    def get_att(self, logical_id: str, attr: str) -> str:
        key = f"{logical_id}.{attr}"
        if key in self.attrs:
            return self.attrs[key]
        if attr == "Arn":
            return f"arn:aws:local:{self.region}:{ACCOUNT_ID}:{logical_id}"
        return f"{STACK_NAME}-{logical_id}-{attr}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve((self.tpl.get("Conditions") or {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return _scalar(a) == _scalar(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Condition":
                return self.condition(str(arg))
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(_scalar(x) for x in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(str(sep))
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg), separators=(",", ":"))
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), {k: self.resolve(v) for k, v in dict(arg[1]).items()}
        else:
            text, variables = str(arg), {}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _scalar(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, attr = name.split(".", 1)
                return self.get_att(lid, attr)
            return _scalar(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value)
    return str(value)


def logical_id_of(value: Any) -> str | None:
    """The logical id an intrinsic points at (``!Ref X``, ``!GetAtt X.Arn``, ``${X.Arn}``), if any."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return str(arg)
        if key == "Fn::GetAtt":
            return str(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0])
        if key == "Fn::Sub" and isinstance(arg, str):
            m = re.fullmatch(r"\$\{([A-Za-z0-9]+)(\.[A-Za-z.]+)?\}", arg)
            return m.group(1) if m else None
    return None


# ---------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class HttpRoute:
    event_name: str
    method: str  # upper case, or ANY
    path: str  # /v1/users/{userId}/meetings, /{proxy+} or $default
    auth: bool  # False for Auth: {Authorizer: NONE}

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ScheduleSource:
    event_name: str
    expression: str  # rate(15 minutes) / cron(0 12 * * ? *)
    enabled: bool = True
    input: str | None = None  # a JSON document sent instead of the scheduled-event payload


@dataclass(frozen=True)
class SqsSource:
    event_name: str
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str  # module.function
    code_uri: Path
    timeout: int
    memory: int
    environment: dict[str, Any]  # unresolved (intrinsics kept)
    layers: tuple[Path, ...]
    routes: tuple[HttpRoute, ...]
    schedules: tuple[ScheduleSource, ...]
    sqs: tuple[SqsSource, ...]
    snapstart: bool = False  # SnapStart: ApplyOn: PublishedVersions (docs/adr/0025)

    @property
    def dir_name(self) -> str:
        return self.code_uri.name

    def handler_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


def _api_default_auth(tpl: Mapping[str, Any], api_ref: Any) -> bool:
    """Whether routes of this HttpApi need a JWT unless they say otherwise (DefaultAuthorizer set)."""
    lid = logical_id_of(api_ref) if api_ref is not None else None
    apis = resources_of_type(tpl, "AWS::Serverless::HttpApi")
    if lid is None or lid not in apis:
        globals_api = (tpl.get("Globals") or {}).get("HttpApi") or {}
        return bool((globals_api.get("Auth") or {}).get("DefaultAuthorizer"))
    auth = (apis[lid].get("Properties") or {}).get("Auth") or {}
    return bool(auth.get("DefaultAuthorizer"))


def functions(tpl: Mapping[str, Any], root: Path = ROOT) -> dict[str, Function]:
    """Every AWS::Serverless::Function, with Globals merged and its event sources parsed."""
    glob = (tpl.get("Globals") or {}).get("Function") or {}
    out: dict[str, Function] = {}
    for lid, res in resources_of_type(tpl, "AWS::Serverless::Function").items():
        props = res.get("Properties") or {}
        env = {
            **((glob.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        layer_dirs: list[Path] = []
        for layer in [*(glob.get("Layers") or []), *(props.get("Layers") or [])]:
            layer_lid = logical_id_of(layer)
            layer_res = (tpl["Resources"].get(layer_lid) or {}) if layer_lid else {}
            content = (layer_res.get("Properties") or {}).get("ContentUri")
            if isinstance(content, str):
                layer_dirs.append(root / content)
        routes: list[HttpRoute] = []
        schedules: list[ScheduleSource] = []
        sqs: list[SqsSource] = []
        for name, ev in (props.get("Events") or {}).items():
            etype = ev.get("Type")
            ep = ev.get("Properties") or {}
            if etype == "HttpApi":
                auth_spec = ep.get("Auth") or {}
                if "Authorizer" in auth_spec:
                    needs_auth = auth_spec["Authorizer"] != "NONE"
                else:
                    needs_auth = _api_default_auth(tpl, ep.get("ApiId"))
                method = str(ep.get("Method", "ANY")).upper()
                routes.append(
                    HttpRoute(
                        name,
                        "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
                        str(ep.get("Path", "$default")),
                        needs_auth,
                    )
                )
            elif etype in ("Schedule", "ScheduleV2"):
                state = ep.get("State")
                enabled = ep.get("Enabled", True) if state is None else state != "DISABLED"
                raw_input = ep.get("Input")
                schedules.append(
                    ScheduleSource(
                        name,
                        str(ep["ScheduleExpression"]),
                        bool(enabled),
                        raw_input if isinstance(raw_input, str) else None,
                    )
                )
            elif etype == "SQS":
                queue = logical_id_of(ep.get("Queue"))
                if queue is None:
                    raise ValueError(f"{lid}.{name}: the SQS event must point at a queue of this template")
                sqs.append(
                    SqsSource(
                        name,
                        queue,
                        int(ep.get("BatchSize", 10)),
                        "ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                        bool(ep.get("Enabled", True)),
                    )
                )
        code_uri = props.get("CodeUri", glob.get("CodeUri", "."))
        out[lid] = Function(
            logical_id=lid,
            handler=str(props.get("Handler", glob.get("Handler", "app.lambda_handler"))),
            code_uri=root / str(code_uri),
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            memory=int(props.get("MemorySize", glob.get("MemorySize", 128))),
            environment=env,
            layers=tuple(layer_dirs),
            routes=tuple(routes),
            schedules=tuple(schedules),
            sqs=tuple(sqs),
            snapstart=(props.get("SnapStart") or glob.get("SnapStart") or {}).get("ApplyOn")
            == "PublishedVersions",
        )
    return out


def function_environment(fn: Function, resolver: Resolver) -> dict[str, str]:
    """The function's environment variables with intrinsics resolved to local names."""
    resolved = resolver.resolve(fn.environment)
    return {k: _scalar(v) for k, v in resolved.items() if v is not None}


# ---------------------------------------------------------------------------- other resources


@dataclass(frozen=True)
class QueueDef:
    logical_id: str
    name: str
    fifo: bool
    attributes: dict[str, str]  # CreateQueue attributes except RedrivePolicy
    dlq: str | None  # logical id of the dead-letter queue
    max_receive_count: int | None


def queue_defs(tpl: Mapping[str, Any], resolver: Resolver) -> list[QueueDef]:
    """AWS::SQS::Queue resources, dead-letter queues first (they must exist before their users)."""
    defs: list[QueueDef] = []
    for lid, res in resources_of_type(tpl, "AWS::SQS::Queue").items():
        props = res.get("Properties") or {}
        fifo = bool(resolver.resolve(props.get("FifoQueue", False)))
        name = resolver.resolve(props.get("QueueName")) or f"{STACK_NAME}-{lid}"
        if fifo and not str(name).endswith(".fifo"):
            name = f"{name}.fifo"
        attrs: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ):
            if key in props:
                attrs[key] = _scalar(resolver.resolve(props[key]))
        if fifo:
            attrs["FifoQueue"] = "true"
        redrive = resolver.resolve(
            {k: v for k, v in (props.get("RedrivePolicy") or {}).items() if k != "deadLetterTargetArn"}
        )
        dlq = logical_id_of((props.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        defs.append(
            QueueDef(
                lid,
                str(name),
                fifo,
                attrs,
                dlq,
                int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None,
            )
        )
    dlqs = {d.dlq for d in defs if d.dlq}
    return sorted(defs, key=lambda d: (d.logical_id not in dlqs, d.logical_id))


@dataclass(frozen=True)
class SimpleDef:
    logical_id: str
    name: str | None
    properties: dict[str, Any]


def key_defs(tpl: Mapping[str, Any], resolver: Resolver) -> list[SimpleDef]:
    return [
        SimpleDef(lid, None, resolver.resolve(r.get("Properties") or {}))
        for lid, r in resources_of_type(tpl, "AWS::KMS::Key").items()
    ]


def key_alias_defs(tpl: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(alias name, target key logical id) of AWS::KMS::Alias resources."""
    out = []
    for r in resources_of_type(tpl, "AWS::KMS::Alias").values():
        props = r.get("Properties") or {}
        target = logical_id_of(props.get("TargetKeyId"))
        if target and isinstance(props.get("AliasName"), str):
            out.append((str(props["AliasName"]), target))
    return out


def secret_defs(tpl: Mapping[str, Any], resolver: Resolver) -> list[SimpleDef]:
    out = []
    for lid, r in resources_of_type(tpl, "AWS::SecretsManager::Secret").items():
        props = r.get("Properties") or {}
        name = resolver.resolve(props.get("Name")) or f"{STACK_NAME}/{lid}"
        rest = {
            k: v for k, v in props.items() if k in ("SecretString", "GenerateSecretString", "Description")
        }
        out.append(SimpleDef(lid, str(name), resolver.resolve(rest)))
    return out


def bucket_defs(tpl: Mapping[str, Any], resolver: Resolver) -> list[SimpleDef]:
    out = []
    for lid, r in resources_of_type(tpl, "AWS::S3::Bucket").items():
        props = r.get("Properties") or {}
        name = resolver.resolve(props.get("BucketName")) or f"{STACK_NAME}-{lid}".lower()
        out.append(SimpleDef(lid, str(name), {}))
    return out


def event_bus_defs(tpl: Mapping[str, Any], resolver: Resolver) -> list[SimpleDef]:
    """AWS::Events::EventBus resources (``!Ref`` gives the bus name)."""
    out = []
    for lid, r in resources_of_type(tpl, "AWS::Events::EventBus").items():
        props = r.get("Properties") or {}
        name = resolver.resolve(props.get("Name")) or f"{STACK_NAME}-{lid}"
        out.append(SimpleDef(lid, str(name), {}))
    return out


def table_defs(tpl: Mapping[str, Any], resolver: Resolver) -> list[SimpleDef]:
    out = []
    for lid, r in resources_of_type(tpl, "AWS::DynamoDB::Table").items():
        props = r.get("Properties") or {}
        name = resolver.resolve(props.get("TableName")) or f"{STACK_NAME}-{lid}"
        out.append(SimpleDef(lid, str(name), {}))
    return out


def jwt_config(tpl: Mapping[str, Any], resolver: Resolver) -> tuple[str, list[str]]:
    """(issuer, audiences) of the HttpApi's JWT authorizer (the first one found), resolved."""
    for res in resources_of_type(tpl, "AWS::Serverless::HttpApi").values():
        auth = (res.get("Properties") or {}).get("Auth") or {}
        for authorizer in (auth.get("Authorizers") or {}).values():
            conf = authorizer.get("JwtConfiguration")
            if conf:
                issuer = _scalar(resolver.resolve(conf.get("issuer")))
                audience = resolver.resolve(conf.get("audience") or [])
                audiences = [_scalar(a) for a in (audience if isinstance(audience, list) else [audience])]
                return issuer, audiences
    return LOCAL_PARAMETERS["JwtIssuer"], [LOCAL_PARAMETERS["JwtAudience"]]


def layer_paths(fns: Mapping[str, Function]) -> list[Path]:
    """The directories the functions' layers put on the path (``<ContentUri>/python`` or the dir)."""
    out: list[Path] = []
    for fn in fns.values():
        for layer in fn.layers:
            for path in (layer / "python", layer):
                if path.is_dir() and path not in out:
                    out.append(path)
    return out
