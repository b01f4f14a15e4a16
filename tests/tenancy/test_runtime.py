"""A serving process tunes its garbage collector (tenancy.runtime)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from tenancy.runtime import OLDER_THRESHOLDS, tune_garbage_collector

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_the_first_threshold_is_raised_and_the_start_up_frozen() -> None:
    gc.unfreeze()
    with override_settings(GC_GEN0_THRESHOLD=12_345):
        assert tune_garbage_collector() == (12_345, *OLDER_THRESHOLDS)
    assert gc.get_threshold() == (12_345, *OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 1000  # the apps, models and views loaded so far


@pytest.mark.usefixtures("restored_collector")
def test_zero_keeps_pythons_collector() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with override_settings(GC_GEN0_THRESHOLD=0):
        assert tune_garbage_collector() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(
    ("module", "threshold", "expected"),
    [
        ("config.wsgi", None, "(50000, 20, 20) True"),
        ("config.asgi", None, "(50000, 20, 20) True"),
        ("config.wsgi", "0", "(700, 10, 10) False"),
        ("config.wsgi", "30000", "(30000, 20, 20) True"),
    ],
)
def test_the_web_entry_points_tune_it(module: str, threshold: str | None, expected: str) -> None:
    env = {**os.environ, "DEBUG": "1"}
    env.pop("GC_GEN0_THRESHOLD", None)
    if threshold is not None:
        env["GC_GEN0_THRESHOLD"] = threshold
    code = (
        f"import gc, {module}, sys; "
        "print(gc.get_threshold(), gc.get_freeze_count() > 0, 'config.urls' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")[-2]
    assert shown == f"{expected} True"  # the URLconf (every view) was loaded before
