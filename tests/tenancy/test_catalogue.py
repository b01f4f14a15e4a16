"""The zh-Hans catalogue keeps up with the code: every message the code marks is in it,
translated, not fuzzy, with the same placeholders, and the compiled .mo matches the .po.

When this fails after adding strings, run (README, Development):

    .venv/bin/python manage.py makemessages -l zh_Hans --no-obsolete
    # translate the new and fuzzy entries in locale/zh_Hans/LC_MESSAGES/django.po, then
    .venv/bin/python manage.py compilemessages -l zh_Hans --ignore=.venv
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
#: What the copy for makemessages leaves out: environments, caches, data, VCS.
NOT_SOURCE = (".venv", ".git", ".data", "*.egg-info", "__pycache__", ".*_cache")
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")


def _catalogue() -> Catalog:
    with open(CATALOGUE / "django.po", "rb") as po:
        return read_po(po)


def _key(message: Message) -> tuple[str | None, str | tuple[str, ...]]:
    """A message's identity: its context (``pgettext``) and its id (or singular, plural)."""
    return message.context, message.id if isinstance(message.id, str) else tuple(message.id)


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _placeholders(text: str) -> list[str]:
    found = [match.group(0) for match in PLACEHOLDER.finditer(text)]
    return sorted(token if "(" in token else token[-1] for token in found if token != "%%")


def test_every_entry_is_translated_and_none_is_fuzzy() -> None:
    untranslated, fuzzy = [], []
    for message in _catalogue():
        if not message.id:
            continue
        if message.fuzzy:
            fuzzy.append(_key(message))
        if not all(_texts(message.string)):
            untranslated.append(_key(message))
    assert not fuzzy, f"fuzzy entries (check and clear the flag): {fuzzy}"
    assert not untranslated, f"untranslated entries: {untranslated}"


def test_translations_keep_the_placeholders_of_their_message() -> None:
    wrong = []
    for message in _catalogue():
        if not message.id:
            continue
        # Chinese has one plural form: it carries the plural's placeholders.
        expected = _placeholders(_texts(message.id)[-1])
        for text in _texts(message.string):
            if text and _placeholders(text) != expected:
                wrong.append((_key(message), text))
    assert not wrong, f"placeholders differ: {wrong}"


def test_the_compiled_catalogue_matches_the_po_file() -> None:
    with open(CATALOGUE / "django.mo", "rb") as mo:
        compiled = {_key(m): _texts(m.string) for m in read_mo(mo) if m.id}
    stale = [
        _key(m)
        for m in _catalogue()
        if m.id and not m.fuzzy and compiled.get(_key(m)) != _texts(m.string)
    ]
    assert not stale, f"run compilemessages: the .mo lacks or differs on {stale[:10]}"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext tools are not installed")
def test_the_catalogue_has_every_message_the_code_marks(tmp_path: Path) -> None:
    """makemessages on a copy of the source: the catalogue it would write has no message
    the committed one lacks (and none the code no longer uses)."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    done = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with open(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po", "rb") as po:
        extracted = read_po(po)
    committed = {_key(m) for m in _catalogue() if m.id}
    wanted = {_key(m) for m in extracted if m.id}
    missing = sorted(map(str, wanted - committed))
    obsolete = sorted(map(str, committed - wanted))
    assert not missing, f"messages missing from the catalogue (run makemessages): {missing}"
    assert not obsolete, f"messages no longer used (makemessages --no-obsolete): {obsolete}"
