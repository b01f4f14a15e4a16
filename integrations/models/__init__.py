"""The integrations' tables, one module per capability (imports, webhooks)."""
