"""Open the built site in headless Chromium: feed, pagination, a post with math, a figure and the
language switch, a Chinese search, and no request leaving 127.0.0.1.

Uses the system Chromium at /usr/bin/chromium through Playwright's sync API (no browser download).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from shiyan.site import make_server

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    # On a laptop without Debian's chromium the test is skipped; under CI (CI=true) it must run.
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason=f"{CHROMIUM} is not installed"
    ),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
RW, LS, SM = "fake-random-walk", "fake-least-squares", "fake-softmax"


@pytest.fixture(scope="module")
def base_url(built_site) -> Iterator[str]:
    server = make_server(built_site, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser_page(base_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, requests, errors
        finally:
            context.close()
            browser.close()


def _excerpts(page) -> list[tuple[str, str, str]]:
    out = []
    for art in page.locator("article.md-post--excerpt").all():
        title = art.locator("h2 a.toclink").inner_text().strip()
        date = art.locator("time").inner_text().strip()
        category = art.locator("a.md-meta__link").inner_text().strip()
        out.append((title, date, category))
    return out


def test_site_in_a_browser(browser_page, base_url):
    page, requests, errors = browser_page

    # The feed: newest first, each with a date and a category; two per page.
    page.goto(base_url)
    assert _excerpts(page) == [
        ("归一化指数函数 · Softmax", "2024年3月1日", "DL"),
        ("最小二乘 · Least squares", "2024年2月1日", "ML"),
    ]
    assert page.locator("article.md-post--excerpt >> text=Turning scores into probabilities.").is_visible()

    # Pagination: page 2 holds the remaining post.
    page.locator(".md-pagination a", has_text="2").click()
    page.wait_for_url("**/page/2/")
    assert _excerpts(page) == [("随机游走 · Random walks", "2024年1月5日", "Math")]

    # The post: rendered math and a loaded figure.
    page.locator("article.md-post--excerpt h2 a.toclink").click()
    page.wait_for_url(f"**/posts/{RW}/")
    zh_tab, en_tab = page.locator(".tabbed-block").nth(0), page.locator(".tabbed-block").nth(1)
    math = zh_tab.locator("div.shiyan-math math").first
    math.scroll_into_view_if_needed()
    box = math.bounding_box()
    assert box is not None and box["width"] > 20 and box["height"] > 10
    inline = zh_tab.locator("p math").first.bounding_box()
    assert inline is not None and inline["width"] > 0 and inline["height"] > 0
    img = zh_tab.locator(f'figure img[src$="figures/{RW}/walk.svg"]')
    img.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("img => img.naturalWidth") == 320
    assert zh_tab.locator("text=蒙特卡洛频率与精确分布一致").is_visible()

    # The language switch: English shows the English text and hides the Chinese ...
    assert zh_tab.is_visible() and not en_tab.is_visible()
    page.locator(".tabbed-labels label", has_text="English").click()
    assert en_tab.locator("text=A simple random walk steps right").is_visible()
    assert en_tab.locator("text=Monte Carlo frequencies match the exact pmf").is_visible()
    assert not zh_tab.locator("text=一维简单随机游走").is_visible()
    assert not zh_tab.is_visible()
    # ... and is remembered on the next post.
    page.goto(f"{base_url}posts/{SM}/")
    assert page.locator(".tabbed-block").nth(1).locator("text=The softmax turns any real vector").is_visible()
    assert not page.locator(".tabbed-block").nth(0).is_visible()
    page.locator(".tabbed-labels label", has_text="中文").click()
    assert page.locator(".tabbed-block").nth(0).locator("text=归一化指数函数把任意实数向量").is_visible()

    # Search: a Chinese query finds the random-walk post.
    page.goto(base_url)
    search = page.locator("input.md-search__input")
    search.click()
    search.fill("随机游走")
    search.press("End")  # Material reads the query on keyup
    first = page.locator(".md-search-result__item a").first
    first.wait_for(timeout=10_000)
    assert f"/posts/{RW}/" in first.get_attribute("href")
    hrefs = [a.get_attribute("href") for a in page.locator(".md-search-result__item > a").all()]
    assert all(f"/posts/{RW}/" in h for h in hrefs), hrefs
    search.fill("probabilities")
    search.press("End")
    page.locator(f'.md-search-result__item > a[href*="/posts/{SM}/"]').wait_for(timeout=10_000)

    # Nothing left 127.0.0.1, and no script failed.
    assert requests, "no request recorded"
    outside = [u for u in requests if not u.startswith(base_url)]
    assert outside == []
    assert errors == []
