"""The `gonogo` command line: the entry point.

`gonogo` with no subcommand runs the bot: Slack when SLACK_BOT_TOKEN is set, otherwise the
terminal chat. It loads the config and hands it to the adapter; the wiring of store, resolver
and engine is `bot.wiring`, the one composition root.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.app.doctor import add_arguments as add_doctor_arguments
from bot.app.doctor import run_doctor
from bot.app.init import add_arguments as add_init_arguments
from bot.app.init import run_init
from bot.config import Config, ConfigError, load_config
from bot.ops.logs import FORMATS, LEVELS

DEFAULT_CONFIG = "config.example.toml"


def _config_path(arg: str | None) -> str:
    return arg or os.environ.get("GONOGO_CONFIG") or DEFAULT_CONFIG


_LOGGING: dict[str, str] = {"level": "WARNING", "format": "text"}
_TOKEN_VARS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


def _load(path: str) -> Config:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"gonogo: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Now that the config names the secrets, every log line is redacted of their values.
    from bot.ops.logs import setup_logging

    names = {*_TOKEN_VARS, *(s for env in config.environments.values() for s in env.secrets)}
    if config.ssh.sudo_password_env:
        names.add(config.ssh.sudo_password_env)
    secrets = [value for name in names if (value := os.environ.get(name))]
    setup_logging(_LOGGING["level"], _LOGGING["format"], secrets)
    return config


DEFAULT_SHUTDOWN_GRACE = 30.0


class UsageError(Exception):
    """A bad setting from the command line or the environment: printed as `gonogo: ...`, exit 2."""


def shutdown_grace(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a running step may take to finish on shutdown: `$GONOGO_SHUTDOWN_GRACE` or 30.

    Read when it is needed, not at import, so a bad value is a clear error, not a traceback.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("GONOGO_SHUTDOWN_GRACE", "").strip()
    if not raw:
        return DEFAULT_SHUTDOWN_GRACE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"GONOGO_SHUTDOWN_GRACE={raw!r} is not a number of seconds (e.g. 30)")
    return value


def stop_on_signals() -> None:
    """SIGTERM (a supervisor stopping us) behaves like Ctrl-C: a clean, recorded shutdown."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def cmd_console(args: argparse.Namespace) -> int:
    """Run the terminal chat."""
    from bot.console.chat import ConsoleChat
    from bot.console.repl import Console

    grace = shutdown_grace()
    config = _load(_config_path(args.config))
    if isinstance(sys.stdin, io.TextIOWrapper):
        # a script with bytes that are not UTF-8 gets them replaced (and refused), not a traceback
        sys.stdin.reconfigure(errors="replace")
    from bot.app.wiring import build_engine

    chat = ConsoleChat(channel=config.bot.channel)
    engine = build_engine(config, chat)
    engine.start()
    web_port = getattr(args, "web_port", None)
    web = _console_web(config, engine, web_port) if web_port is not None else None
    console = Console(engine, chat, user=args.user, channel=config.bot.channel)
    stop_on_signals()
    try:
        return console.run(sys.stdin, interactive=sys.stdin.isatty())
    except KeyboardInterrupt:
        chat.say("(stopping: running deployments stop after their current step and can be resumed)")
        return 0
    finally:
        if web is not None:
            web()
        engine.shutdown(wait=True, grace=grace)
        engine.store.close()
        chat.close()
        if not getattr(args, "keep_running", False):
            from bot.app.teardown import stop_local_apps

            stop_local_apps(config, chat.say)


def _console_web(config: Any, engine: Any, port: int) -> Callable[[], None]:
    """Serve the web view on `port` beside the console (a uvicorn thread); returns its stopper."""
    import threading

    import uvicorn

    from bot.web import WebAuth, create_web_app

    web = config.integrations.web
    if not web.enabled:
        print(
            "gonogo: --web-port needs [web] token_env or slack_client_id (a way to sign in)", file=sys.stderr
        )
        return lambda: None
    app = create_web_app(engine, WebAuth.from_env(web, os.environ, config.slack.api_url))
    host = os.environ.get("HOST", "127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None,
                                           access_log=False, timeout_graceful_shutdown=2))  # fmt: skip
    thread = threading.Thread(target=server.run, name="gonogo-web", daemon=True)
    thread.start()
    print(f"gonogo: web view on http://{host}:{port}/web/", file=sys.stderr, flush=True)

    def stop() -> None:
        app.close()
        server.should_exit = True
        thread.join(timeout=5)

    return stop


def cmd_run(args: argparse.Namespace) -> int:
    """Slack when tokens are set, otherwise the console."""
    if os.environ.get("SLACK_BOT_TOKEN"):
        return cmd_serve(args)
    return cmd_console(args)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the Slack adapter (HTTP or Socket Mode)."""
    try:
        from bot.app.serve import serve  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("gonogo: the Slack adapter is not available in this build", file=sys.stderr)
        return 2
    grace = shutdown_grace()
    return int(
        serve(
            _load(_config_path(args.config)),
            port=getattr(args, "port", None),
            mode=getattr(args, "mode", "auto"),
            grace=grace,
        )
    )


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file and print every problem with its key path."""
    path = args.file or _config_path(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return 1
    envs = ", ".join(config.environments)
    print(f"{path}: OK ({len(config.environments)} environment(s): {envs})")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    """Print a Slack app manifest for this config."""
    try:
        from bot.app.manifest import manifest_yaml  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("gonogo: manifest is not available in this build", file=sys.stderr)
        return 2
    print(manifest_yaml(_load(_config_path(args.config)), socket_mode=args.socket_mode))
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    """Write the event log as JSON Lines or CSV."""
    from bot.ops.audit import export_events, paged_events, parse_since
    from bot.store import StoreError, open_store

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        print(f"gonogo: --since {args.since!r} is not a date (YYYY-MM-DD) or ISO date-time", file=sys.stderr)
        return 2
    config = _load(_config_path(args.config))
    try:
        store = open_store(config.bot.store_url)
    except StoreError as exc:
        print(f"gonogo: {exc}", file=sys.stderr)
        return 2
    try:
        events = paged_events(store, since)
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as fh:
                count = export_events(events, fh, args.format)
            print(f"wrote {count} events to {args.output}", file=sys.stderr)
        else:
            export_events(events, sys.stdout, args.format)
    finally:
        store.close()
    return 0


KEEP_RUNNING = "console: on quit, leave what local environments started running (the demo app)"


def parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs test)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help=f"config file (default: $GONOGO_CONFIG or {DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        default=argparse.SUPPRESS,
        help="DEBUG, INFO, WARNING (default: $GONOGO_LOG_LEVEL or WARNING), ERROR, CRITICAL",
    )
    common.add_argument(
        "--log-format",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="text (default: $GONOGO_LOG_FORMAT or text) or json lines",
    )
    p = argparse.ArgumentParser(prog="gonogo", description="Slack ChatOps deploy bot.", parents=[common])
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser(
        "run", parents=[common], help="run the bot: Slack if SLACK_BOT_TOKEN is set, else the terminal chat"
    )
    run.add_argument(
        "--user", default=os.environ.get("USER_NAME", "alice"), help="console: who you are at start"
    )
    run.add_argument("--port", type=int, default=None, help="serve: HTTP port (default $PORT or 3000)")
    run.add_argument("--keep-running", action="store_true", help=KEEP_RUNNING)
    run.set_defaults(func=cmd_run)

    console = sub.add_parser(
        "console", parents=[common], help="the terminal chat (reads a script from stdin when piped)"
    )
    console.add_argument("--user", default="alice", help="who you are at start (switch with /as)")
    console.add_argument("--keep-running", action="store_true", help=KEEP_RUNNING)
    console.add_argument(
        "--web-port", type=int, default=None, help="also serve the web view on this port (needs [web])"
    )
    console.set_defaults(func=cmd_console)

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the Slack app: --mode http or socket (auto: Socket Mode with SLACK_APP_TOKEN, else HTTP)",
    )
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default $PORT or 3000)")
    serve.add_argument(
        "--mode",
        choices=["auto", "http", "socket"],
        default="auto",
        help="http (needs SLACK_SIGNING_SECRET), socket (needs SLACK_APP_TOKEN), "
        "or auto (default): socket when SLACK_APP_TOKEN is set, else http",
    )
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser(
        "check", parents=[common], help="validate a config file, listing every problem"
    )
    check.add_argument("file", nargs="?", help="the file (default: --config)")
    check.set_defaults(func=cmd_config_check)

    init = sub.add_parser(
        "init",
        parents=[common],
        help="write a commented starting config for your own project (asks, or --yes)",
    )
    add_init_arguments(init)
    init.set_defaults(func=run_init)

    doctor = sub.add_parser(
        "doctor", parents=[common], help="check the real setup before the first deploy (one line per check)"
    )
    add_doctor_arguments(doctor)
    doctor.set_defaults(func=lambda a: run_doctor(_config_path(a.config), a.env))

    audit = sub.add_parser("audit", help="the event log for compliance reviews")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_sub.add_parser("export", parents=[common], help="write the event log as JSON Lines or CSV")
    export.add_argument("--since", help="only events at or after this date (YYYY-MM-DD or ISO date-time)")
    export.add_argument(
        "--format", choices=["jsonl", "csv"], default="jsonl", help="output format (default jsonl)"
    )
    export.add_argument("--output", "-o", help="write to this file instead of stdout")
    export.set_defaults(func=cmd_audit_export)

    manifest = sub.add_parser(
        "manifest", parents=[common], help="print a Slack app manifest (YAML) for this config"
    )
    manifest.add_argument("--socket-mode", action="store_true", help="manifest for Socket Mode")
    manifest.set_defaults(func=cmd_manifest)
    return p


def _log_settings(args: argparse.Namespace) -> tuple[str, str]:
    """The log level and format: options first, then $GONOGO_LOG_LEVEL / $GONOGO_LOG_FORMAT."""
    level = getattr(args, "log_level", None) or os.environ.get("GONOGO_LOG_LEVEL", "").strip() or "WARNING"
    fmt = getattr(args, "log_format", None) or os.environ.get("GONOGO_LOG_FORMAT", "").strip() or "text"
    if level.upper() not in LEVELS:
        raise UsageError(f"GONOGO_LOG_LEVEL={level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise UsageError(f"GONOGO_LOG_FORMAT={fmt!r} is not one of {', '.join(FORMATS)}")
    return level.upper(), fmt


def _quiet_broken_pipe() -> None:
    """The reader of our stdout went away (`gonogo audit export | head`): stop quietly.

    Later writes (and the flush at exit) go to /dev/null instead of raising again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gonogo` console script.

    A bad setting is one line on stderr and exit status 2; a closed output pipe ends the
    command quietly with the status of a process stopped by SIGPIPE (141).
    """
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        args = p.parse_args(["run", *(argv if argv is not None else sys.argv[1:])])
    args.config = getattr(args, "config", None)
    try:
        level, fmt = _log_settings(args)
        args.log_level, args.log_format = level, fmt
        _LOGGING.update(level=level, format=fmt)
        from bot.ops.logs import setup_logging

        setup_logging(level, fmt)
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status
    except UsageError as exc:
        print(f"gonogo: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 141


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["Path", "main"]
