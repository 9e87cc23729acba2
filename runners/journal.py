"""The step journal on the host: what ran there, recorded by the host itself.

Every remote step runs under `WRAPPER`, plain POSIX sh shipped on the command line (nothing to
install). In the step's own directory, `<root>/<deployment>/<host>/<step key>/`, it records:

    started   `<pid> <epoch> <boot id>` once the step's process is up (its pid is its session:
              setsid; the boot id tells a pid reused after a reboot from the step's own)
    output    stdout and stderr of the step, as it runs
    exit      `<status> exit|signal <epoch>` once it ended (`eof` once its output closed)

The step runs in its own session with its output in the journal, so it keeps running when the
SSH session drops; the wrapper streams `output` back on the channel and exits with the step's
status (a step killed by a signal kills the wrapper with the same signal, as without it). The
directory is made with `mkdir`, once: a second run of the same key never runs the step again,
it reattaches (still running) or replays the recorded output and status (finished). Stdin (the
environment block, the sudo password) reaches the step through a FIFO, never the disk.
`stop_command` ends a step's process groups and sets its record aside (`<key>.given-up.<epoch>`).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from runners.command import RemoteCommand

#: How the wrapper's own error begins when the host cannot keep the journal (read-only or full
#: disk, no setsid): the step's command did not run.
CANNOT = "gonogo: cannot "
#: Where journals live on a host, relative to the SSH login directory unless absolute.
JOURNAL_ROOT = ".gonogo/journal"
#: After the step exited, seconds its output may stay quiet but open (a background process it
#: started holds it) before the wrapper stops streaming (as `ssh.channel.EXIT_DRAIN`).
EXIT_DRAIN = 2.0
#: Seconds between TERM and KILL when a step's process group is stopped.
STOP_KILL_AFTER = 3
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

#: `alive`: the step's process (its session) is still up: its pid runs, in the boot that started it
#: (after a reboot the pid may be another process's). A record without a boot id (an older
#: wrapper) trusts the pid.
_ALIVE = r"""alive() {
  read -r _p _ _b <"$d/started" 2>/dev/null || return 1
  kill -0 "$_p" 2>/dev/null || return 1
  [ -z "$_b" ] || [ "$_b" = "${_boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)}" ]
}"""

#: `tick`: the pause before the next poll, in `t` (the caller's `n` counts polls): quick at first,
#: since most steps are short, slower as a step goes on (0.01 s, 0.02, 0.05 for 2 s, 0.1 for
#: 30 s, then 0.25): a short step ends soon after it did, a long one costs the host little.
_TICK = r"""tick() {
  n=$((n + 1))
  if [ "$n" -le 2 ]; then t=0.0$n; elif [ "$n" -le 40 ]; then t=0.05; elif [ "$n" -le 340 ]; then t=0.1; else t=0.25; fi
}"""

#: Runs the step in its own session ($1 the directory, $2 the command line, run by the login
#: shell as sshd would). `jobs` tells an exit from a death by a signal (`$?` is 128 + N for both;
#: dash and bash word it differently, and dash forgets the status once `jobs` showed it).
RUNNER = r"""d=$1
trap : TERM
echo "$$ $(date +%s) $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" >"$d/started.new" &&
  mv "$d/started.new" "$d/started"
TICK
{ trap : TERM
  "${SHELL:-/bin/sh}" -c "$2" <"$d/in" 2>&1 & c=$!; n=0
  while :; do
    jobs >"$d/jobs"; IFS= read -r j <"$d/jobs" || j=
    case $j in *Running*) tick; sleep $t ;; *) break ;; esac
  done
  how=signal; s=
  case $j in
    *Done\(*) how=exit; s=${j#*Done(}; s=${s%%)*} ;;
    *Done*) how=exit; s=0 ;;
    *Exit\ *) how=exit; s=${j#*Exit }; s=${s%% *} ;;
    *Hangup*) s=129 ;; *Interrupt*) s=130 ;; *Quit*) s=131 ;; *Illegal*) s=132 ;; *rap*) s=133 ;;
    *Abort*) s=134 ;; *Bus*) s=135 ;; *Floating*) s=136 ;; *Killed*) s=137 ;; *"signal 1"*) s=138 ;;
    *Segmentation*) s=139 ;; *"signal 2"*) s=140 ;; *"Broken pipe"*) s=141 ;; *Alarm*) s=142 ;;
    *Terminated*) s=143 ;;
  esac
  if [ -z "$s" ]; then wait "$c"; s=$?; how=exit; fi
  echo "$s $how $(date +%s)" >"$d/exit.new" && mv "$d/exit.new" "$d/exit"
} | (trap '' TERM; exec cat >>"$d/output")
: >"$d/eof"
""".replace("TICK", _TICK)

#: What runs on the channel ($1 the directory, $2 the command line, $3 the runner, $4 how many
#: deployments' journals the host keeps, 0: all; pruned at a deployment's first step): starts the
#: step once, then streams its output until it exited and its output is closed (or quiet for
#: `EXIT_DRAIN` seconds: a background process holds it), and exits as the step did.
WRAPPER = (
    r"""ulimit -c 0 2>/dev/null
d=$1
if ! command -v setsid >/dev/null 2>&1; then
  echo "gonogo: cannot keep the step journal on $(hostname): setsid is missing (util-linux)" >&2; exit 125
fi
if [ -d "$d" ] && [ ! -f "$d/started" ]; then rm -rf "$d"; fi
if [ ! -d "${d%/*}" ] && [ "${4:-0}" -gt 0 ] && [ -d "${d%/*/*/*}" ]; then
  # A deployment's first step here: keep the journals of the newest $4 deployments (this one too).
  ls -1 "${d%/*/*/*}" | grep -vxF -- "$(basename "${d%/*/*}")" | sort -V |
    awk -v keep=$(($4 - 1)) '{ a[NR] = $0 } END { for (i = 1; i <= NR - keep; i++) print a[i] }' |
    while IFS= read -r old; do rm -rf -- "${d%/*/*/*}/$old"; done
fi
if mkdir -p "${d%/*}" 2>/dev/null && mkdir -m 700 "$d" 2>/dev/null; then
  if ! { echo probe >"$d/output" && : >"$d/output" && mkfifo -m 600 "$d/in"; } 2>/dev/null; then
    echo "gonogo: cannot write the step journal $d on $(hostname)" >&2; exit 125
  fi
  setsid sh -c "$3" gonogo-step "$d" "$2" </dev/null >/dev/null 2>&1 &
  cat >"$d/in"
  rm -f "$d/in"
elif [ ! -d "$d" ]; then
  echo "gonogo: cannot write the step journal $d on $(hostname) (read-only or full disk?)" >&2; exit 125
fi
TICK
ALIVE
off=0; quiet=0; lost=0; n=0
while :; do
  if [ -f "$d/exit" ]; then ended=1; else ended=0; fi
  size=$( (wc -c <"$d/output") 2>/dev/null || echo 0); size=$((size + 0))
  if [ "$size" -gt "$off" ]; then
    tail -c +$((off + 1)) "$d/output" | head -c $((size - off)); off=$size; quiet=0
  elif [ "$ended" = 1 ]; then
    [ -f "$d/eof" ] && break
    quiet=$((quiet + 1)); [ "$quiet" -ge DRAIN_TICKS ] && break
  fi
  if [ ! -d "$d" ]; then
    echo "gonogo: the step was given up and stopped on $(hostname)" >&2; exit 125
  fi
  if [ "$ended" = 0 ] && [ -f "$d/started" ] && ! alive && [ ! -f "$d/exit" ]; then
    lost=$((lost + 1))  # a stop (`_STOP`) records the exit itself once the group is gone
    if [ "$lost" -gt 3 ] && { [ ! -f "$d/stopping" ] || [ "$lost" -gt 100 ]; }; then
      echo "gonogo: the step's process ended without recording its exit on $(hostname) (host restarted?)" >&2
      exit 125
    fi
  fi
  tick; [ "$ended" = 1 ] && t=0.1  # the drain counts 0.1 s ticks
  sleep $t
done
read -r s how _ <"$d/exit"
if [ "$how" = signal ]; then kill -$((s - 128)) $$ 2>/dev/null; sleep 1; fi
exit "$s"
""".replace("DRAIN_TICKS", str(int(EXIT_DRAIN * 10)))
    .replace("ALIVE", _ALIVE)
    .replace("TICK", _TICK)
)

# $1 the step's journal directory: prints `exit <status> <epoch>`, `started|lost <pid> <epoch>`,
# `absent` (the deployment's journal on this host is there, without this step) or `gone` (not even that).
_STATE = (
    r"""d=$1
ALIVE
if [ -f "$d/exit" ]; then echo "exit $(cut -d' ' -f1,3 "$d/exit")"
elif [ -f "$d/started" ]; then
  if alive; then echo "started $(cut -d' ' -f1,2 "$d/started")"; else echo "lost $(cut -d' ' -f1,2 "$d/started")"; fi
elif [ -d "${d%/*}" ]; then echo absent
else echo gone; fi
"""
).replace("ALIVE", _ALIVE)

# $1 the directory, $2 seconds between TERM and KILL: stops the step's process group and sets
# its record aside (`<key>.given-up.<epoch>`): a step given up on is not finished, a Resume runs it.
_STOP = (
    r"""d=$1
ALIVE
[ -f "$d/started" ] || { echo absent; exit 0; }
p=$(cut -d' ' -f1 "$d/started")
[ -f "$d/exit" ] && { echo "exit $(cut -d' ' -f1,3 "$d/exit")"; exit 0; }
: >"$d/stopping"
# After a reboot the pid is someone else's (or nobody's): nothing of the step is left to signal.
alive || p=
# Every process group of the step's session: `timeout` (a step timeout) makes a group of its own.
groups() { [ -n "$p" ] && ps -eo pgid=,sid= 2>/dev/null | awk -v s="$p" '$2 == s { print $1 }' | sort -u; }
signal() { [ -n "$p" ] && for g in $(groups) "$p"; do kill -"$1" -"$g" 2>/dev/null; done; }
signal TERM
i=0
while [ ! -f "$d/exit" ] && [ -n "$(groups)" ] && [ "$i" -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
if [ -f "$d/exit" ]; then how=stopped; elif [ -z "$p" ]; then how="not running (host restarted?)"; else how=killed; fi
signal KILL
if [ ! -f "$d/exit" ]; then
  echo "137 signal $(date +%s)" >"$d/exit.new" && mv "$d/exit.new" "$d/exit"
fi
: >"$d/eof"
mv "$d" "$d.given-up.$(date +%s)" 2>/dev/null
echo "$how"
"""
).replace("ALIVE", _ALIVE)


#: How a host result begins when a resumed step was not run because its host's journal cannot
#: say whether it ran already (a human decides: `Run it again`).
UNSURE = "the host's step journal cannot say whether this step ran"


def step_key(stage: str, batch: int, index: int, step: str) -> str:
    """The step's name in the journal: `deploy.b0.s1.migrate` (stage, batch, position, name)."""
    return f"{safe_part(stage)}.b{batch}.s{index}.{safe_part(step) or 'step'}"


def safe_part(text: str) -> str:
    """`text` as one safe part of a journal path: letters, digits, `_.-`, at most 60."""
    return _UNSAFE.sub("-", text).strip("-.")[:60]


def step_dir(root: str, deployment: str, host: str, key: str) -> str:
    """`<root>/<deployment>/<host>/<key>`, the step's journal directory on the host (hosts of
    one fleet may share a home, and so a root)."""
    return posixpath.join(root, safe_part(deployment) or "run", safe_part(host) or "host", key)


def journaled(command: RemoteCommand, directory: str, keep: int = 0) -> RemoteCommand:
    """`command` run under the journal wrapper in `directory` (its stdin goes to the step); the
    host keeps the journals of the newest `keep` deployments (0: all)."""
    parts = (WRAPPER, "gonogo-journal", directory, command.line, RUNNER, str(max(0, int(keep))))
    args = " ".join(shlex.quote(a) for a in parts)
    line = f"exec sh -c {args}"
    return RemoteCommand(line, command.stdin)


def state_command(directory: str) -> str:
    """A command line printing the journal's state of one step (see `parse_state`)."""
    return f"sh -c {shlex.quote(_STATE)} gonogo-journal {shlex.quote(directory)}"


def stop_command(directory: str, kill_after: int = STOP_KILL_AFTER) -> str:
    """A command line that stops the step's process group: TERM, then KILL after `kill_after` s."""
    return f"sh -c {shlex.quote(_STOP)} gonogo-journal {shlex.quote(directory)} {int(kill_after)}"


@dataclass(frozen=True)
class JournalState:
    """What a host's journal says of one step.

    `absent`: never started; `gone`: the deployment's journal on the host is gone (nobody can say
    whether the step ran); `running`: its process is alive; `lost`: it started, its process is
    gone and no exit was recorded (the host restarted); `finished`: it exited with `exit_code`.
    """

    state: Literal["absent", "gone", "running", "lost", "finished"]

    @property
    def unknown(self) -> bool:
        """True when the journal cannot say whether the step ran to its end (gone, or lost)."""
        return self.state in ("gone", "lost")

    pid: int | None = None
    exit_code: int | None = None
    at: int | None = None


def parse_state(text: str) -> JournalState:
    """The `JournalState` printed by `state_command`; ValueError for anything else."""
    words = text.split()
    try:
        if words == ["absent"]:
            return JournalState("absent")
        if words == ["gone"]:
            return JournalState("gone")
        if len(words) == 3 and words[0] == "exit":
            return JournalState("finished", exit_code=int(words[1]), at=int(words[2]))
        if len(words) == 3 and words[0] in ("started", "lost"):
            state: Literal["running", "lost"] = "running" if words[0] == "started" else "lost"
            return JournalState(state, pid=int(words[1]), at=int(words[2]))
    except ValueError:
        pass
    raise ValueError(f"unreadable step journal state {text.strip()!r}")


__all__ = [
    "CANNOT",
    "EXIT_DRAIN",
    "JOURNAL_ROOT",
    "RUNNER",
    "STOP_KILL_AFTER",
    "UNSURE",
    "WRAPPER",
    "JournalState",
    "journaled",
    "parse_state",
    "safe_part",
    "state_command",
    "step_dir",
    "step_key",
    "stop_command",
]
