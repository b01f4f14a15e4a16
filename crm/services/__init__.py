"""Writes (HackSoft-style services): keyword-only arguments, one transaction each, used
alike by the API, the admin, imports and jobs."""

from crm.services.tenancy import *  # noqa: F403
from crm.services.tenancy import UNSET, IssuedApiToken, hash_api_key, tenant_id_from_api_key

__all__ = ["UNSET", "IssuedApiToken", "hash_api_key", "tenant_id_from_api_key"]
