"""Every label the admin shows is marked for translation (issue #16.5): app names, model
names, field names, list columns, actions and filter titles. A label Django derives from
a Python name ("Display name", "Plan") or a plain string stays English in zh-hans; this
finds them without rendering a page."""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import label_for_field
from django.db import models
from django.utils import translation
from django.utils.functional import Promise

OUR_APPS = {"tenancy", "crm", "targets", "funnel", "incentives", "integrations"}


def _ours(model: type[models.Model]) -> bool:
    return model._meta.app_label in OUR_APPS


def _marked(label: Any) -> bool:
    return isinstance(label, Promise)


def test_every_app_model_and_field_has_a_translated_name() -> None:
    unmarked = []
    for config in apps.get_app_configs():
        if config.label not in OUR_APPS:
            continue
        if not _marked(config.verbose_name):
            unmarked.append(f"app {config.label}")
        for model in config.get_models():
            meta = model._meta
            for name in ("verbose_name", "verbose_name_plural"):
                if not _marked(getattr(meta, name)):
                    unmarked.append(f"{model.__name__}.Meta.{name}")
            for field in meta.concrete_fields:
                if field.auto_created:  # the automatic "ID"
                    continue
                if not _marked(field.verbose_name):
                    unmarked.append(f"{model.__name__}.{field.name}")
    assert not unmarked, f"labels not marked with gettext_lazy: {unmarked}"


def _column_label(model_admin: ModelAdmin[Any], name: Any) -> Any:
    """What the changelist's header shows for a list_display entry, or None when it
    comes from a model field (checked above)."""
    if callable(name):
        return getattr(name, "short_description", name.__name__)
    if hasattr(model_admin, name):
        attribute = getattr(model_admin, name)
        return getattr(attribute, "short_description", name)
    model = model_admin.model
    try:
        model._meta.get_field(name)
        return None
    except Exception:  # a model attribute or property: Django titles its Python name
        attribute = getattr(model, name, None)
        fget = getattr(attribute, "fget", attribute)
        return getattr(fget, "short_description", name)


def _admins() -> list[ModelAdmin[Any]]:
    return [model_admin for model, model_admin in admin.site._registry.items() if _ours(model)]


def test_every_admin_column_action_and_filter_has_a_translated_label() -> None:
    unmarked = []
    for model_admin in _admins():
        where = type(model_admin).__name__
        for name in model_admin.list_display:
            if name in ("__str__", "action_checkbox"):
                continue
            label = _column_label(model_admin, name)
            if label is not None and not _marked(label):
                unmarked.append(f"{where} column {name}")
        for action in model_admin.actions or []:
            function = getattr(model_admin, action) if isinstance(action, str) else action
            if not _marked(getattr(function, "short_description", None)):
                unmarked.append(f"{where} action {action}")
        for entry in model_admin.list_filter:
            if not (isinstance(entry, type) and issubclass(entry, admin.SimpleListFilter)):
                continue  # a field's filter is titled by the field's name (checked above)
            if not _marked(entry.title):
                unmarked.append(f"{where} filter {entry.__name__}")
        for inline in model_admin.inlines:
            for name in ("verbose_name", "verbose_name_plural"):
                label = getattr(inline, name, None)
                if label is not None and not _marked(label):
                    unmarked.append(f"{where} inline {inline.__name__}.{name}")
    assert not unmarked, f"admin labels not marked with gettext_lazy: {unmarked}"


CJK = re.compile(r"[\u4e00-\u9fff]")
#: Labels that read the same in Chinese.
SAME_IN_CHINESE = {"ID", "CRM", "API", "URL"}


def _reads_chinese(label: Any) -> bool:
    text = str(label)
    return bool(CJK.search(text)) or text in SAME_IN_CHINESE


def test_every_admin_label_reads_chinese_in_zh_hans() -> None:
    """The marked labels also have a translation: app and model names, and every column
    header as the changelist computes it (``label_for_field``)."""
    english = []
    with translation.override("zh-hans"):
        for config in apps.get_app_configs():
            if config.label in OUR_APPS and not _reads_chinese(config.verbose_name):
                english.append(f"app {config.label}: {config.verbose_name}")
        for model_admin in _admins():
            model = model_admin.model
            for name in ("verbose_name", "verbose_name_plural"):
                if not _reads_chinese(getattr(model._meta, name)):
                    english.append(f"{model.__name__}.Meta.{name}")
            for entry in model_admin.list_display:
                if entry in ("__str__", "action_checkbox"):
                    continue
                label = label_for_field(entry, model, model_admin)
                if not _reads_chinese(label):
                    english.append(f"{type(model_admin).__name__} column {entry}: {label}")
    assert not english, f"labels without a Chinese translation: {english}"
