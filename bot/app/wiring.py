"""The composition root: config → store, ref resolver, leader election → engine, for a chat adapter.

Everything that picks real implementations for the seams lives here and only here; the CLI
(`bot.app.cli`) and the Slack service (`bot.app.serve`) both build their engine with `build_engine`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from bot.app.backends import backend_factory
from bot.chat.base import Chat
from bot.config import Config
from bot.engine import Engine, Integrations
from bot.source import NullResolver, RefResolver


def build_engine(config: Config, chat: Chat, **kwargs: Any) -> Engine:
    """Wire store, resolver and leader election for `config`, and the engine over `chat`.

    `kwargs` go to `Engine` (directory, resolver, leadership...). An unreachable store stops
    the process with a one-line message (exit 2), never a traceback.
    """
    from bot.store import StoreError, open_store
    from bot.timing.leader import leadership_for

    try:
        store = open_store(config.bot.store_url)
    except StoreError as exc:
        print(f"gonogo: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    resolver = kwargs.pop("resolver", None) or ref_resolver(config)
    kwargs.setdefault("leadership", leadership_for(config.bot.store_url))
    kwargs.setdefault("backends", backend_factory(config))
    kwargs.setdefault("integrations", integrations_for(config, os.environ))
    return Engine(config, store, chat, resolver=resolver, **kwargs)


def integrations_for(config: Config, environ: Mapping[str, str]) -> Integrations:
    """The code host and pagers `config` names, with their secrets from `environ`."""
    from bot.integrations import GitHub, Pager, PagerDuty, Webhook

    tables = config.integrations
    codehost = None
    gh = tables.github
    if gh.repository:
        codehost = GitHub(
            gh.repository,
            environ.get(gh.token_env),
            api_url=gh.api_url,
            timeout=gh.timeout,
            token_env=gh.token_env,
        )
    pagers: list[Pager] = []
    pd = tables.pagerduty
    if pd.routing_key_env:
        pagers.append(
            PagerDuty(
                environ.get(pd.routing_key_env), events_url=pd.events_url, timeout=pd.timeout,
                routing_key_env=pd.routing_key_env, client_url=tables.web.url if tables.web.enabled else None,
            )
        )  # fmt: skip
    hook = tables.webhook
    if hook.url:
        pagers.append(
            Webhook(hook.url, environ.get(hook.secret_env), timeout=hook.timeout, secret_env=hook.secret_env)
        )
    return Integrations(codehost, tuple(pagers), tables.web, mirror=tables.github.deployments)


def ref_resolver(config: Config) -> RefResolver:
    """The git resolver (mirror, allowed refs, changelog, tags) when `[repo] url` is set, else refs as labels."""
    if config.repo.url:
        from bot.source import GitResolver  # GitPython is only loaded when a repo is configured

        return GitResolver(config)
    return NullResolver(config.repo.default_branch)


__all__ = ["build_engine", "integrations_for", "ref_resolver"]
