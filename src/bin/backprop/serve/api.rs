//! The lab's routes: its pages, and the JSON API under `/api/` (README, "backprop serve").
//!
//! | route | answers |
//! |---|---|
//! | `GET /` | the lab's page (`page/`), its script and style |
//! | `GET /api/model` | the net: its layers, classes, image shape |
//! | `GET /api/apple?apple=100&apple_num=2&tax=1.1` | §5.4.1's graph, both passes (`&orange=150&orange_num=3`: §5.4.2's) |
//! | `POST /api/predict` | JSON `{"pixels": [rows·cols values 0–255]}`, an MNIST-style image (light digit on dark), or a PNG/JPEG picture prepared as `backprop predict` prepares it: the top classes and probabilities, the image the net saw, and `∂score/∂pixel` of the top class; `?layers` adds each layer's output |
//! | `GET /api/image?index=i` | test image `i` of the lab's data and its label |
//! | `POST /api/trace` | `{"image": i}` or `{"pixels": [...], "label": c}` (`"fresh": seed` for a fresh TwoLayerNet): every layer's input, output, arriving and leaving derivative, parameter gradients and formula |
//! | `GET /api/gradcheck?net=…&seed=…&weight_init_std=…&images=…` | `backprop gradcheck` with those flags: per parameter the book's mean \|backprop − numerical\|, the largest elements of both, the ReLU kinks crossed |
//! | `POST /api/train` | starts a run from `{"flag": value}`, flags of `backprop train` (`net`, `lr`, `iters`, …) |
//! | `GET /api/train` | the run's number and status |
//! | `GET /api/train/events` | the run as server-sent events: `start`, `loss`, `eval`, `weights`, `status` |
//! | `GET /api/train/weights.png` | the first layer's weights, the latest picture |
//! | `POST /api/train/pause`, `resume`, `stop` | controls the run |
//!
//! A request that cannot be answered gets a 4xx status and `{"error": "one line"}`.

use std::io::Read;

use backprop::data::digitize_bytes;
use backprop::functions::softmax;
use backprop::graph::Graph;
use backprop::layers::Mode;
use backprop::net::Sequential;
use ndarray::Array2;
use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use super::{Lab, explain, live};
use std::sync::Arc;

/// The page and its assets, built into the binary.
const PAGES: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/lab.js",
        "text/javascript; charset=utf-8",
        include_str!("page/lab.js"),
    ),
    (
        "/lab.css",
        "text/css; charset=utf-8",
        include_str!("page/lab.css"),
    ),
];

/// The largest request body read (a picture of a digit is far smaller).
const MOST_BYTES: usize = 8 << 20;

/// The most probable classes `/api/predict` lists.
const TOP: usize = 3;

/// A request that cannot be answered: its status and why, in one line.
#[derive(Debug)]
pub struct Refusal {
    status: u16,
    reason: String,
}

pub fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

type Reply = Result<Response<std::io::Cursor<Vec<u8>>>, Refusal>;

/// Answers `request` with `net`, this worker's copy of the lab's net. A client that has gone
/// away costs nothing: its answer is dropped.
pub fn answer(mut request: Request, lab: &Arc<Lab>, net: &mut Sequential<f32>) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().clone();
    if (&method, path) == (&Method::Get, "/api/train/events") {
        // A stream for as long as the page follows: a thread of its own, not a worker.
        let lab = lab.clone();
        std::thread::spawn(move || live::follow(request, &lab));
        return;
    }
    let page = PAGES.into_iter().find(|(at, _, _)| *at == path);
    let reply = match (&method, page) {
        (Method::Get | Method::Head, Some((_, kind, text))) => {
            Ok(with_type(Response::from_string(text), kind))
        }
        _ => route(&method, path, query, &mut request, lab, net),
    };
    let response = reply.unwrap_or_else(|refusal| {
        json_reply(&json!({ "error": refusal.reason })).with_status_code(refusal.status)
    });
    let _ = request.respond(response);
}

/// The API's answer to `method` on `path`.
fn route(
    method: &Method,
    path: &str,
    query: &str,
    request: &mut Request,
    lab: &Arc<Lab>,
    net: &mut Sequential<f32>,
) -> Reply {
    match (method, path) {
        (Method::Get, "/api/model") => Ok(json_reply(&model(lab, net))),
        (Method::Get, "/api/apple") => apple(query).map(|graph| json_reply(&graph)),
        (Method::Post, "/api/predict") => body(request)
            .and_then(|(bytes, kind)| predict(lab, net, &bytes, kind.as_deref(), query))
            .map(|answer| json_reply(&answer)),
        (Method::Get, "/api/image") => explain::image(&lab.data, query).map(|v| json_reply(&v)),
        (Method::Post, "/api/trace") => body(request)
            .and_then(|(bytes, _)| {
                explain::trace(net, &lab.data, &bytes, |values| {
                    checked_pixels(values, lab.shape.0 * lab.shape.1)
                })
            })
            .map(|v| json_reply(&v)),
        (Method::Get, "/api/gradcheck") => {
            explain::gradcheck(&lab.data, query).map(|v| json_reply(&v))
        }
        (Method::Get, "/api/train") => Ok(json_reply(&lab.live.summary())),
        (Method::Post, "/api/train") => body(request)
            .and_then(|(bytes, _)| live::start(lab, &bytes))
            .map(|v| json_reply(&v)),
        (Method::Post, "/api/train/pause" | "/api/train/resume" | "/api/train/stop") => {
            let action = path.rsplit('/').next().unwrap_or_default();
            lab.live.control(action).map(|v| json_reply(&v))
        }
        (Method::Get, "/api/train/weights.png") => match lab.live.weights() {
            Some(png) => Ok(with_type(Response::from_data(png.to_vec()), "image/png")),
            None => Err(refuse(404, "no run has drawn its weights yet: start one")),
        },
        (
            _,
            "/api/model"
            | "/api/apple"
            | "/api/image"
            | "/api/gradcheck"
            | "/api/train/events"
            | "/api/train/weights.png",
        ) => Err(refuse(
            405,
            format!("{method} is not allowed on {path}: it takes GET"),
        )),
        (
            _,
            "/api/predict" | "/api/trace" | "/api/train/pause" | "/api/train/resume"
            | "/api/train/stop",
        ) => Err(refuse(
            405,
            format!("{method} is not allowed on {path}: it takes POST"),
        )),
        (_, "/api/train") => Err(refuse(
            405,
            format!("{method} is not allowed on {path}: GET reads the run, POST starts one"),
        )),
        _ => Err(refuse(
            404,
            format!("no page or API at {path}: the lab is at /, its API under /api/"),
        )),
    }
}

/// A query `a=1&b=x` as the flags `--a 1 --b x` (`_` read as `-`; a key without a value
/// is a switch).
pub fn query_flags(query: &str) -> Result<Vec<String>, Refusal> {
    let mut flags = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .map_or((pair, None), |(k, v)| (k, Some(v)));
        if key.is_empty() || key.starts_with('-') {
            return Err(refuse(400, format!("{pair:?} is not a setting")));
        }
        flags.push(format!("--{}", key.replace('_', "-")));
        flags.extend(value.map(str::to_string));
    }
    Ok(flags)
}

/// The first line of a flag error, without clap's `error: `.
pub fn clap_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[allow(
    clippy::expect_used,
    reason = "the header names and values are this file's constants, all valid"
)]
fn with_type<R: Read>(response: Response<R>, kind: &str) -> Response<R> {
    let header = Header::from_bytes("Content-Type", kind).expect("a valid header");
    response.with_header(header)
}

pub fn json_reply(value: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    with_type(
        Response::from_data(value.to_string().into_bytes()),
        "application/json",
    )
}

/// The request's body and its content type, refused when larger than [`MOST_BYTES`].
fn body(request: &mut Request) -> Result<(Vec<u8>, Option<String>), Refusal> {
    let too_large = || {
        refuse(
            413,
            format!("the body is larger than {} MiB", MOST_BYTES >> 20),
        )
    };
    if request.body_length().is_some_and(|n| n > MOST_BYTES) {
        return Err(too_large());
    }
    let kind = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_ascii_lowercase());
    let mut bytes = Vec::new();
    request
        .as_reader()
        .take(MOST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(400, format!("the body could not be read: {e}")))?;
    if bytes.len() > MOST_BYTES {
        return Err(too_large());
    }
    Ok((bytes, kind))
}

/// `GET /api/model`.
fn model(lab: &Lab, net: &Sequential<f32>) -> Value {
    json!({
        "net": lab.info.net.layout(),
        "layers": net.layer_names(),
        "classes": lab.info.class_names,
        "image": [lab.shape.0, lab.shape.1],
        "test_accuracy": lab.info.test_accuracy,
    })
}

/// `GET /api/apple?…`: the graph of §5.4.1 (apple, apple_num, tax) or, with orange or
/// orange_num, of §5.4.2, each pass computed by the library's Mul and Add layers.
fn apple(query: &str) -> Result<Value, Refusal> {
    let mut values = [
        ("apple", 100.0),
        ("apple_num", 2.0),
        ("orange", 150.0),
        ("orange_num", 3.0),
        ("tax", 1.1),
    ];
    let mut oranges = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, text) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(slot) = values.iter_mut().find(|(name, _)| *name == key) else {
            return Err(refuse(
                400,
                format!("unknown value {key:?}: give apple, apple_num, orange, orange_num or tax"),
            ));
        };
        slot.1 = match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v.abs() <= 1e12 => v,
            _ => {
                return Err(refuse(
                    400,
                    format!("{key}={text:?} is not a number between -1e12 and 1e12"),
                ));
            }
        };
        oranges |= key.starts_with("orange");
    }
    let [apple, apple_num, orange, orange_num, tax] = values.map(|(_, v)| v);
    let graph = if oranges {
        Graph::buy_apples_and_oranges([apple, apple_num], [orange, orange_num], tax)
    } else {
        Graph::buy_apples(apple, apple_num, tax)
    };
    let mut answer = graph.to_json();
    answer["results"] = graph.results_text().lines().collect::<Vec<_>>().into();
    Ok(answer)
}

/// `POST /api/predict`.
fn predict(
    lab: &Lab,
    net: &mut Sequential<f32>,
    body: &[u8],
    kind: Option<&str>,
    query: &str,
) -> Result<Value, Refusal> {
    let (rows, cols) = lab.shape;
    let pixels: Vec<u8> = match kind.map(|k| k.split(';').next().unwrap_or(k).trim()) {
        Some("application/json") => json_pixels(body, rows * cols)?,
        Some("image/png" | "image/jpeg") => {
            digitize_bytes(body, rows, cols).map_err(|e| refuse(422, e))?
        }
        other => {
            return Err(refuse(
                415,
                format!(
                    "content type {:?}: send application/json ({{\"pixels\": [...]}}) or a picture as image/png or image/jpeg",
                    other.unwrap_or("none")
                ),
            ));
        }
    };
    let x = Array2::from_shape_fn((1, rows * cols), |(_, i)| f32::from(pixels[i]) / 255.0);
    let scores = net.predict(x.view().into_dyn(), Mode::Eval);
    let probabilities = softmax(scores.view());
    let mut ranked: Vec<(usize, f32)> = probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<Value> = ranked
        .iter()
        .take(TOP)
        .map(|&(c, p)| json!({ "class": lab.info.class_names[c], "index": c, "probability": p }))
        .collect();
    let best = ranked[0].0;
    let saliency = net
        .score_gradient(x.view().into_dyn(), &[best])
        .map(|gradient| {
            let most = gradient.iter().fold(0f32, |m, g| m.max(g.abs()));
            let scale = if most > 0.0 { 1.0 / most } else { 0.0 };
            gradient.iter().map(|g| g * scale).collect::<Vec<f32>>()
        });
    let mut answer = json!({
        "top": top,
        "probabilities": probabilities.iter().collect::<Vec<_>>(),
        "pixels": pixels,
        "saliency": saliency,
        "saliency_of": lab.info.class_names[best],
    });
    if query.split('&').any(|p| p == "layers") {
        answer["layers"] = explain::activations(net, x.view().into_dyn());
    }
    Ok(answer)
}

/// `{"pixels": [...]}` with `count` values 0–255.
fn json_pixels(body: &[u8], count: usize) -> Result<Vec<u8>, Refusal> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pixels {
        pixels: Vec<f64>,
    }
    let Pixels { pixels } = serde_json::from_slice(body).map_err(|e| {
        refuse(
            400,
            format!("the body is not {{\"pixels\": [numbers]}}: {e}"),
        )
    })?;
    checked_pixels(&pixels, count)
}

/// `count` pixel values 0–255, rounded.
fn checked_pixels(pixels: &[f64], count: usize) -> Result<Vec<u8>, Refusal> {
    if pixels.len() != count {
        return Err(refuse(
            400,
            format!("{} pixel values; the net takes {count}", pixels.len()),
        ));
    }
    pixels
        .iter()
        .enumerate()
        .map(|(i, &p)| match p {
            p if (0.0..=255.0).contains(&p) => Ok(p.round() as u8),
            _ => Err(refuse(400, format!("pixel {i} is {p}, not in 0–255"))),
        })
        .collect()
}
