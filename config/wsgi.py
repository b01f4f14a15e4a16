import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 - imports the views now, before the freeze

from tenancy.runtime import tune_garbage_collector  # noqa: E402 - needs the apps loaded

tune_garbage_collector()
