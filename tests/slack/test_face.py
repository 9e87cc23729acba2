"""The package's face: `bot.slack.__all__` names exactly what it exports."""

from __future__ import annotations

from types import ModuleType

import bot.slack


def test_all_names_exactly_the_public_names() -> None:
    exported = {
        name
        for name, value in vars(bot.slack).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert sorted(bot.slack.__all__) == sorted(exported)
