"""The package's face: `commands.__all__` names exactly what it exports."""

from __future__ import annotations

from types import ModuleType

import commands


def test_all_names_exactly_the_public_names() -> None:
    exported = {
        name
        for name, value in vars(commands).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert sorted(commands.__all__) == sorted(exported)
