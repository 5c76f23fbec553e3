"""drf-spectacular extensions: the signed-request scheme as the schema's security scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SignedRequestScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.auth.SignedRequestAuthentication"
    name = "SignedRequest"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-RB-Signature",
            "description": "HMAC-SM3 or HMAC-SHA256 over METHOD, PATH[?QUERY], X-RB-Timestamp, "
            "X-RB-Nonce and the body's SHA-256, with the client's secret; see docs/api.md.",
        }
