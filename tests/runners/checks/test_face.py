"""The package's face: `runners.checks.__all__` names exactly what it exports."""

from __future__ import annotations

from types import ModuleType

import runners.checks


def test_all_names_exactly_the_public_names() -> None:
    exported = {
        name
        for name, value in vars(runners.checks).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert sorted(runners.checks.__all__) == sorted(exported)
