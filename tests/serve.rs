//! `backprop serve`: its JSON API answers with the library's numbers, refuses bad requests
//! with a 4xx and one line, and says when it listens beyond loopback. Each test starts a
//! server on a free port, learnt from the line it prints, and stops it at the end.

mod common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use backprop::graph::Graph;
use backprop::layers::Mode;
use serde_json::Value;

/// A running `backprop serve`, killed when dropped.
struct Lab {
    child: Child,
    addr: String,
}

impl Lab {
    fn start(args: &[&str]) -> Lab {
        let mut child = Command::new(env!("CARGO_BIN_EXE_backprop"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Lab { child, addr }
    }

    /// `method path` with `body` of `kind`: the status and the body as JSON (or text).
    fn request(&self, method: &str, path: &str, kind: &str, body: &[u8]) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, "text/plain", b"")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_apple_graph_has_the_books_numbers_and_follows_its_inputs() {
    let lab = Lab::start(&["--addr", "127.0.0.1:0"]);
    let (status, graph) = lab.get("/api/apple");
    assert_eq!(status, 200);
    assert_eq!(
        graph["results"],
        serde_json::json!(["price: 220", "dApple: 2.2", "dApple_num: 110", "dTax: 200"])
    );
    let rule = graph["nodes"][3]["backward"].as_str().unwrap();
    assert_eq!(
        rule,
        "Mul swaps its inputs: ∂/∂apple = 1.1 × 2 = 2.2, ∂/∂apple_num = 1.1 × 100 = 110"
    );
    let (_, oranges) = lab.get("/api/apple?orange=150");
    let lines: Vec<String> = Graph::buy_apple_orange()
        .results_text()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(oranges["results"], serde_json::json!(lines));
    let (_, edited) = lab.get("/api/apple?apple=50&apple_num=4&tax=1.5");
    assert_eq!(
        edited["results"],
        serde_json::json!(["price: 300", "dApple: 6", "dApple_num: 75", "dTax: 200"])
    );
    let (status, page) = lab.get("/");
    assert_eq!(status, 200);
    assert!(
        page.as_str()
            .unwrap()
            .contains("<title>backprop lab</title>")
    );
}

/// A model trained by `backprop train` into `dir`.
fn trained_model(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("run");
    let run = common::backprop(&[
        "train",
        "--iters",
        "600",
        "--eval-every",
        "600",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", common::stderr(&run));
    out.join("model.safetensors")
}

#[test]
fn predictions_are_the_librarys_for_pixels_and_the_cli_s_for_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let lab = Lab::start(&["--addr", "127.0.0.1:0", "--model", model.to_str().unwrap()]);
    // The first test image as 784 values 0–255.
    let mnist = backprop::data::load(None, None).unwrap();
    let pixels: Vec<u8> = mnist.test.images.row(0).to_vec();
    let body = serde_json::json!({ "pixels": pixels }).to_string();
    let (status, answer) = lab.request("POST", "/api/predict", "application/json", body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    let (mut net, _) = backprop::io::load_model(&model, Default::default()).unwrap();
    let x = ndarray::Array2::from_shape_fn((1, 784), |(_, i)| f32::from(pixels[i]) / 255.0);
    let probabilities =
        backprop::functions::softmax(net.predict(x.view().into_dyn(), Mode::Eval).view());
    let served: Vec<f32> = answer["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(
        served,
        probabilities.iter().copied().collect::<Vec<_>>(),
        "the same bits"
    );
    let best = (0..10)
        .max_by(|&a, &b| probabilities[[0, a]].total_cmp(&probabilities[[0, b]]))
        .unwrap();
    assert_eq!(answer["top"][0]["index"], best);
    assert_eq!(
        answer["top"][0]["class"],
        mnist.test.labels[0].to_string(),
        "the net is right about it"
    );
    let saliency = net.score_gradient(x.view().into_dyn(), &[best]).unwrap();
    let most = saliency.iter().fold(0f32, |m, g| m.max(g.abs()));
    let served = answer["saliency"].as_array().unwrap();
    assert_eq!(served.len(), 784);
    for (s, g) in served.iter().zip(saliency.iter()) {
        assert_eq!(s.as_f64().unwrap() as f32, g * (1.0 / most));
    }
    // A picture, prepared as `backprop predict` prepares it: the same top class and percent.
    let picture = Path::new("tests/corpus/image/digit.png");
    let (status, answer) = lab.request(
        "POST",
        "/api/predict",
        "image/png",
        &std::fs::read(picture).unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    let cli = common::backprop(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        picture.to_str().unwrap(),
    ]);
    let top = &answer["top"][0];
    let expected = format!(
        "{} ({:.1}%)",
        top["class"].as_str().unwrap(),
        100.0 * top["probability"].as_f64().unwrap()
    );
    assert!(
        common::stdout(&cli).contains(&format!(": {expected}")),
        "{} vs {expected}",
        common::stdout(&cli)
    );
}

#[test]
fn bad_requests_get_a_4xx_and_one_line() {
    let lab = Lab::start(&["--addr", "127.0.0.1:0"]);
    let predict = |kind: &str, body: &[u8]| lab.request("POST", "/api/predict", kind, body);
    let cases: Vec<((u16, Value), u16, &str)> = vec![
        (lab.get("/nowhere"), 404, "no page or API at /nowhere"),
        (
            lab.request("POST", "/api/apple", "text/plain", b""),
            405,
            "POST is not allowed on /api/apple",
        ),
        (
            lab.get("/api/predict"),
            405,
            "GET is not allowed on /api/predict",
        ),
        (
            lab.get("/api/apple?tax=NaN"),
            400,
            "tax=\"NaN\" is not a number",
        ),
        (
            lab.get("/api/apple?price=1"),
            400,
            "unknown value \"price\"",
        ),
        (
            predict("application/json", b"{\"pixels\": [1, 2, 3]}"),
            400,
            "3 pixel values; the net takes 784",
        ),
        (
            predict("application/json", b"{\"pixels\": [NaN]}"),
            400,
            "the body is not {\"pixels\": [numbers]}",
        ),
        (
            predict(
                "application/json",
                format!("{{\"pixels\": [{}]}}", ["300"; 784].join(",")).as_bytes(),
            ),
            400,
            "pixel 0 is 300, not in 0–255",
        ),
        (
            predict("application/json", b"[1, 2]"),
            400,
            "the body is not {\"pixels\": [numbers]}",
        ),
        (
            predict("text/plain", b"7"),
            415,
            "content type \"text/plain\"",
        ),
        (
            predict("image/png", b"not a png"),
            422,
            "not a readable PNG or JPEG image",
        ),
        (
            predict(
                "image/png",
                &std::fs::read("tests/corpus/image/huge.png").unwrap(),
            ),
            422,
            "larger than this command reads",
        ),
    ];
    for ((status, body), want, reason) in cases {
        assert_eq!(status, want, "{body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {body}"));
        assert!(
            error.contains(reason) && !error.contains('\n'),
            "{error:?} lacks {reason:?}"
        );
    }
    // A body over the limit is refused from its announced length, unread.
    let mut stream = TcpStream::connect(&lab.addr).unwrap();
    write!(stream, "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 9000000\r\n\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    // The server is still up.
    assert_eq!(lab.get("/api/apple").0, 200);
}

#[test]
fn beyond_loopback_it_warns_that_anyone_may_use_it() {
    let mut lab = Lab::start(&["--addr", "0.0.0.0:0"]);
    // Everything it says before its URL is written by then: stop it and read it all.
    let _ = lab.child.kill();
    let mut said = String::new();
    let mut stderr = lab.child.stderr.take().unwrap();
    stderr.read_to_string(&mut said).unwrap();
    assert!(
        said.contains("warning: listening on 0.0.0.0:")
            && said.contains("anyone who can reach this address can use the lab"),
        "{said}"
    );
}
