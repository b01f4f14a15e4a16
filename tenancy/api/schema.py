"""OpenAPI descriptions of our authentication schemes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.MembershipJWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from POST /api/v1/auth/token/.",
        }


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Integration token: `Token crm<tenant>_<secret>`.",
        }
