"""Fixtures for the check tests: a real local HTTP app whose health can be switched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.healthapp import HealthApp


@pytest.fixture
def app() -> Iterator[HealthApp]:
    with HealthApp() as served:
        yield served
