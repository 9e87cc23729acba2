"""Executing work on hosts: hosts and steps, command lines, backends, strategies, the stage pipeline.

The dependency order is SSHKit's: `runners.command` (how a command line is built) sits below
`runners.backends` (local, printer, ssh: where it runs), which sit below `runners.pipeline`
(stages, batches and steps over a backend). This face is the core execution API; the backends
have their own faces (`runners.backends`, `runners.backends.ssh`), health checks theirs
(`runners.checks`).
"""

from runners.base import (
    Backend,
    CommandOutcome,
    Host,
    HostResult,
    HostSession,
    HostStatus,
    HostUnreachable,
    OutputSink,
    Step,
    StepResult,
    Upload,
)
from runners.command import RemoteCommand, remote_command, sudo_command
from runners.pipeline import Pipeline
from runners.progress import EventKind, ProgressEvent, ProgressSink
from runners.redact import Redactor
from runners.stage import Planned, StageResult
from runners.strategy import Strategy, StrategyKind
from runners.template import TemplateError, render, render_path

__all__ = [
    "Backend",
    "CommandOutcome",
    "EventKind",
    "Host",
    "HostResult",
    "HostSession",
    "HostStatus",
    "HostUnreachable",
    "OutputSink",
    "Pipeline",
    "Planned",
    "ProgressEvent",
    "ProgressSink",
    "Redactor",
    "RemoteCommand",
    "StageResult",
    "Step",
    "StepResult",
    "Strategy",
    "StrategyKind",
    "TemplateError",
    "Upload",
    "remote_command",
    "render",
    "render_path",
    "sudo_command",
]
