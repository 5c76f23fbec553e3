"""The API reference in Markdown, made from the OpenAPI schema (docs/api-reference.md): one
section per operation with its parameters, request body and answers. `manage.py
api_reference` writes it; a test keeps the committed file equal to what the schema gives."""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import SchemaGenerator

HEADER = """# RemoteBank API v1 reference

Generated from the OpenAPI 3.1 schema (`GET /api/v1/schema`) by `manage.py api_reference`;
do not edit by hand. How to sign requests, the scopes, limits, `Idempotency-Key` and the error
codes: [docs/api.md](api.md). Webhooks: [docs/webhooks.md](webhooks.md).

Every operation takes the signature headers `X-RB-Key-Id`, `X-RB-Timestamp`, `X-RB-Nonce`,
`X-RB-Signature-Method` and `X-RB-Signature`, and answers refusals as
`{"error": {"code", "message", "detail"}}` (400, 401, 403, 429; POSTs also 422).
"""

SIGNATURE_HEADERS = {
    "X-RB-Key-Id",
    "X-RB-Timestamp",
    "X-RB-Nonce",
    "X-RB-Signature-Method",
    "X-RB-Signature",
}
STANDARD_ERRORS = {"400", "401", "403", "422", "429"}


def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def _type_of(spec: dict[str, Any], node: dict[str, Any]) -> str:
    if "$ref" in node:
        return f"`{node['$ref'].rsplit('/', 1)[-1]}`"
    if "allOf" in node:
        return " & ".join(_type_of(spec, n) for n in node["allOf"])
    if "oneOf" in node:
        return " or ".join(_type_of(spec, n) for n in node["oneOf"])
    kind = node.get("type", "object")
    if isinstance(kind, list):
        kind = " or ".join(str(k) for k in kind)
    if kind == "array":
        return f"array of {_type_of(spec, node.get('items', {}))}"
    if "enum" in node:
        return ", ".join(f"`{v}`" for v in node["enum"] if v not in ("", None)) or str(kind)
    fmt = node.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _operation(spec: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", "", op.get("summary", ""), ""]
    if op.get("description"):
        lines += [op["description"], ""]
    params = [p for p in op.get("parameters", []) if p["name"] not in SIGNATURE_HEADERS]
    if params:
        lines += ["| parameter | in | type | required | |", "| --- | --- | --- | --- | --- |"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type_of(spec, p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {p.get('description', '')} |"
            )
        lines.append("")
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        lines += [f"Body: {_type_of(spec, body['schema'])}", ""]
    answers = []
    for status, response in op["responses"].items():
        if status in STANDARD_ERRORS:
            continue
        content = response.get("content", {})
        shape = ", ".join(
            f"{ctype} {_type_of(spec, c.get('schema', {}))}" for ctype, c in content.items()
        )
        answers.append(f"`{status}` {shape or '(no body)'} {response.get('description', '')}")
    lines += ["Answers: " + "; ".join(a.strip() for a in answers), ""]
    return lines


def _component(spec: dict[str, Any], name: str, node: dict[str, Any]) -> list[str]:
    lines = [f"### `{name}`", ""]
    if "enum" in node:
        return [*lines, ", ".join('`""`' if v == "" else f"`{v}`" for v in node["enum"]), ""]
    properties = node.get("properties", {})
    if not properties:
        return [*lines, _type_of(spec, node), ""]
    required = set(node.get("required", []))
    lines += ["| field | type | required | |", "| --- | --- | --- | --- |"]
    for field, prop in properties.items():
        text = (prop.get("description") or "").replace("\n", " ")
        lines.append(
            f"| `{field}` | {_type_of(spec, prop)} | {'yes' if field in required else 'no'} "
            f"| {text} |"
        )
    return [*lines, ""]


def markdown(spec: dict[str, Any] | None = None) -> str:
    spec = spec or schema()
    lines = [HEADER, ""]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "patch", "delete", "put"):
                lines += _operation(spec, path, method, op)
    lines += ["## Schemas", ""]
    for name, node in sorted(spec["components"]["schemas"].items()):
        lines += _component(spec, name, node)
    return "\n".join(lines).rstrip() + "\n"
