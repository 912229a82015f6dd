"""The lab of `backprop serve` in a real browser (Debian's chromium driven by playwright):
the apple graph stepped to the book's numbers; the net stepped through both passes on a test
image, its numbers those of the API; the gradient check's figures those of `backprop
gradcheck`; a short run started and its curves gaining points; a 7 drawn with mouse moves and
read back as 7 with each layer's output; each view opened without a console error;
screenshots of each view into a folder.

    python tests/python/lab_browser.py BACKPROP MODEL SCREENSHOTS_DIR
"""
import json
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

        # A net on one image: stepped from the input through every node and back.
        page.click('nav button[data-view="net"]')
        page.wait_for_selector("#chain rect")
        nodes = page.eval_on_selector_all("#chain rect", "rs => rs.map(r => r.dataset.node)")
        assert nodes[-1] == "SoftmaxWithLoss" and nodes[0].startswith("Affine"), nodes
        traced = page.evaluate("""fetch('/api/trace', {method: 'POST', body: JSON.stringify({image: 0})})
                                  .then(r => r.json())""")
        rules = []
        page.click("#net-step")  # step 0: the input
        for _ in range(2 * len(nodes)):
            page.click("#net-step")
            rules.append(page.inner_text("#node .rule"))
        loss = traced["loss"]
        assert f"L = −log y[t] = {loss['loss']:.4g}" in rules[len(nodes) - 1], rules
        assert rules[len(nodes)].startswith("y[t=7]") and "∂L/∂a[7] = (y[7] − 1)/1" in rules[len(nodes)], rules
        relu = next(i for i, l in enumerate(traced["layers"]) if l["kind"] == "Relu")
        relu_rule = rules[2 * len(nodes) - 1 - relu]
        assert relu_rule.startswith("unit ") and "∂L/∂x = " in relu_rule, relu_rule
        assert f"{traced['layers'][relu]['branches']['taken']} of" in relu_rule, relu_rule
        assert "∂L/∂W1 = Xᵀ·∂L/∂Y: (784×1)·(1×" in rules[-1], rules[-1]
        assert page.locator("#chain text.grad").count() == len(nodes)
        page.screenshot(path=f"{shots}/lab-net.png")

        # The gradient check: the figures of `backprop gradcheck` with the same flags.
        page.click('nav button[data-view="check"]')
        page.fill('#check-inputs input[name="net"]', "784-50-10")
        page.click("#check-run")
        page.wait_for_selector("#check-table tr[data-param]", timeout=120_000)
        shown = {row: page.text_content(f'#check-table tr[data-param="{row}"] td.diff')
                 for row in ["W1", "b1", "W2", "b2"]}
        cli = json.loads(subprocess.run([backprop, "gradcheck", "--json"], capture_output=True,
                                        text=True, check=True).stdout)
        expected = {name: f"{c['mean_abs_diff']:.3e}".replace("e-0", "e-").replace("e+0", "e+")
                    for name, c in cli.items()}
        assert shown == expected, (shown, expected)
        page.screenshot(path=f"{shots}/lab-check.png")

        # Live training: a short run started from the form; its curves gain points.
        page.click('nav button[data-view="train"]')
        page.fill('#train-inputs input[name="iters"]', "400")
        page.fill('#train-inputs input[name="eval-every"]', "100")
        page.click("#train-start")
        page.wait_for_function("Number(document.getElementById('loss-chart').dataset.points) >= 1")
        first = int(page.get_attribute("#loss-chart", "data-points"))
        page.wait_for_function(f"Number(document.getElementById('loss-chart').dataset.points) > {first}")
        page.wait_for_function("document.getElementById('train-status').dataset.state === 'finished'",
                               timeout=120_000)
        assert page.get_attribute("#accuracy-chart", "data-points") == "4"  # iterations 0, 100, 200, 300
        assert page.get_attribute("#loss-chart", "data-points") == "400"
        page.wait_for_function("document.getElementById('train-weights').naturalWidth > 0")
        page.screenshot(path=f"{shots}/lab-train.png")

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
        assert page.locator("#draw-layers figure").count() == len(nodes) - 1
        page.screenshot(path=f"{shots}/lab-draw.png")
        browser.close()
    assert not errors, errors
    print(f"lab in chromium: apple graph stepped to 220 / 2.2 / 110 / 200; {len(nodes)} nodes stepped both ways; "
          f"gradient check {shown['W1']} as the CLI's; a run's curves grew to 400 points; a drawn 7 read as {top}; no console error")
finally:
    server.kill()
