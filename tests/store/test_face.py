"""The package's face: `bot.store.__all__` names exactly what it exports."""

from __future__ import annotations

from types import ModuleType

import bot.store


def test_all_names_exactly_the_public_names() -> None:
    exported = {
        name
        for name, value in vars(bot.store).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert sorted(bot.store.__all__) == sorted(exported)
