"""Upload steps: a file copied to a host over the session the other steps use (SFTP over SSH)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from runners.base import CommandOutcome, Host, HostSession, OutputSink, Step
from runners.template import render_path


def upload_paths(step: Step, values: Mapping[str, object]) -> tuple[str, str] | None:
    """(source, destination) of an upload step (paths substituted as they are, never for a
    shell); None for a step that runs a command."""
    if step.upload is None:
        return None
    return render_path(step.upload.source, values), render_path(step.upload.destination, values)


def put_file(
    session: HostSession, source: str, destination: str, host: Host, sink: OutputSink
) -> CommandOutcome:
    """Upload one file on the host's session, as a command outcome (an error names what failed)."""
    try:
        size = os.path.getsize(source)
    except OSError as exc:
        return CommandOutcome(None, "", error=f"upload of {source} failed: {exc.strerror or exc}")
    try:
        session.put(source, destination)
    except OSError as exc:  # the SSH session's error already says "upload of ... failed"
        why = str(exc).removeprefix(f"{host.name}: ")
        failed = f"upload of {source} to {destination} failed: "
        return CommandOutcome(None, "", error=why if why.startswith("upload of") else failed + why)
    line = f"uploaded {source} ({size:,} bytes) to {destination}\n"
    sink(line)
    return CommandOutcome(0, line)


__all__ = ["put_file", "upload_paths"]
