"""The Celery application. Tasks that touch tenant data derive from ``tenancy.jobs.TenantTask``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Modules of tasks that are not an app's own tasks.py.
app.autodiscover_tasks(["integrations.imports"])


@worker_process_init.connect
def _tune_garbage_collector(**kwargs: object) -> None:
    """A worker process's collector as a web process's (``tenancy.runtime``)."""
    from tenancy.runtime import tune_garbage_collector

    tune_garbage_collector()
