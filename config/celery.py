"""The Celery application. Tasks that touch tenant data derive from ``tenancy.jobs.TenantTask``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Modules of tasks that are not an app's own tasks.py.
app.autodiscover_tasks(["integrations.imports"])
