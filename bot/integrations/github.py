"""GitHub as the code host, over its REST API (httpx).

- CI: the combined status (`GET /repos/{owner}/{repo}/commits/{ref}/status`) and the check runs
  (`GET /repos/{owner}/{repo}/commits/{ref}/check-runs`) of a commit, as `Context`s.
- Deployments: `POST /repos/{owner}/{repo}/deployments` and
  `POST /repos/{owner}/{repo}/deployments/{id}/statuses`.

The base URL is configurable (GitHub Enterprise, or a local server in tests); the token comes
from an environment variable, sent as `Authorization: Bearer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bot.integrations.base import Context, ContextState, DeploymentState, IntegrationError
from bot.integrations.http import request

API_VERSION = "2022-11-28"
#: Check-run conclusions that do not stand in a deploy's way.
_PASSING_CONCLUSIONS = {"success", "neutral", "skipped"}
_STATUS_STATES: dict[str, ContextState] = {
    "success": "success",
    "pending": "pending",
    "failure": "failure",
    "error": "failure",
}


class GitHub:
    """One repository on GitHub (or GitHub Enterprise): implements `CodeHost`."""

    name = "GitHub"

    def __init__(
        self,
        repository: str,
        token: str | None,
        *,
        api_url: str = "https://api.github.com",
        timeout: float = 10.0,
        token_env: str = "GITHUB_TOKEN",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.repository = repository
        self.token_env = token_env
        self._token = token
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "gonogo",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=api_url.rstrip("/") + "/", headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        if not self._token:
            raise IntegrationError(f"{what}: {self.token_env} is not set (the GitHub token)")
        response = request(
            self._client,
            method,
            f"repos/{self.repository}/{path}",
            service="GitHub",
            what=what,
            token_hint=self.token_env,
            **kwargs,
        )
        try:
            return response.json()
        except ValueError:
            raise IntegrationError(f"{what}: GitHub answered something that is not JSON") from None

    # -- CI -----------------------------------------------------------------------------------
    def commit_contexts(self, sha: str) -> list[Context]:
        """Commit statuses first (the newest per context), then check runs (the newest per name)."""
        what = f"reading the CI status of {sha[:7]}"
        combined = self._call("GET", f"commits/{sha}/status", what, params={"per_page": 100})
        runs = self._call("GET", f"commits/{sha}/check-runs", what, params={"per_page": 100})
        contexts: dict[str, Context] = {}
        for status in _items(combined, "statuses", what):
            name = str(status.get("context") or "")
            if name and name not in contexts:  # GitHub lists the newest status per context first
                state = _STATUS_STATES.get(str(status.get("state")), "pending")
                contexts[name] = Context(name, state, status.get("target_url"), status.get("description"))
        newest: dict[str, Mapping[str, Any]] = {}
        for run in _items(runs, "check_runs", what):
            name = str(run.get("name") or "")
            if name and (name not in newest or int(run.get("id") or 0) > int(newest[name].get("id") or 0)):
                newest[name] = run
        for name, run in newest.items():
            if name not in contexts:
                contexts[name] = _check_run(run)
        return list(contexts.values())

    # -- deployments --------------------------------------------------------------------------
    def create_deployment(
        self, *, ref: str, sha: str, environment: str, description: str, payload: Mapping[str, Any]
    ) -> str:
        """`POST /deployments` for `sha`; gonogo does its own gating, so no required contexts."""
        body = {
            "ref": sha,
            "task": "deploy",
            "auto_merge": False,
            "required_contexts": [],
            "environment": environment,
            "description": description[:140],
            "payload": dict(payload, ref=ref),
        }
        created = self._call("POST", "deployments", f"creating the GitHub deployment of {sha[:7]}", json=body)
        if not isinstance(created, Mapping) or "id" not in created:
            message = created.get("message") if isinstance(created, Mapping) else None
            raise IntegrationError(
                f"GitHub did not create the deployment: {message or 'no id in its answer'}"
            )
        return str(created["id"])

    def deployment_status(
        self,
        deployment_id: str,
        *,
        state: DeploymentState,
        description: str,
        environment_url: str | None,
        log_url: str | None,
    ) -> None:
        """`POST /deployments/{id}/statuses`."""
        body: dict[str, Any] = {"state": state, "description": description[:140], "auto_inactive": True}
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        self._call(
            "POST", f"deployments/{deployment_id}/statuses", f"posting {state} to GitHub deployment {deployment_id}",
            json=body,
        )  # fmt: skip


def _items(body: Any, key: str, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(body, Mapping) or not isinstance(body.get(key, []), list):
        raise IntegrationError(f"{what}: GitHub's answer has no {key} list")
    return [item for item in body.get(key, []) if isinstance(item, Mapping)]


def _check_run(run: Mapping[str, Any]) -> Context:
    url = run.get("html_url") or run.get("details_url")
    if run.get("status") != "completed":
        return Context(str(run["name"]), "pending", url, str(run.get("status") or "queued"))
    conclusion = str(run.get("conclusion") or "")
    state: ContextState = "success" if conclusion in _PASSING_CONCLUSIONS else "failure"
    return Context(str(run["name"]), state, url, conclusion or None)


__all__ = ["API_VERSION", "GitHub"]
