"""The web view in a real headless Chromium: sign in, the pages render, links work, and a
deploy in flight appears without a reload (server-sent events)."""

from __future__ import annotations

import threading
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium
from tests.web.conftest import TOKEN, Site, ship


def test_pages_render_links_work_and_a_deploy_in_flight_appears_without_a_reload(site: Site) -> None:
    first = ship(site.engine, "v1", reason="first <b>release</b>")
    with chromium() as browser:
        wait = WebDriverWait(browser, 20)
        browser.get(site.url + "/")
        assert "Sign in" in browser.title  # the 401 page is the sign-in form
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        wait.until(lambda b: b.find_elements(By.ID, "env-staging"))
        assert "v1" in browser.find_element(By.ID, "env-staging").text

        # links: the deploy row leads to its page, which shows the timeline and the event log
        browser.find_element(By.CSS_SELECTOR, f"#deploy-{first} a").click()
        wait.until(lambda b: "Step timeline" in b.page_source)
        assert (
            "first <b>release</b>" in browser.find_element(By.CLASS_NAME, "facts").text
        )  # escaped, shown as typed
        assert "deployed v1 on h2" in browser.find_element(By.CLASS_NAME, "steps").text
        browser.find_element(By.LINK_TEXT, "staging").click()
        wait.until(lambda b: "History of staging" in b.page_source)
        browser.find_element(By.LINK_TEXT, "DORA figures").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "svg.chart"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 4

        # a deploy in flight appears on the open page by itself
        browser.get(site.url + "/")
        wait.until(lambda b: b.find_elements(By.ID, "env-staging"))
        time.sleep(0.5)  # the page's event stream is open
        (site.data / "slow").touch()
        worker = threading.Thread(target=ship, args=(site.engine, "v2"))
        worker.start()
        try:
            WebDriverWait(browser, 20).until(
                lambda b: "In flight" in b.find_element(By.ID, "env-staging").text
            )
            WebDriverWait(browser, 30).until(
                lambda b: (
                    "v2" in b.find_element(By.ID, "env-staging").text
                    and "In flight" not in b.find_element(By.ID, "env-staging").text
                )
            )
        finally:
            worker.join(60)
