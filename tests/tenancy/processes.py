"""Run Django in a child process under a chosen environment (settings are read once, at
import, so each variation needs its own process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

# Variables the tests set themselves; the rest of the environment (PATH, DATABASE_URL…)
# is inherited.
CONTROLLED = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "SENTRY_RELEASE",
    "ADMINS",
    "SERVER_EMAIL",
    "EMAIL_BACKEND",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "CRM_ADMIN_PASSWORD",
}

# What a production deployment sets (a broker where nothing listens: only its URL matters).
PRODUCTION = {
    "SECRET_KEY": "k8Jq2-production-secret-" + "x7Pz" * 12,
    "ALLOWED_HOSTS": "crm.example.com",
    "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
}


def environment(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    return {**base, **env}


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=environment(**env), capture_output=True, text=True, timeout=timeout
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args], env)


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after ``django.setup()`` with ``config.settings``."""
    prelude = (
        "import os, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
    )
    return run([sys.executable, "-c", prelude + code], env)


def database_url_for_tests() -> str:
    """The URL of the test database this process uses (it exists while the tests run)."""
    settings = connection.settings_dict
    host = quote(settings["HOST"] or "", safe="")
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    password = f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else ""
    return f"postgres://{quote(settings['USER'])}{password}@{host}{port}/{settings['NAME']}"
