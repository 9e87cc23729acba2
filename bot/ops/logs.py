"""Logging: one JSON object per line in production, readable text in a terminal.

Every record passes a redaction filter that masks the values of configured secrets, and a
record about a deployment carries its id (`extra={"deployment_id": 12}`, or found in the
message as `#12`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from runners.redact import Redactor

_DEPLOY_ID = re.compile(r"#(\d+)")

LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The log levels `--log-level` and `$GONOGO_LOG_LEVEL` accept (any case)."""
FORMATS: tuple[str, ...] = ("text", "json")
"""The log formats `--log-format` and `$GONOGO_LOG_FORMAT` accept."""


class RedactingFilter(logging.Filter):
    """Masks secret values in the rendered message and adds `deployment_id` when it can."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.redact(message)
        record.args = None
        if not hasattr(record, "deployment_id"):
            m = _DEPLOY_ID.search(record.msg)
            if m:
                record.deployment_id = int(m.group(1))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, deployment_id when known."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        deployment_id = getattr(record, "deployment_id", None)
        if deployment_id is not None:
            data["deployment_id"] = deployment_id
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "WARNING", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once (replacing earlier handlers).

    Raises ValueError for a level not in LEVELS or a format not in FORMATS.
    """
    if level.upper() not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(LEVELS)})")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
