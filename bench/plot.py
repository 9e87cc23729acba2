"""Draw line plots as PNG from a JSON list of specs; run by bench/plots.py in its own venv.

    <plots venv>/bin/python bench/plot.py specs.json

Each spec: {"out", "title", "xlabel", "ylabel", "series": [{"label", "x", "y"}], "note",
"logy" (optional), "hline" (optional: {"y", "label"})}.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(spec: dict) -> None:  # type: ignore[type-arg]
    """One PNG."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    for series in spec["series"]:
        ax.plot(series["x"], series["y"], marker="o", label=series["label"])
    if spec.get("hline"):
        ax.axhline(spec["hline"]["y"], linestyle="--", color="grey", label=spec["hline"]["label"])
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.set_title(spec["title"])
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.grid(True, alpha=0.3)
    ax.legend()
    if spec.get("note"):
        fig.text(0.01, 0.01, spec["note"], fontsize=7, color="dimgrey")
        fig.subplots_adjust(bottom=0.2)
    fig.savefig(spec["out"])
    plt.close(fig)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        for one in json.load(fh):
            draw(one)
