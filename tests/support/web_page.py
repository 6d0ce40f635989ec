"""Helpers for the browser tests: Debian's Chromium through Playwright, the app's page, and
measurements taken in the page (horizontal overflow, text contrast from computed colours).

Nothing here downloads a browser: `CHROMIUM` is Debian's /usr/bin/chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from mlsd_bot.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
TIMEOUT_MS = 60_000  # generous: the machine running the tests may be busy; nothing waits this long when all is well
# name -> (width, height, colour scheme): a desktop and a 390x844 phone, each light and dark.
VIEWS = {"desktop-light": (1280, 900, "light"), "desktop-dark": (1280, 900, "dark"),
         "phone-light": (390, 844, "light"), "phone-dark": (390, 844, "dark")}
MIN_CONTRAST = 4.5  # WCAG AA for normal text
expect.set_options(timeout=TIMEOUT_MS)


@contextmanager
def open_page(browser: Browser, url: str, view: str = "desktop-light") -> Iterator[Page]:
    """A new browser session (its own localStorage) in `view`. Any JS dialog or off-host request fails."""
    width, height, scheme = VIEWS[view]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                  accept_downloads=True, is_mobile=width < 600, has_touch=width < 600)
    context.set_default_timeout(TIMEOUT_MS)
    dialogs, outside = [], []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    context.on("request", lambda r: outside.append(r.url) if r.url.startswith("http") and not r.url.startswith(
        url) else None)
    try:
        yield context.new_page()
    finally:
        context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"
    assert not outside, f"the page fetched from other hosts: {outside}"


def shot(page: Page, name: str) -> None:
    """A screenshot to look at when a test breaks (test-artifacts/ is gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def bot(page: Page) -> Locator:
    return page.locator("#chat [data-testid=bot]")


def user(page: Page) -> Locator:
    return page.locator("#chat [data-testid=user]")


def box(page: Page) -> Locator:
    return page.locator("#msg textarea")


def turns(page: Page) -> int:
    """The number of turns the page's status bar was last rendered with (it is, after every turn)."""
    return int(page.locator("#status .mlsd-status").get_attribute("data-turns"))


def wait_turns(page: Page, n: int) -> None:
    expect(page.locator(f'#status .mlsd-status[data-turns="{n}"]')).to_have_count(1)


def start_interview(page: Page, url: str, case_title: str, voice: str | None = None) -> None:
    page.goto(url)
    page.locator("#case input").click()
    page.get_by_role("option", name=case_title, exact=True).click()
    if voice:
        page.locator("#voice").get_by_label(voice, exact=True).check()
    page.locator("#start").click()
    expect(bot(page)).to_have_count(1)
    wait_turns(page, 1)


def say(page: Page, text: str, via: str = "enter") -> None:
    """Send a message (Enter key or Send button) and wait until the turn is over (status bar updated)."""
    before = turns(page)
    box(page).fill(text)
    box(page).press("Enter") if via == "enter" else page.locator("#send").click()
    wait_turns(page, before + 2)


def command(page: Page, button: str) -> None:
    """Press Hint or Next (or confirm End) and wait until the turn is over."""
    before = turns(page)
    page.locator(button).click()
    wait_turns(page, before + 2)


def download(page: Page, button: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.locator(button).click()
    return info.value.suggested_filename, Path(info.value.path()).read_text(encoding="utf-8")


_OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth, bad = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(e).visibility === 'hidden') continue;
    if (r.right > vw + 0.5 || r.left < -0.5)
      bad.push(`${e.tagName.toLowerCase()}#${e.id}.${String(e.className).slice(0, 40)} ` +
               `${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  return {page: document.documentElement.scrollWidth, viewport: vw, wider: bad.slice(0, 8)};
}"""


def assert_nothing_wider_than_the_viewport(page: Page) -> None:
    """No visible element reaches past the viewport's left or right edge (so nothing is clipped or
    needs sideways scrolling), and the page itself is no wider than the viewport."""
    out = page.evaluate(_OVERFLOW_JS)
    assert out["page"] <= out["viewport"] and not out["wider"], f"wider than the viewport: {out}"


# WCAG contrast of each text element against the colour behind it: the first opaque background up
# the tree, with any translucent backgrounds on the way composited over it.
_CONTRAST_JS = """(selector) => {
  const parse = (c) => { const m = /rgba?\\(([^)]+)\\)/.exec(c || ''); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
                                 b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    return layers.reverse().reduce((under, top) => over(top, under), {r: 255, g: 255, b: 255, a: 1}); };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  return [...document.querySelectorAll(selector)].map((t) => {
    const style = getComputedStyle(t), bg = background(t.ownerSVGElement || t);
    const fg = over(parse(t instanceof SVGElement ? style.fill : style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    return {text: t.textContent, ratio: (hi + 0.05) / (lo + 0.05)}; });
}"""


def text_contrast(page: Page, selector: str) -> list[dict]:
    """[{text, ratio}] for every element matching `selector`, measured from computed colours."""
    return page.evaluate(_CONTRAST_JS, selector)


def assert_readable(page: Page, selector: str) -> None:
    found = text_contrast(page, selector)
    assert found, f"no text matched {selector!r}"
    low = [f for f in found if f["ratio"] < MIN_CONTRAST]
    assert not low, f"text contrast below {MIN_CONTRAST}:1 in {selector!r}: {low[:5]}"
