"""The bundled demo app (demo/app/server.py) as a real process for tests, in its own directory.

    with DemoApp(tmp_path) as app:
        app.url                      # "http://127.0.0.1:PORT"
        app.fault("FAIL_RATE", "1")  # every request answers 500 (see the app's docstring)
        app.fault("FAIL_RATE")       # and back

Each app runs from a copy of demo/app in its own directory, so its fault files are its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]


class DemoApp:
    """A demo app process on `port` (a free one by default); see the module docstring."""

    def __init__(self, directory: Path, port: int | None = None, version: str = "v1") -> None:
        from tests.conftest import free_port

        self.dir = directory
        shutil.copytree(ROOT / "demo" / "app", directory, dirs_exist_ok=True)
        (directory / "VERSION").write_text(version + "\n")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [sys.executable, str(directory / "server.py"), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if "listening on" not in line:
            self.close()
            raise RuntimeError(f"demo app did not start: {line}")

    def fault(self, name: str, value: str | None = None) -> None:
        """Set a fault file (`UNHEALTHY`, `FAIL_RATE`, `DELAY`, `TOKEN`), or remove it (no value)."""
        path = self.dir / name
        if value is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(value)

    def close(self) -> None:
        """Stop the process. Idempotent."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> DemoApp:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
