"""Helpers for the check tests: the test database, a closed port, a local command runner."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence

DSN = "postgresql://postgres@127.0.0.1:5432/test"
ENV = {"TEST_DB_DSN": DSN}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def local_runner(
    command: str, on: str, timeout: float, *, name: str = ""
) -> Sequence[tuple[str, int | None, str]]:
    """Runs the command locally; "all" pretends there are two hosts."""
    hosts = ["web-1", "web-2"] if on == "all" else ["web-1"]
    out: list[tuple[str, int | None, str]] = []
    for host in hosts:
        try:
            proc = subprocess.run(
                command, shell=True, capture_output=True, text=True, timeout=timeout, env={"HOST": host}
            )
        except subprocess.TimeoutExpired:
            out.append((host, None, f"timed out after {timeout}s"))
            continue
        out.append((host, proc.returncode, proc.stdout + proc.stderr))
    return out
