"""Backends: where a step's command runs, one session per host (the `runners.Backend` protocol).

`LocalBackend` runs commands on this machine; `PrinterBackend` (dry run) records the exact
command line each host would run. The SSH backend has its own face, `runners.backends.ssh`
(`SSHBackend`, `SSHOptions`, `SSHPlan`, ...); it is not re-exported here, so using the local
or printer backend never loads Fabric and paramiko.
"""

from runners.backends.local import LocalBackend, LocalSession
from runners.backends.printer import PrinterBackend, PrinterSession

__all__ = ["LocalBackend", "LocalSession", "PrinterBackend", "PrinterSession"]
