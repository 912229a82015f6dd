//! The lab's routes: its pages, and the JSON API under `/api/` (README, "backprop serve").
//!
//! | route | answers |
//! |---|---|
//! | `GET /` | the lab's page (`page/`), its script and style |
//! | `GET /api/model` | the net: its layers, classes, image shape |
//! | `GET /api/apple?apple=100&apple_num=2&tax=1.1` | §5.4.1's graph, both passes (`&orange=150&orange_num=3`: §5.4.2's) |
//! | `POST /api/predict` | JSON `{"pixels": [rows·cols values 0–255]}`, an MNIST-style image (light digit on dark), or a PNG/JPEG picture prepared as `backprop predict` prepares it: the top classes and probabilities, the image the net saw, and `∂score/∂pixel` of the top class |
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

use super::Lab;

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
struct Refusal {
    status: u16,
    reason: String,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

type Reply = Result<Response<std::io::Cursor<Vec<u8>>>, Refusal>;

/// Answers `request` with `net`, this worker's copy of the lab's net. A client that has gone
/// away costs nothing: its answer is dropped.
pub fn answer(mut request: Request, lab: &Lab, net: &mut Sequential<f32>) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().clone();
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
    lab: &Lab,
    net: &mut Sequential<f32>,
) -> Reply {
    match (method, path) {
        (Method::Get, "/api/model") => Ok(json_reply(&model(lab, net))),
        (Method::Get, "/api/apple") => apple(query).map(|graph| json_reply(&graph)),
        (Method::Post, "/api/predict") => body(request)
            .and_then(|(bytes, kind)| predict(lab, net, &bytes, kind.as_deref()))
            .map(|answer| json_reply(&answer)),
        (_, "/api/model" | "/api/apple" | "/api/predict") => Err(refuse(
            405,
            format!("{method} is not allowed on {path}: /api/predict takes POST, the others GET"),
        )),
        _ => Err(refuse(
            404,
            format!("no page or API at {path}: the lab is at /, its API under /api/"),
        )),
    }
}

#[allow(
    clippy::expect_used,
    reason = "the header names and values are this file's constants, all valid"
)]
fn with_type<R: Read>(response: Response<R>, kind: &str) -> Response<R> {
    let header = Header::from_bytes("Content-Type", kind).expect("a valid header");
    response.with_header(header)
}

fn json_reply(value: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
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
    Ok(json!({
        "top": top,
        "probabilities": probabilities.iter().collect::<Vec<_>>(),
        "pixels": pixels,
        "saliency": saliency,
        "saliency_of": lab.info.class_names[best],
    }))
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
