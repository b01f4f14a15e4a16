"""Admin: tenant staff see their tenant, filtered by their role's visibility."""

from crm.admin import records, tenancy

__all__ = ["records", "tenancy"]
