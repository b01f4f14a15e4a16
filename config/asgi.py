import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

from tenancy.runtime import prepare_web_process  # noqa: E402 - needs the apps loaded

prepare_web_process()
