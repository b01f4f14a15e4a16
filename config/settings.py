"""Settings for the whole project, in one module.

Every deployment value comes from the environment. With ``DEBUG`` off, a missing
``SECRET_KEY``, ``ALLOWED_HOSTS`` or ``CELERY_BROKER_URL`` (unless eager tasks are asked
for) stops the process at start with a clear message instead of running with an unsafe
default.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(50+ random characters), or DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is not set. Set it to a comma-separated list of host names "
            "(e.g. crm.example.com), or DEBUG=1 for local development."
        )
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "tenancy",
    "crm",
    "targets",
    "funnel",
    "incentives",
    "integrations",
    "devtools",
    "django_htmx",
    "web",
]

MIDDLEWARE = [
    # Outermost, so its latency covers every layer and it logs redirects and errors too;
    # it reads the membership the tenant scope and authentication set, after the response.
    "tenancy.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenancy.middleware.TenantScopeMiddleware",
    "tenancy.middleware.MessageMiddleware",  # Django's, not made for API requests
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenancy.security_headers.ContentSecurityPolicyMiddleware",  # django-csp's
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.nav.nav",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# PostgreSQL only. The login role runs migrations (it owns the tables); every other
# connection switches to DATABASE_APP_ROLE, which owns nothing and is subject to
# row-level security (see tenancy/rls.py).
DATABASE_URL = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm")
# Production may log the app in as the application role itself and give the owner's
# credentials only to `manage.py migrate`.
if len(sys.argv) > 1 and sys.argv[1] == "migrate" and env("MIGRATION_DATABASE_URL"):
    DATABASE_URL = env("MIGRATION_DATABASE_URL")
# Persistent connections (seconds) suit gunicorn's long-lived workers. Under DEBUG
# (`make run`: runserver starts a thread per connection) a persistent connection is
# only closed when its thread's objects are garbage-collected, so a burst of requests
# piles up open connections: 200 requests 10 at a time left 57 open with 60, none with 0
# (bench/runserver_connections.py). So DEBUG closes each connection at request end.
CONN_MAX_AGE = int(env("CONN_MAX_AGE", "0" if DEBUG else "60") or 0)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL or "", conn_max_age=CONN_MAX_AGE)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The garbage collector of a serving process (web, worker; tenancy.runtime): the young
# objects are collected after this many new container objects instead of Python's 700,
# which ran several times inside every request (about 4 % of the request floor here); 0
# keeps Python's own thresholds.
GC_GEN0_THRESHOLD = int(env("GC_GEN0_THRESHOLD", "50000") or 0)
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", "crm_app")
# The statement every request runs with the same text (the credential's membership) is
# prepared once per connection with SQL's PREPARE (tenancy/member_loader.py). Turn off
# behind a pooler that does not keep a session's prepared statements (PgBouncer in
# transaction mode): each request then sends the statement itself.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
# Only the test suite flushes tables between transactional tests; production never does.
DATABASE_APP_ROLE_CAN_TRUNCATE = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"

# --- I18N -------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security (production values; `manage.py check --deploy` is clean with DEBUG off) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe over plain HTTP inside the network. Django matches the whole
    # path, script prefix included (``crm/healthz`` when the site is mounted at /crm).
    SECURE_REDIRECT_EXEMPT = [r"^(?:.+/)?healthz$", r"^(?:.+/)?readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000") or 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- Email -------------------------------------------------------------------------
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25") or 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "crm@localhost")

# --- REST API ----------------------------------------------------------------------
# A JSON body over 1 MB is a 413 in the API's error shape (tenancy.api.errors); the
# server in front should refuse a little above it (README, "Errors").
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env("DATA_UPLOAD_MAX_MEMORY_SIZE", "1048576") or 1048576)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.MembershipJWTAuthentication",
        "tenancy.authentication.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "tenancy.api.pagination.PageNumberPagination",
    # DRF's JSON written by orjson (tenancy.api.renderers); the browsable API as before.
    "DEFAULT_RENDERER_CLASSES": [
        "tenancy.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's negotiation, its answer to the usual Accept headers remembered.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tenancy.api.negotiation.ContentNegotiation",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "tenancy.api.filters.NamedSearchFilter",
        "tenancy.api.filters.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "tenancy.api.base.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "tenancy.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "tenancy.api.throttling.AnonRateThrottle",
        "tenancy.api.throttling.UserRateThrottle",
    ],
    # Proxies in front whose X-Forwarded-For is trusted; 0 uses REMOTE_ADDR (SPEC 9).
    "NUM_PROXIES": int(env("NUM_PROXIES", "0") or 0),
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", "120/minute"),
        "user": env("THROTTLE_USER", "2000/minute"),
        "login_user": env("THROTTLE_LOGIN_USER", "5/minute"),
        "login_ip": env("THROTTLE_LOGIN_IP", "5/minute"),
    },
    "DEFAULT_VERSIONING_CLASS": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(env("JWT_ACCESS_MINUTES", "15") or 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=int(env("JWT_REFRESH_DAYS", "14") or 14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# Content-Security-Policy on every response (django-csp; SPEC section 8): only this host's
# own scripts, styles, images and fonts, no inline script or style, no framing. The admin
# and the invitation pages pass it as they are (their styles and behaviour are files under
# tenancy/static/); the API docs relax it for their own view only (tenancy/api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Target CRM API",
    "DESCRIPTION": "Multi-tenant CRM with targets built in. See docs/SPEC.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ForecastCategoryEnum": "crm.models.ForecastCategory",
        "StageKindEnum": "crm.models.StageKind",
        "LeadStatusEnum": "crm.models.LeadStatus",
        "PaymentStatusEnum": "crm.models.PaymentStatus",
        "JobRunStatusEnum": "tenancy.models.JobRun.Status",
        "ActivityTypeEnum": "crm.models.ActivityType",
        "LevelEnum": "crm.models.Level",
        "RoleEnum": "tenancy.models.Role",
        "RuleKeyEnum": "funnel.models.RuleKey",
        "AlertStatusEnum": "funnel.models.AlertStatus",
        "ReviewStatusEnum": "funnel.models.ReviewStatus",
        "SeverityEnum": "funnel.models.Severity",
        "PlanStatusEnum": "targets.models.PlanStatus",
        "PeriodKindEnum": "targets.models.PeriodKind",
        "AdjustmentTriggerEnum": "targets.models.AdjustmentTrigger",
        "AdjustmentStatusEnum": "targets.models.AdjustmentStatus",
        "ImportKindEnum": "integrations.models.ImportKind",
        "ImportStatusEnum": "integrations.models.ImportStatus",
        "RowOutcomeEnum": "integrations.models.RowOutcome",
    },
}

# --- Cache (throttling state) --------------------------------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("CACHE_URL"),
    }
    if env("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Celery ----------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# Eager tasks run in the calling process. In development they are the default without a
# broker; in production they must be asked for (CELERY_TASK_ALWAYS_EAGER=1), so a
# forgotten CELERY_BROKER_URL stops the start instead of running jobs inside web requests.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL is None)
if not DEBUG and CELERY_BROKER_URL is None and not env_bool("CELERY_TASK_ALWAYS_EAGER"):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL is not set. Set it to the Redis URL of the task broker "
        "(e.g. redis://redis:6379/0), or CELERY_TASK_ALWAYS_EAGER=1 to run tasks inside "
        "the calling process, or DEBUG=1 for local development."
    )
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "crm")
# A message is acknowledged when its task ends, and given back when the worker process
# dies mid-task, so a killed worker loses no step (SPEC section 7).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every job has time limits (a nightly step may set its own at registration): the soft
# one raises inside the task, which records a failed run; the hard one kills it.
JOB_SOFT_TIME_LIMIT = int(env("JOB_SOFT_TIME_LIMIT", "480") or "480")
JOB_TIME_LIMIT = int(env("JOB_TIME_LIMIT", "600") or "600")
CELERY_TASK_SOFT_TIME_LIMIT = JOB_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = JOB_TIME_LIMIT
# Redis gives an unacknowledged message to another worker after the visibility timeout:
# longer than any task may run (or a running task would be run twice), far shorter than
# Redis's default hour (or a killed worker's step would wait that long).
BROKER_VISIBILITY_TIMEOUT = int(env("BROKER_VISIBILITY_TIMEOUT", "900") or "900")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    **json.loads(env("CELERY_BROKER_TRANSPORT_OPTIONS", "{}") or "{}"),
}
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= JOB_TIME_LIMIT:
    raise ImproperlyConfigured(
        "BROKER_VISIBILITY_TIMEOUT must be longer than JOB_TIME_LIMIT, or a running task "
        "would be given to a second worker."
    )
# Transient errors (database or broker connection) are retried with exponential backoff.
JOB_MAX_RETRIES = int(env("JOB_MAX_RETRIES", "5") or "5")
JOB_RETRY_BACKOFF_SECONDS = int(env("JOB_RETRY_BACKOFF_SECONDS", "5") or "5")
# The watchdog marks a running job run lost once it is older than its hard time limit
# plus this margin (its worker is gone); the dispatcher then runs that step again.
JOB_LOST_MARGIN_SECONDS = int(env("JOB_LOST_MARGIN_SECONDS", "120") or "120")
JOB_WATCHDOG_SECONDS = float(env("JOB_WATCHDOG_SECONDS", "300") or "300")

# --- Imports (SPEC 11) ------------------------------------------------------------------
# An upload above IMPORT_MAX_BYTES is a 413; one above IMPORT_SYNC_MAX_BYTES is checked by
# a job, and a confirmation of more than IMPORT_SYNC_MAX_ROWS rows runs as a job too.
IMPORT_MAX_BYTES = int(env("IMPORT_MAX_BYTES", str(30 * 1024 * 1024)) or 0)
IMPORT_SYNC_MAX_BYTES = int(env("IMPORT_SYNC_MAX_BYTES", str(512 * 1024)) or 0)
IMPORT_SYNC_MAX_ROWS = int(env("IMPORT_SYNC_MAX_ROWS", "5000") or 0)
# The dispatcher completes unfinished nights of the last NIGHTLY_CATCH_UP_DAYS local days,
# each step at most NIGHTLY_STEP_MAX_ATTEMPTS times; a night sent but with a step still
# not started after NIGHTLY_RESEND_AFTER_SECONDS (its message was lost) is sent again.
NIGHTLY_CATCH_UP_DAYS = int(env("NIGHTLY_CATCH_UP_DAYS", "3") or "3")
NIGHTLY_STEP_MAX_ATTEMPTS = int(env("NIGHTLY_STEP_MAX_ATTEMPTS", "3") or "3")
NIGHTLY_RESEND_AFTER_SECONDS = int(env("NIGHTLY_RESEND_AFTER_SECONDS", "3600") or "3600")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat copies this into its database schedule (editable in the admin). The dispatcher
# sends each tenant's night once its local time passes 02:00 and completes unfinished
# nights (tenancy.nightly); the watchdog marks runs whose worker is gone as lost.
CELERY_BEAT_SCHEDULE = {
    # SPEC 7: digests at each tenant's digest hour; reminders their lead time ahead.
    "crm-send-digests": {"task": "crm.send_digests", "schedule": 600.0},
    "crm-send-reminders": {"task": "crm.send_reminders", "schedule": 120.0},
    "nightly-dispatch": {
        "task": "tenancy.dispatch_nightly",
        "schedule": float(env("NIGHTLY_DISPATCH_SECONDS", "600") or "600"),
    },
    "job-watchdog": {"task": "tenancy.job_watchdog", "schedule": JOB_WATCHDOG_SECONDS},
    # SPEC 11: due webhook deliveries whose message was lost are sent again.
    "integrations-sweep-webhooks": {
        "task": "integrations.sweep_webhooks",
        "schedule": float(env("WEBHOOKS_SWEEP_SECONDS", "60") or "60"),
    },
}
CELERY_TIMEZONE = "UTC"

# --- Webhooks (SPEC section 11) -------------------------------------------------------
# Private, loopback, link-local, multicast and reserved addresses are refused (at
# creation and at each delivery) unless WEBHOOKS_ALLOW_PRIVATE=1 (which also allows
# plain http without DEBUG) or they fall in WEBHOOKS_ALLOWED_NETWORKS (CIDRs).
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE")
WEBHOOKS_ALLOWED_NETWORKS = env_list("WEBHOOKS_ALLOWED_NETWORKS")
WEBHOOKS_TIMEOUT_SECONDS = float(env("WEBHOOKS_TIMEOUT_SECONDS", "10") or "10")
# Retries: about WEBHOOKS_RETRY_BASE_SECONDS after the first failure, doubling (with
# jitter, at most 6 hours apart), for WEBHOOKS_RETRY_WINDOW_HOURS.
WEBHOOKS_RETRY_BASE_SECONDS = float(env("WEBHOOKS_RETRY_BASE_SECONDS", "10") or "10")
WEBHOOKS_RETRY_WINDOW_HOURS = float(env("WEBHOOKS_RETRY_WINDOW_HOURS", "72") or "72")

# --- Logging and error reporting -----------------------------------------------------
# One line per request from tenancy.request_log; LOG_FORMAT=json makes every line a JSON
# object (python-json-logger) for log shippers. Errors go to Sentry when SENTRY_DSN is
# set, else by mail to ADMINS (without DEBUG).
LOG_LEVEL = (env("LOG_LEVEL", "INFO") or "INFO").upper()
LOG_FORMAT = (env("LOG_FORMAT", "text") or "text").lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")


def parse_admins(value: str | None) -> list[tuple[str, str]]:
    """``ADMINS="Ada Admin <ada@example.com>,ops@example.com"`` as Django's (name, address)."""
    admins = []
    for name, address in getaddresses([value or ""]):
        if "@" not in address:
            raise ImproperlyConfigured(
                f"ADMINS is not a list of e-mail addresses: {value!r}. "
                'Write it as "Name <address@example.com>,other@example.com".'
            )
        admins.append((name or address, address))
    return admins


ADMINS = parse_admins(env("ADMINS"))
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
SENTRY_DSN = env("SENTRY_DSN")
MAIL_ERRORS_TO_ADMINS = not DEBUG and not SENTRY_DSN

_LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": _LOG_FIELDS},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": _LOG_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default "django" logger (its own console handler would print
        # every line twice): everything goes to the root's one console handler.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.db.backends": {"level": "INFO"},
        # Unhandled exceptions in requests and failed tasks: mailed when there is no Sentry.
        "django.request": {
            "handlers": ["mail_admins"] if MAIL_ERRORS_TO_ADMINS else [],
            "level": LOG_LEVEL,
            "propagate": True,
        },
        "celery.app.trace": {
            "handlers": ["mail_admins"] if MAIL_ERRORS_TO_ADMINS else [],
            "level": LOG_LEVEL,
            "propagate": True,
        },
    },
}
# The worker logs through LOGGING too (same format), instead of Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        environment=env("SENTRY_ENVIRONMENT", "production"),
        release=env("SENTRY_RELEASE"),
        traces_sample_rate=float(env("SENTRY_TRACES_SAMPLE_RATE", "0") or 0),
        # No user names, e-mails, addresses or cookies leave the deployment.
        send_default_pii=False,
    )
