"""The web view over real HTTP: sign-in (token, Sign in with Slack against the fake), 401 for
everyone else, pages that show the deploy that just ran, and escaping of user input."""

from __future__ import annotations

import urllib.request

import httpx

from tests.web.conftest import TOKEN, Site, ship


def signed_in(site: Site) -> httpx.Client:
    client = httpx.Client(base_url=site.url.removesuffix("/web"), timeout=10)
    r = client.post("/web/login", data={"token": TOKEN, "next": "/web/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/web/"
    return client


def test_every_page_refuses_an_unauthenticated_request_with_401(site: Site) -> None:
    ship(site.engine, "v1")
    with httpx.Client(base_url=site.url, timeout=10) as anon:
        for path in ("/", "/deploys", "/deploys/1", "/envs/staging", "/dora", "/events"):
            r = anon.get(site.url + path)
            assert r.status_code == 401, path
            assert "v1" not in r.text
        assert "Sign in" in anon.get(site.url + "/").text
        bad = anon.post(site.url + "/login", data={"token": "nope"})
        assert bad.status_code == 401 and "not right" in bad.text
        forged = anon.get(site.url + "/", headers={"Cookie": "gonogo_session=eyJ1IjoiZXZlIn0.deadbeef"})
        assert forged.status_code == 401
        assert anon.get(site.url + "/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_pages_show_the_deploy_that_just_ran_and_escape_user_input(site: Site) -> None:
    deployment_id = ship(site.engine, "v1", reason="<script>alert(1)</script> & more")
    client = signed_in(site)
    index = client.get("/web/")
    assert index.status_code == 200
    assert 'id="env-staging"' in index.text and "<code>v1</code>" in index.text
    page = client.get(f"/web/deploys/{deployment_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "<script>alert" not in page
    assert "deployed v1 on h1" in page and "bob" in page  # the step timeline, the approver
    assert "request deploy" in page and "approve" in page  # the event log
    assert "<svg" in client.get("/web/dora").text
    assert client.get("/web/envs/nowhere").status_code == 404
    assert client.get("/web/deploys/999").status_code == 404
    out = client.post("/web/logout", follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/web/").status_code == 401


def test_sign_in_with_slack_runs_the_openid_connect_code_flow(site: Site) -> None:
    client = httpx.Client(base_url=site.url.removesuffix("/web"), timeout=10)
    start = client.get("/web/auth/slack", follow_redirects=False)
    assert start.status_code == 303
    authorize = start.headers["location"]
    assert (
        authorize.startswith(site.slack.url + "/openid/connect/authorize?")
        and "client_id=1234.5678" in authorize
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(authorize)
    except urllib.error.HTTPError as answer:
        back = answer.headers["Location"]
    assert back.startswith(site.url + "/auth/slack/callback?code=")
    done = client.get(back.removeprefix(site.url.removesuffix("/web")), follow_redirects=False)
    assert done.status_code == 303, done.text
    assert client.get("/web/").text.count("Sign out alice") == 1
    token_call = next(c for c in site.slack.calls if c.method == "openid.connect.token")
    assert token_call.params["client_secret"] == "oidc-client-secret"
    # a callback with a state that did not start here is refused
    replay = httpx.get(back, timeout=10)
    assert replay.status_code == 401 and "did not start here" in replay.text
