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
// The Step / Show both passes controls of the two graph views.
document.querySelectorAll(".stepper").forEach((box) => {
  const button = (id, text) => { const b = document.createElement("button"); b.id = id; b.textContent = text; return b; };
  const phase = document.createElement("span");
  phase.id = box.dataset.phase;
  box.append(button(box.dataset.step, "Step"), button(box.dataset.all, "Show both passes"), phase);
});

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
let lastDrawn = null; // the last drawing as the net saw it, and its top class
const pad = $("pad");
const pen = pad.getContext("2d");
function clearPad() {
  pen.fillStyle = "#fff"; pen.fillRect(0, 0, pad.width, pad.height);
  $("top").replaceChildren(); $("draw-note").textContent = ""; $("draw-layers").replaceChildren();
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
    const answer = await api("/api/predict?layers", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
    lastDrawn = { pixels: answer.pixels, label: answer.top[0].index };
    $("draw-layers").replaceChildren(...answer.layers.map((l) => figure(l.name, tensorView(l.y, "value"))));
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

// ---- tensors as pictures ----
// Values in grey (dark = large), derivatives red (positive) and blue (negative), each scaled
// by its largest magnitude.
function colour(kind, v, most) {
  const a = most > 0 ? Math.min(1, Math.abs(v) / most) : 0;
  if (kind === "value") { const g = Math.round(255 * (1 - a)); return [g, g, g]; }
  const c = Math.round(255 * (1 - a));
  return v >= 0 ? [255, c, c] : [c, c, 255];
}

function magnitude(values) { return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0); }

function picture(values, rows, cols, kind, scale, most) {
  const canvas = document.createElement("canvas");
  canvas.width = cols * scale; canvas.height = rows * scale;
  const m = most ?? magnitude(values);
  paint(canvas, [rows, cols], (i) => colour(kind, values[i], m));
  return canvas;
}

function bars(values, kind) {
  const canvas = document.createElement("canvas");
  const width = Math.min(600, Math.max(60, values.length * 8));
  canvas.width = width; canvas.height = 70;
  const ctx = canvas.getContext("2d");
  const most = magnitude(values) || 1;
  const w = width / values.length;
  ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(0, 35); ctx.lineTo(width, 35); ctx.stroke();
  values.forEach((v, i) => {
    const [r, g, b] = kind === "value" ? [60, 60, 60] : (v >= 0 ? [200, 0, 0] : [0, 0, 200]);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    const h = 33 * v / most;
    ctx.fillRect(i * w, v >= 0 ? 35 - h : 35, Math.max(1, w - 1), Math.abs(h));
  });
  canvas.title = `${values.length} values, largest magnitude ${format(most)}`;
  return canvas;
}

// A tensor of the API ({shape, values} or {shape, mean_abs, max_abs}) as pictures or bars.
function tensorView(t, kind) {
  const box = document.createElement("div");
  box.className = "tensor";
  const shape = t.shape;
  if (!t.values) {
    box.textContent = `shape ${shape.join("×")}: mean |·| ${format(t.mean_abs)}, max |·| ${format(t.max_abs)}`;
    return box;
  }
  const [rows, cols] = modelImage;
  const images = (count, h, w, scale) => {
    const most = magnitude(t.values);
    for (let i = 0; i < Math.min(count, 64); i++) box.appendChild(picture(t.values.slice(i * h * w, (i + 1) * h * w), h, w, kind, scale, most));
  };
  const last = shape[shape.length - 1];
  if (shape.length === 4) images(shape[0] * shape[1], shape[2], shape[3], shape[2] > 14 ? 2 : 4);
  else if (shape.length === 2 && shape[0] === 1 && last === rows * cols) images(1, rows, cols, 4);
  else if (shape.length === 2 && shape[0] === rows * cols) {
    // A weight matrix over the image: one picture per unit, its column.
    const columns = [];
    for (let u = 0; u < Math.min(last, 64); u++) columns.push(...t.values.filter((_, i) => i % last === u));
    const most = magnitude(t.values);
    for (let u = 0; u < Math.min(last, 64); u++) box.appendChild(picture(columns.slice(u * rows * cols, (u + 1) * rows * cols), rows, cols, kind, 2, most));
  } else if (shape.length === 2 && shape[0] > 1) box.appendChild(picture(t.values, shape[0], last, kind, Math.max(1, Math.floor(240 / Math.max(shape[0], last))), undefined));
  else box.appendChild(bars(t.values, kind));
  return box;
}

function figure(caption, content) {
  const f = document.createElement("figure");
  const c = document.createElement("figcaption");
  c.textContent = caption;
  f.append(c, content);
  return f;
}

// ---- a net on one image ----
let trace = null;
let netStep = null; // null: both passes shown whole

function netNodes() { return trace ? [...trace.layers, trace.loss] : []; }
function netSteps() { return 2 * netNodes().length + 1; }

async function loadTrace(body) {
  const form = new FormData($("net-inputs"));
  if (form.get("source") === "fresh") body.fresh = Number(form.get("seed"));
  try {
    trace = await api("/api/trace", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    netStep = null; // another net may have another number of nodes
    drawNet();
  } catch (e) {
    $("node").textContent = e.message;
  }
}

function traceImage() { loadTrace({ image: Number($("net-inputs").elements.image.value) }); }
$("net-inputs").addEventListener("change", traceImage);
$("net-random").addEventListener("click", () => {
  $("net-inputs").elements.image.value = Math.floor(Math.random() * 10000);
  traceImage();
});
$("net-drawn").addEventListener("click", () => {
  if (lastDrawn) loadTrace({ pixels: lastDrawn.pixels, label: lastDrawn.label });
  else $("node").textContent = "Draw a digit in the last view first.";
});
$("net-step").addEventListener("click", () => {
  if (!trace) return;
  netStep = netStep === null || netStep >= netSteps() - 1 ? 0 : netStep + 1;
  drawNet();
});
$("net-all").addEventListener("click", () => { netStep = null; drawNet(); });

// Step 0 shows the input; steps 1…n each node forward; steps n+1…2n each node backward,
// from the loss to the first layer.
function netView() {
  const n = netNodes().length;
  if (netStep === null) return { forward: n, backward: n, current: null, pass: "both passes" };
  if (netStep <= n) return { forward: netStep, backward: 0, current: netStep - 1, pass: "forward" };
  const backward = netStep - n;
  return { forward: n, backward, current: n - backward, pass: "backward" };
}

function drawNet() {
  if (!trace) return;
  const nodes = netNodes();
  const view = netView();
  const svg = $("chain");
  svg.replaceChildren();
  const gap = 960 / (nodes.length + 1);
  const x = (i) => gap * (i + 0.5) + 10;
  const text = (tx, ty, content, cls) => {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("text-anchor", "middle");
    if (cls) t.setAttribute("class", cls);
    t.textContent = content; svg.appendChild(t);
  };
  const label = trace.image == null ? `drawing, t = ${trace.label}` : `test image ${trace.image}, t = ${trace.label}`;
  text(x(-0.25) + 20, 70, "x");
  text(x(-0.25) + 20, 88, label.length > 22 ? "drawing" : "", "small");
  nodes.forEach((node, i) => {
    const rect = document.createElementNS(SVG, "rect");
    Object.entries({ x: x(i) + gap / 2 - 53, y: 50, width: 106, height: 36, rx: 6 }).forEach(([k, v]) => rect.setAttribute(k, v));
    rect.setAttribute("class", view.current === i ? "op current" : "op");
    rect.dataset.node = node.name;
    rect.addEventListener("click", () => { netStep = null; showNode(i, true, true); drawNet(); showNode(i, true, true); });
    svg.appendChild(rect);
    text(x(i) + gap / 2, 73, node.name);
    const from = x(i) - gap / 2 + 50, to = x(i) + gap / 2 - 50;
    const line = document.createElementNS(SVG, "line");
    Object.entries({ x1: from, y1: 68, x2: to, y2: 68 }).forEach(([k, v]) => line.setAttribute(k, v));
    svg.appendChild(line);
    const input = i === 0 ? trace.layers[0].x : nodes[i - 1].y ?? nodes[i - 1].scores;
    if (i < view.forward) text((from + to) / 2, 40, input.shape.join("×"), "value");
    // The derivative on the edge into node i is known once node i went backward.
    const back = nodes.length - view.backward;
    if (i >= back) text((from + to) / 2, 110, i === nodes.length - 1 ? `∂L/∂a` : `∂L/∂${nodes[i - 1]?.name ?? "x"}`, "grad");
  });
  text(x(nodes.length - 1) + gap / 2, 130, view.forward >= nodes.length ? `L = ${format(trace.loss.loss)}` : "L");
  $("net-phase").textContent = netStep === null ? "both passes" : `step ${netStep} of ${netSteps() - 1} (${view.pass})`;
  if (netStep === null) showNode(nodes.length - 1, true, true);
  else if (netStep === 0) showInput();
  else showNode(view.current, view.pass === "forward", view.pass === "backward");
}

function showInput() {
  const l = trace.layers[0];
  $("node").replaceChildren(figure(`x: the input, ${l.x.shape.join("×")}; the target t = ${trace.label}`, tensorView(l.x, "value")));
}

// The formula of node i and, for the pass shown, its numbers.
function showNode(i, forward, backward) {
  const node = netNodes()[i];
  const box = document.createElement("div");
  const formula = document.createElement("pre");
  formula.className = "formula";
  formula.textContent = node.formula.join("\n");
  box.appendChild(formula);
  const rule = document.createElement("p");
  rule.className = "rule";
  rule.textContent = numbers(node, forward, backward);
  box.appendChild(rule);
  const row = document.createElement("div");
  row.className = "tensors";
  if (node === trace.loss) {
    if (forward) row.append(figure("a: the scores", tensorView(node.scores, "value")), figure("y = softmax(a)", tensorView(node.probabilities, "value")));
    if (backward) row.append(figure("∂L/∂a = (y − t)/N, leaving", tensorView(node.dscores, "grad")));
  } else {
    if (forward) row.append(figure(`x, in (${node.x.shape.join("×")})`, tensorView(node.x, "value")), figure(`y, out (${node.y.shape.join("×")})`, tensorView(node.y, "value")));
    if (backward) {
      row.append(figure("∂L/∂y, arriving", tensorView(node.dout, "grad")), figure("∂L/∂x, leaving", tensorView(node.dx, "grad")));
      node.params.forEach((p) => row.append(figure(`∂L/∂${p.name} (${p.grad.shape.join("×")})`, tensorView(p.grad, "grad"))));
    }
  }
  box.appendChild(row);
  $("node").replaceChildren(box);
}

// The formula applied to one unit: the one whose arriving derivative is largest.
function numbers(node, forward, backward) {
  const f = (v) => format(Number(v.toPrecision(4)));
  if (node === trace.loss) {
    const y = node.probabilities.values, t = trace.label, n = node.scores.shape[0];
    const loss = `y[t=${t}] = ${f(y[t])}, L = −log y[t] = ${f(node.loss)}`;
    return backward ? `${loss}; ∂L/∂a[${t}] = (y[${t}] − 1)/${n} = ${f(node.dscores.values[t])}, ∂L/∂a[k] = y[k]/${n} for the other classes` : loss;
  }
  const values = (t) => t.values || [];
  const dout = values(node.dout), x = values(node.x), y = values(node.y), dx = values(node.dx);
  const j = dout.reduce((best, v, i) => (Math.abs(v) > Math.abs(dout[best]) ? i : best), 0);
  const shape = (t) => t.shape.join("×");
  switch (node.kind) {
    case "Relu": {
      const mask = node.branches ? ` The mask: ${node.branches.taken} of ${x.length} units have x > 0.` : "";
      return backward
        ? `unit ${j}: x = ${f(x[j])} ${x[j] > 0 ? "> 0, so the derivative passes" : "≤ 0, so it is blocked"}: ∂L/∂x = ${f(dout[j])} · ${x[j] > 0 ? 1 : 0} = ${f(dx[j])}.${mask}`
        : `unit ${j}: y = max(0, ${f(x[j])}) = ${f(y[j])}.${mask}`;
    }
    case "Sigmoid":
      return backward
        ? `unit ${j}: ∂L/∂x = ∂L/∂y · y(1 − y) = ${f(dout[j])} · ${f(y[j])} · (1 − ${f(y[j])}) = ${f(dx[j])}`
        : `unit ${j}: y = 1/(1 + exp(−${f(x[j])})) = ${f(y[j])}`;
    case "Affine": {
      // X as (N, D): a convolutional net's feature maps enter an Affine layer flattened.
      const n = node.x.shape[0], d = node.x.shape.slice(1).reduce((a, b) => a * b, 1), m = node.y.shape[1];
      if (!backward) return `Y (${n}×${m}) = X (${n}×${d}) · ${node.params[0].name} (${d}×${m}) + ${node.params[1]?.name ?? "b"} (${m})`;
      const i = x.reduce((best, v, k) => (Math.abs(v) > Math.abs(x[best]) ? k : best), 0);
      const w = node.params[0];
      const dw = w.grad.values ? ` = ${f(w.grad.values[i * m + j])}` : "";
      return `∂L/∂${w.name} = Xᵀ·∂L/∂Y: (${d}×${n})·(${n}×${m}); its element [${i}, ${j}] = x[${i}] · ∂L/∂y[${j}] = ${f(x[i])} · ${f(dout[j])}${dw}. ∂L/∂X = ∂L/∂Y·Wᵀ: (${n}×${m})·(${m}×${d}). ∂L/∂b = Σₙ ∂L/∂Y: ∂L/∂b[${j}] = ${f(node.params[1]?.grad.values?.[j] ?? dout[j])}`;
    }
    case "Dropout":
      return backward
        ? `unit ${j}: ∂L/∂x = ∂L/∂y · mask = ${f(dout[j])} · ${y[j] === 0 && x[j] !== 0 ? 0 : 1} = ${f(dx[j])}`
        : `unit ${j}: y = x · mask = ${f(y[j])}`;
    case "Conv":
      return backward
        ? `∂L/∂W (${shape(node.params[0].grad)}) from col(x) and ∂L/∂y (${shape(node.dout)}); ∂L/∂x (${shape(node.dx)}) by col2im, overlapping windows adding up`
        : `x (${shape(node.x)}) ∗ W (${shape(node.params[0].value)}) + b → y (${shape(node.y)})`;
    case "Pool": {
      const maxima = node.branches ? `${node.branches.taken} of ${node.x.values?.length ?? "the"} inputs are a window's maximum` : "";
      return backward ? `∂L/∂y (${shape(node.dout)}) goes back to the maxima alone: ${maxima}; every other input gets 0` : `x (${shape(node.x)}) → the maximum of each window → y (${shape(node.y)}); ${maxima}`;
    }
    default:
      return "";
  }
}

// ---- gradient check ----
api("/api/model").then((m) => { if (/^\d+(-\d+)+$/.test(m.net)) $("check-inputs").elements.net.value = m.net; });
$("check-run").addEventListener("click", async () => {
  const form = new FormData($("check-inputs"));
  const query = [...form.entries()].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  $("check-note").textContent = "checking: two forward passes per parameter…";
  $("check-table").replaceChildren();
  try {
    const check = await api(`/api/gradcheck?${query}`);
    const table = document.createElement("table");
    table.innerHTML = "<tr><th>parameter</th><th>shape</th><th>mean |backprop − numerical|</th><th>max relative error</th><th>largest elements: backprop | numerical</th></tr>";
    check.entries.forEach((e) => {
      const tr = document.createElement("tr");
      tr.dataset.param = e.name;
      const pairs = e.largest.slice(0, 4).map((p) => `[${p.index}] ${p.backprop.toExponential(6)} | ${p.numerical.toExponential(6)}`).join("<br>");
      tr.innerHTML = `<td>${e.name}</td><td>${e.shape.join("×")}</td><td class="diff">${e.mean_abs_diff.toExponential(3)}</td><td>${e.max_rel_err.toExponential(2)}</td><td class="pairs">${pairs}</td>`;
      table.appendChild(tr);
    });
    $("check-table").replaceChildren(table);
    $("check-note").textContent = check.kinks.length === 0
      ? "No ReLU kink was crossed: the numerical gradient is trustworthy, and backprop agrees with it."
      : check.kinks.map((k) => `${k.units} of the ${k.of} inputs of ${k.layer} crossed ReLU's kink at 0 when a parameter before it (${k.upstream.join(", ")}) moved by ±h: there the numerical gradient mixes two slopes.`).join(" ");
  } catch (e) {
    $("check-note").textContent = e.message;
  }
});

// ---- live training ----
let losses = [], evaluations = [];

function chart(canvas, series, range) {
  const ctx = canvas.getContext("2d");
  const [w, h, pad] = [canvas.width, canvas.height, 30];
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#999"; ctx.strokeRect(pad, 5, w - pad - 5, h - pad - 5);
  const points = series.flatMap((s) => s.points);
  if (points.length === 0) return;
  const xmax = Math.max(1, ...points.map((p) => p[0]));
  const [ylo, yhi] = range ?? [0, Math.max(...points.map((p) => p[1]))];
  ctx.fillStyle = "#444"; ctx.font = "11px sans-serif";
  ctx.fillText(format(Number(yhi.toPrecision(3))), 0, 14); ctx.fillText(format(ylo), 0, h - pad);
  ctx.fillText(`iteration ${xmax}`, w - 90, h - 10);
  series.forEach((s) => {
    ctx.strokeStyle = s.colour; ctx.beginPath();
    s.points.forEach(([px, py], k) => {
      const cx = pad + (w - pad - 5) * px / xmax, cy = 5 + (h - pad - 5) * (1 - (py - ylo) / (yhi - ylo || 1));
      if (k === 0) ctx.moveTo(cx, cy); else ctx.lineTo(cx, cy);
    });
    ctx.stroke();
  });
}

function drawCharts() {
  chart($("loss-chart"), [{ points: losses, colour: "#c33" }]);
  chart($("accuracy-chart"), [
    { points: evaluations.map((e) => [e.iter, e.train_acc]), colour: "#36c" },
    { points: evaluations.map((e) => [e.iter, e.test_acc]), colour: "#393" },
  ], [0, 1]);
  $("loss-chart").dataset.points = losses.length;
  $("accuracy-chart").dataset.points = evaluations.length;
}

const events = new EventSource("/api/train/events");
events.onmessage = (message) => {
  const e = JSON.parse(message.data);
  if (e.type === "run") { losses = []; evaluations = []; $("train-status").textContent = e.run ? `run ${e.run}: ${e.status}` : "no run yet"; }
  else if (e.type === "start") $("train-status").textContent = `run ${e.run}: ${e.net}, ${e.optimizer}, ${e.iters} iterations of batch ${e.batch}`;
  else if (e.type === "status") $("train-status").textContent = e.error ? `${e.status}: ${e.error}` : e.status;
  else if (e.type === "loss") losses.push([e.iter + 1, e.loss]);
  else if (e.type === "eval") { evaluations.push(e); $("train-status").textContent = `iteration ${e.iter + 1}: train ${e.train_acc.toFixed(4)}, test ${e.test_acc.toFixed(4)}`; }
  else if (e.type === "weights") $("train-weights").src = `/api/train/weights.png?iter=${e.iter}`;
  $("train-status").dataset.state = e.status ?? $("train-status").dataset.state;
  drawCharts();
};

$("train-start").addEventListener("click", async () => {
  const form = {};
  new FormData($("train-inputs")).forEach((v, k) => {
    if (v === "") return;
    form[k] = /^-?[\d.]+(e-?\d+)?$/.test(v) ? Number(v) : v;
  });
  if (form.model !== "mlp") { delete form.net; delete form.activation; }
  try { await api("/api/train", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(form) }); }
  catch (e) { $("train-status").textContent = e.message; }
});
["pause", "resume", "stop"].forEach((action) => $(`train-${action}`).addEventListener("click", async () => {
  try { await api(`/api/train/${action}`, { method: "POST" }); } catch (e) { $("train-status").textContent = e.message; }
}));
traceImage();
