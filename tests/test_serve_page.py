"""The page in a real browser: Debian's chromium, driven by Playwright, against a real nmt serve.

Playwright's own browser download does not work on these machines; the test uses the system's
chromium (.ci/run installs it: apt-get install -y chromium) and fails, never skips, without it.
"""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from servers import Server
from tiny_checkpoints import train_tiny

from nmt.translator import Translator

SENTENCE = "seven thousand, one hundred and six"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return {
        "en-fr": train_tiny(tmp_path_factory.mktemp("en-fr")),
        "en-en": train_tiny(tmp_path_factory.mktemp("en-en"), trg="en", steps=60),
    }


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory):
    server = Server(list(checkpoints.values()), tmp_path_factory.mktemp("serve") / "stderr")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.goto(server.url + "/")
    yield page
    assert page.locator("#error").is_hidden(), page.locator("#error").text_content()
    assert problems == []
    page.close()


def test_typing_translates_and_hovering_an_output_piece_shows_its_attention(page, checkpoints):
    translator = Translator.from_checkpoint(checkpoints["en-fr"])
    [expected] = translator.translate_n_best([SENTENCE], n_best=5, attention=True)
    page.locator("#source").fill(SENTENCE)
    expect(page.locator("#output .line")).to_have_text(expected.hypotheses[0], timeout=20_000)
    expect(page.locator("#nbest li")).to_have_count(5)
    pieces = translator.output_tokens(expected)
    expect(page.locator("#output-pieces .piece")).to_have_count(len(pieces))
    expect(page.locator("#heatmap tr")).to_have_count(len(pieces) + 1)  # a header, then a row per output piece

    page.locator("#output-pieces .piece").nth(1).hover()
    expect(page.locator("#heatmap tr").nth(2)).to_have_class("active")
    expect(page.locator("#output-pieces .piece").nth(1)).to_have_class("piece output-piece active")
    weights = expected.attention[0][1].tolist()
    strongest = max(range(len(weights)), key=weights.__getitem__)
    shown = page.locator("#source-pieces .piece").nth(strongest).get_attribute("title")
    assert float(shown) == pytest.approx(weights[strongest], abs=1e-3)


def test_an_autoencoder_shows_its_reconstruction_against_the_input(page, checkpoints):
    page.locator("#pair").select_option(label="en ↺ en (reconstruction)")
    expect(page.locator("#output-title")).to_have_text("Reconstruction")
    page.locator("#source").fill("nine")
    expected = Translator.from_checkpoint(checkpoints["en-en"]).translate(["nine"])[0]
    badge = "exact" if expected == "nine" else "too short" if not expected else "differs"
    expect(page.locator("#output .badge")).to_have_text(badge, timeout=20_000)


def test_a_server_error_is_shown_on_the_page(browser, server):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.locator("#source").fill("x" * 6000)  # past the server's --max-chars
    expect(page.locator("#error")).to_contain_text("6000 characters in one request; the limit is 5000")
    page.close()
