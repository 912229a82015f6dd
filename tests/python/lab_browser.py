"""The lab of `backprop serve` in a real browser (Debian's chromium driven by playwright):
the apple graph stepped to the book's numbers, a 7 drawn with mouse moves and read back as 7,
each view opened without a console error; screenshots of each view into a folder.

    python tests/python/lab_browser.py BACKPROP MODEL SCREENSHOTS_DIR
"""
import subprocess
import sys

from playwright.sync_api import sync_playwright

backprop, model, shots = sys.argv[1:4]
server = subprocess.Popen([backprop, "serve", "--addr", "127.0.0.1:0", "--model", model],
                          stdout=subprocess.PIPE, text=True)
try:
    line = server.stdout.readline()
    url = line.split("at ")[1].split(" ")[0]
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)

        # The apple graph: stepped through both passes, the book's numbers on its edges.
        page.wait_for_selector("#graph text.grad")
        rules = []
        page.click("#step")  # step 0: the inputs
        for _ in range(5):  # 2 forward, the output's 1, 2 backward
            page.click("#step")
            rules.append(page.inner_text("#rule"))
        assert rules == [
            "forward: mul_apple_layer computes 100 × 2 = 200",
            "forward: mul_tax_layer computes 200 × 1.1 = 220",
            "backward: ∂price/∂price = 1",
            "backward: mul_tax_layer: Mul swaps its inputs: ∂/∂mul_apple_layer = 1 × 1.1 = 1.1, ∂/∂tax = 1 × 200 = 200",
            "backward: mul_apple_layer: Mul swaps its inputs: ∂/∂apple = 1.1 × 2 = 2.2, ∂/∂apple_num = 1.1 × 100 = 110",
        ], rules
        edge = lambda name, cls: page.text_content(f'#graph text.{cls}[data-edge="{name}"]')
        assert edge("mul_tax_layer->price", "value") == "220"
        assert edge("apple->mul_apple_layer", "grad") == "2.2"
        assert edge("apple_num->mul_apple_layer", "grad") == "110"
        assert edge("tax->mul_tax_layer", "grad") == "200"
        page.screenshot(path=f"{shots}/lab-apple.png")
        # Edited inputs flow through both passes.
        page.fill('input[name="apple_num"]', "3")
        page.click("#show-all")
        page.wait_for_function("document.getElementById('results').textContent.startsWith('price: 330')")

        # Draw a 7: a stroke across the top, then down to the lower left.
        page.click('nav button[data-view="draw"]')
        box = page.locator("#pad").bounding_box()
        at = lambda x, y: (box["x"] + x, box["y"] + y)
        page.mouse.move(*at(60, 60))
        page.mouse.down()
        for x in range(60, 221, 10):
            page.mouse.move(*at(x, 60))
        for k in range(1, 17):
            page.mouse.move(*at(220 - 6 * k, 60 + 12 * k))
        page.mouse.up()
        page.wait_for_selector("#top li")
        top = page.get_attribute("#top li:first-child", "data-class")
        assert top == "7", f"read {top}: {page.inner_text('#top')}"
        page.screenshot(path=f"{shots}/lab-draw.png")
        browser.close()
    assert not errors, errors
    print(f"lab in chromium: apple graph stepped to 220 / 2.2 / 110 / 200, a drawn 7 read as {top}, no console error")
finally:
    server.kill()
