// The lab's page: views over the JSON API of `backprop serve` (README, "backprop serve").
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// ---- views ----
document.querySelectorAll("nav button").forEach((button) => {
  button.addEventListener("click", () => {
    document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b === button));
    document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== button.dataset.view; });
  });
});

let modelImage = [28, 28]; // the image shape the net takes, as /api/model says
api("/api/model").then((m) => {
  const accuracy = m.test_accuracy == null ? "" : `, test accuracy ${(100 * m.test_accuracy).toFixed(2)}%`;
  $("model").textContent = `model: ${m.net}${accuracy}`;
  modelImage = m.image;
});

// ---- the apple graph (§5.4) ----
// Stepping: 0 shows the inputs; each forward step one operation's output; then the output's
// derivative 1 and each backward step one operation's derivatives to its inputs.
let graph = null;
let step = null; // null: both passes shown whole

function ops() { return graph.nodes.filter((n) => n.kind !== "input"); }
function stepCount() { return 2 * ops().length + 2; }

function format(x) { return String(Math.round(x * 1e9) / 1e9); }

async function loadGraph() {
  const form = new FormData($("apple-inputs"));
  const keys = form.get("oranges") ? ["apple", "apple_num", "orange", "orange_num", "tax"] : ["apple", "apple_num", "tax"];
  document.querySelectorAll(".orange").forEach((e) => { e.hidden = !form.get("oranges"); });
  const query = keys.map((k) => `${k}=${encodeURIComponent(form.get(k))}`).join("&");
  try {
    graph = await api(`/api/apple?${query}`);
    $("results").textContent = graph.results.join("\n");
    draw();
  } catch (e) {
    $("rule").textContent = e.message;
  }
}

function layout() {
  const column = {};
  const byName = {};
  graph.nodes.forEach((n) => { byName[n.name] = n; column[n.name] = n.kind === "input" ? 0 : 1 + Math.max(...n.inputs.map((i) => column[i])); });
  const inputs = graph.nodes.filter((n) => n.kind === "input");
  const at = {};
  inputs.forEach((n, i) => { at[n.name] = { x: 130, y: 50 + i * (320 / Math.max(1, inputs.length - 1)) }; });
  const columns = Math.max(...Object.values(column)) + 1;
  ops().forEach((n) => {
    const ys = n.inputs.map((i) => at[i].y);
    at[n.name] = { x: 130 + column[n.name] * (700 / columns), y: ys.reduce((a, b) => a + b, 0) / ys.length };
  });
  at[graph.output.name] = { x: 900, y: at[graph.output.from].y };
  return { at, byName };
}

// What the current step shows: forward values of which nodes, derivatives of which edges.
function shown() {
  const operations = ops();
  if (step === null) return { values: (n) => true, grads: (n) => true, current: null, text: "" };
  const forward = Math.min(step, operations.length);
  const computed = new Set(operations.slice(0, forward).map((n) => n.name));
  const backward = Math.max(0, step - operations.length - 1); // operations done backward
  const done = new Set(operations.slice(operations.length - backward).map((n) => n.name));
  let current = null;
  let text = "forward: the inputs";
  if (step >= 1 && step <= operations.length) {
    current = operations[step - 1];
    text = `forward: ${current.name} computes ${current.forward}`;
  } else if (step === operations.length + 1) {
    text = `backward: ∂${graph.output.name}/∂${graph.output.name} = 1`;
  } else if (step > operations.length + 1) {
    current = operations[operations.length - backward];
    text = `backward: ${current.name}: ${current.backward}`;
  }
  return {
    values: (n) => n.kind === "input" || computed.has(n.name),
    // The derivative on an edge into an operation is known once that operation went backward.
    grads: (to) => done.has(to) || (to === graph.output.name && step > operations.length),
    current,
    text,
  };
}

function draw() {
  const svg = $("graph");
  svg.replaceChildren();
  const { at, byName } = layout();
  const view = shown();
  const edge = (from, to, value, grad) => {
    const [a, b] = [at[from], at[to]];
    const line = document.createElementNS(SVG, "line");
    Object.entries({ x1: a.x + 22, y1: a.y, x2: b.x - 22, y2: b.y }).forEach(([k, v]) => line.setAttribute(k, v));
    svg.appendChild(line);
    const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    const label = (text, cls, dy) => {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", mid.x); t.setAttribute("y", mid.y + dy); t.setAttribute("text-anchor", "middle");
      t.setAttribute("class", cls); t.setAttribute("data-edge", `${from}->${to}`);
      t.textContent = text; svg.appendChild(t);
    };
    if (view.values(byName[from])) label(format(value), "value", -8);
    if (view.grads(to)) label(format(grad), "grad", 20);
  };
  ops().forEach((n) => n.inputs.forEach((i, k) => {
    // ∂output/∂input along this edge: the node's derivative times the local one.
    const other = byName[n.inputs[1 - k]].value;
    const local = n.kind === "mul" ? other : 1;
    edge(i, n.name, byName[i].value, n.grad * local);
  }));
  edge(graph.output.from, graph.output.name, graph.output.value, 1);
  graph.nodes.forEach((n) => {
    const p = at[n.name];
    if (n.kind === "input") {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", p.x - 20); t.setAttribute("y", p.y + 5); t.setAttribute("text-anchor", "end");
      t.textContent = n.name; svg.appendChild(t);
      return;
    }
    const c = document.createElementNS(SVG, "circle");
    c.setAttribute("cx", p.x); c.setAttribute("cy", p.y); c.setAttribute("r", 22);
    c.setAttribute("class", view.current === n ? "op current" : "op");
    svg.appendChild(c);
    const sign = document.createElementNS(SVG, "text");
    sign.setAttribute("x", p.x); sign.setAttribute("y", p.y + 6); sign.setAttribute("text-anchor", "middle");
    sign.textContent = n.kind === "mul" ? "×" : "+"; svg.appendChild(sign);
    const name = document.createElementNS(SVG, "text");
    name.setAttribute("x", p.x); name.setAttribute("y", p.y - 30); name.setAttribute("text-anchor", "middle");
    name.setAttribute("font-size", "12"); name.textContent = n.name; svg.appendChild(name);
  });
  const out = document.createElementNS(SVG, "text");
  out.setAttribute("x", at[graph.output.name].x - 10); out.setAttribute("y", at[graph.output.name].y + 5);
  out.textContent = graph.output.name; svg.appendChild(out);
  $("rule").textContent = view.text;
  $("phase").textContent = step === null ? "both passes" : `step ${step} of ${stepCount() - 1}`;
}

$("apple-inputs").addEventListener("input", () => { loadGraph(); });
$("step").addEventListener("click", () => {
  step = step === null || step >= stepCount() - 1 ? 0 : step + 1;
  draw();
});
$("show-all").addEventListener("click", () => { step = null; draw(); });
loadGraph();

// ---- draw a digit ----
const pad = $("pad");
const pen = pad.getContext("2d");
function clearPad() {
  pen.fillStyle = "#fff"; pen.fillRect(0, 0, pad.width, pad.height);
  $("top").replaceChildren(); $("draw-note").textContent = "";
  [$("seen"), $("saliency")].forEach((c) => c.getContext("2d").clearRect(0, 0, c.width, c.height));
}
clearPad();
let drawing = false;
function point(e) { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
pad.addEventListener("pointerdown", (e) => {
  drawing = true; pad.setPointerCapture(e.pointerId);
  pen.lineWidth = 18; pen.lineCap = "round"; pen.lineJoin = "round"; pen.strokeStyle = "#000";
  pen.beginPath(); pen.moveTo(...point(e));
});
pad.addEventListener("pointermove", (e) => { if (drawing) { pen.lineTo(...point(e)); pen.stroke(); } });
pad.addEventListener("pointerup", () => { if (drawing) { drawing = false; classify(); } });
$("clear").addEventListener("click", clearPad);

function paint(canvas, size, color) {
  const small = document.createElement("canvas");
  small.width = size[1]; small.height = size[0];
  const ctx = small.getContext("2d");
  const image = ctx.createImageData(size[1], size[0]);
  for (let i = 0; i < size[0] * size[1]; i++) image.data.set([...color(i), 255], 4 * i);
  ctx.putImageData(image, 0, 0);
  const big = canvas.getContext("2d");
  big.imageSmoothingEnabled = false;
  big.clearRect(0, 0, canvas.width, canvas.height);
  big.drawImage(small, 0, 0, canvas.width, canvas.height);
}

async function classify() {
  const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  try {
    const answer = await api("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
    $("top").replaceChildren(...answer.top.map((t) => {
      const li = document.createElement("li");
      li.dataset.class = t.class;
      li.innerHTML = `<b>${t.class}</b> ${(100 * t.probability).toFixed(1)}%<span class="bar" style="width:${Math.round(150 * t.probability)}px"></span>`;
      return li;
    }));
    paint($("seen"), modelImage, (i) => { const v = answer.pixels[i]; return [v, v, v]; });
    if (answer.saliency) {
      $("saliency-title").textContent = `∂score(${answer.saliency_of})/∂pixel`;
      paint($("saliency"), modelImage, (i) => {
        const s = answer.saliency[i];
        const a = Math.round(255 * Math.min(1, Math.abs(s)));
        return s >= 0 ? [255, 255 - a, 255 - a] : [255 - a, 255 - a, 255];
      });
      $("draw-note").textContent = "";
    } else {
      $("draw-note").textContent = "This net has batch norm or dropout: its input gradient is not shown.";
    }
  } catch (e) {
    $("draw-note").textContent = e.message;
  }
}
