"""The shared content-store suite over the local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from kobako.content.local import LocalStore
from kobako.testing.content_suite import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_local_store(check, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    check(LocalStore, tmp_path)
