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

    /// `method path` with `body` of `kind`: the status and the body as JSON (or text). Over
    /// HTTP/1.0, so that a large answer comes whole rather than in chunks.
    fn request(&self, method: &str, path: &str, kind: &str, body: &[u8]) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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

/// A model of the book's net trained by `backprop train` into `dir`.
fn trained_model(dir: &Path) -> std::path::PathBuf {
    trained(dir, "run", &["--iters", "600", "--eval-every", "600"])
}

/// The model `backprop train` with `flags` writes into `dir/name`.
fn trained(dir: &Path, name: &str, flags: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let run =
        common::backprop(&[&["train", "--quiet", "--out", out.to_str().unwrap()], flags].concat());
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

/// The values of a tensor the API sent in full.
fn values(tensor: &Value) -> Vec<f32> {
    tensor["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no values in {tensor}"))
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// `/api/trace` of test image 0 against the library: each layer's derivatives chain (what
/// leaves a layer arrives at the one before), the loss layer's `(y − t)/N`, and every
/// parameter gradient sent equals [`Sequential::gradient`]'s, bit for bit.
fn check_trace(lab: &Lab, net: &mut backprop::net::Sequential<f32>, body: &str) -> Value {
    let (status, trace) = lab.request("POST", "/api/trace", "application/json", body.as_bytes());
    assert_eq!(status, 200, "{trace}");
    let mnist = backprop::data::load(None, None).unwrap();
    assert_eq!(trace["label"], usize::from(mnist.test.labels[0]));
    let x = ndarray::Array2::from_shape_fn((1, 784), |(_, i)| {
        f32::from(mnist.test.images[[0, i]]) / 255.0
    });
    let t = backprop::functions::Targets::Indices(vec![usize::from(mnist.test.labels[0])]);
    let loss = net.gradient(x.view().into_dyn(), &t);
    assert_eq!(trace["loss"]["loss"].as_f64().unwrap() as f32, loss);
    let layers = trace["layers"].as_array().unwrap();
    assert_eq!(
        layers
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        net.layer_names()
    );
    let y = values(&trace["loss"]["probabilities"]);
    let dscores = values(&trace["loss"]["dscores"]);
    let label = usize::from(mnist.test.labels[0]);
    for (c, (d, p)) in dscores.iter().zip(&y).enumerate() {
        assert_eq!(*d, if c == label { p - 1.0 } else { *p }, "(y − t)/1");
    }
    assert_eq!(values(&layers.last().unwrap()["dout"]), dscores);
    for pair in layers.windows(2) {
        assert_eq!(pair[0]["y"]["shape"], pair[1]["x"]["shape"]);
        if pair[1]["dx"]["values"].is_array() {
            assert_eq!(values(&pair[0]["dout"]), values(&pair[1]["dx"]));
        }
    }
    let mut compared = 0;
    for (name, grad) in net.grads() {
        let sent = layers
            .iter()
            .flat_map(|l| l["params"].as_array().unwrap())
            .find(|p| p["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not sent"));
        assert_eq!(sent["grad"]["shape"], serde_json::json!(grad.shape()));
        if sent["grad"]["values"].is_array() {
            assert_eq!(
                values(&sent["grad"]),
                grad.iter().copied().collect::<Vec<_>>(),
                "{name}"
            );
            compared += 1;
        } else {
            let most = grad.iter().fold(0f32, |m, g| m.max(g.abs()));
            assert_eq!(
                sent["grad"]["max_abs"].as_f64().unwrap() as f32,
                most,
                "{name}"
            );
        }
    }
    assert!(compared >= 2, "compared {compared} gradients");
    trace
}

#[test]
fn a_trace_is_the_librarys_backprop_layer_by_layer() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let lab = Lab::start(&["--addr", "127.0.0.1:0", "--model", model.to_str().unwrap()]);
    let (mut net, _) = backprop::io::load_model(&model, Default::default()).unwrap();
    let trace = check_trace(&lab, &mut net, r#"{"image": 0}"#);
    let relu = &trace["layers"][1];
    let on = values(&relu["x"]).iter().filter(|&&x| x > 0.0).count();
    assert_eq!(relu["branches"]["taken"], on, "ReLU's mask is x > 0");
    // The rules themselves, computed here from what was sent: ReLU passes ∂L/∂y where x > 0,
    // Affine sends back ∂L/∂Y·Wᵀ.
    let relu_dx: Vec<f32> = values(&relu["x"])
        .iter()
        .zip(values(&relu["dout"]))
        .map(|(&x, d)| if x > 0.0 { d } else { 0.0 })
        .collect();
    assert_eq!(values(&relu["dx"]), relu_dx);
    let affine = &trace["layers"][2];
    let w = values(&affine["params"][0]["value"]);
    let (dout, dx) = (values(&affine["dout"]), values(&affine["dx"]));
    for (i, &got) in dx.iter().enumerate() {
        let want: f32 = dout
            .iter()
            .enumerate()
            .map(|(j, d)| d * w[i * dout.len() + j])
            .sum();
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
            "∂L/∂x[{i}]: {got} vs {want}"
        );
    }
    assert!(
        relu["formula"][0]
            .as_str()
            .unwrap()
            .starts_with("ReLU (§5.5.1)")
    );
    // A fresh TwoLayerNet instead of the model.
    let mut fresh = backprop::net::TwoLayerNet::new(784, 50, 10, 0.01, 3).into_inner();
    check_trace(&lab, &mut fresh, r#"{"image": 0, "fresh": 3}"#);
    let (status, image) = lab.get("/api/image?index=0");
    assert_eq!(status, 200);
    assert_eq!(image["label"], 7);
    for (body, reason) in [
        (r#"{"image": 10000}"#, "there is no test image 10000"),
        (r#"{"pixels": [0]}"#, "pixels need a \"label\""),
        (
            r#"{"pixels": [0], "label": 1}"#,
            "1 pixel values; the net takes 784",
        ),
        (
            r#"{"image": 0, "label": 10}"#,
            "label 10: the net has 10 classes",
        ),
        (r#"{}"#, "give \"image\""),
    ] {
        let (status, answer) =
            lab.request("POST", "/api/trace", "application/json", body.as_bytes());
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(reason),
            "{answer}"
        );
    }

    // SimpleConvNet: feature maps, and the Affine weights too large to send, summarised.
    let model = trained(
        dir.path(),
        "conv",
        &[
            "--model",
            "simple-conv",
            "--iters",
            "3",
            "--eval-every",
            "100",
        ],
    );
    let lab = Lab::start(&["--addr", "127.0.0.1:0", "--model", model.to_str().unwrap()]);
    let (mut net, _) = backprop::io::load_model(&model, Default::default()).unwrap();
    let trace = check_trace(&lab, &mut net, r#"{"image": 0}"#);
    assert_eq!(
        trace["layers"][0]["y"]["shape"],
        serde_json::json!([1, 30, 24, 24])
    );
    let (_, predicted) = lab.request(
        "POST",
        "/api/predict?layers",
        "application/json",
        serde_json::json!({ "pixels": vec![0; 784] })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        predicted["layers"].as_array().unwrap().len(),
        net.layer_names().len()
    );
}

#[test]
fn the_gradient_check_is_backprop_gradchecks() {
    let lab = Lab::start(&["--addr", "127.0.0.1:0"]);
    let (status, check) = lab.get("/api/gradcheck?net=784-20-10&seed=2&images=2");
    assert_eq!(status, 200, "{check}");
    let cli = common::backprop(&[
        "gradcheck",
        "--net",
        "784-20-10",
        "--seed",
        "2",
        "--images",
        "2",
        "--json",
    ]);
    let cli: Value = serde_json::from_str(&common::stdout(&cli)).unwrap();
    let entries = check["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        assert_eq!(entry["mean_abs_diff"], cli[name]["mean_abs_diff"], "{name}");
        for pair in entry["largest"].as_array().unwrap() {
            let (b, n) = (
                pair["backprop"].as_f64().unwrap(),
                pair["numerical"].as_f64().unwrap(),
            );
            assert!((b - n).abs() <= 1e-8 * b.abs().max(1e-6), "{name}: {pair}");
        }
    }
    for (query, status, reason) in [
        ("net=784-500-10", 422, "has 397510 parameters"),
        ("net=784-x", 400, "784-x"),
        ("bogus=1", 400, "unexpected argument '--bogus'"),
        ("net=100-10", 422, "100"),
        ("images=101", 422, "101 images: the lab checks on up to 100"),
    ] {
        let (got, answer) = lab.get(&format!("/api/gradcheck?{query}"));
        assert_eq!(got, status, "{query}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(reason) && !error.contains('\n'),
            "{query}: {error}"
        );
    }
}

/// A page following `/api/train/events`: its `data:` lines as JSON, one at a time.
struct Follower(BufReader<TcpStream>);

impl Follower {
    fn new(lab: &Lab) -> Follower {
        let mut stream = TcpStream::connect(&lab.addr).unwrap();
        // A hang guard: only a server that stopped answering gets near it.
        stream.set_read_timeout(Some(HANG)).unwrap();
        write!(stream, "GET /api/train/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        Follower(reader)
    }

    /// The next event.
    fn next(&mut self) -> Value {
        loop {
            let mut line = String::new();
            assert!(self.0.read_line(&mut line).unwrap() > 0, "the stream ended");
            if let Some(data) = line.strip_prefix("data: ") {
                return serde_json::from_str(data).unwrap();
            }
        }
    }

    /// Events up to the first of which `wanted` holds, that one included.
    fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let event = self.next();
            let done = wanted(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

/// Far above any wait in these tests: bounds a failure that would hang.
const HANG: std::time::Duration = std::time::Duration::from_secs(120);

/// Polls `holds` until it does, failing after [`HANG`].
fn wait_until(what: &str, holds: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !holds() {
        assert!(started.elapsed() < HANG, "waited in vain for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["type"] == "status" && e["status"] == status
}

#[test]
fn a_run_started_over_http_streams_to_its_followers_and_obeys_pause_resume_and_stop() {
    let lab = Lab::start(&["--addr", "127.0.0.1:0"]);
    let post =
        |path: &str, body: &str| lab.request("POST", path, "application/json", body.as_bytes());
    let mut follower = Follower::new(&lab);
    assert_eq!(follower.next()["status"], "idle");
    for (body, reason) in [
        (
            r#"{"data-dir": "/"}"#,
            "\"data-dir\" is not a setting of the lab's runs",
        ),
        (r#"{"lr": -1}"#, "-1 is not a positive number"),
        (r#"{"iters": 5000, "eval-every": 1}"#, "5000 evaluations"),
        (r#"{"net": "784-50-7"}"#, "7"),
        (r#"[1]"#, "not a JSON object"),
        (r#"{"iters": 2001, "eval-every": 2}"#, "1001 evaluations"),
        (r#"{"batch-norm": "--beta1=0.5"}"#, "batch-norm"),
    ] {
        let (status, answer) = post("/api/train", body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(reason),
            "{answer}"
        );
    }
    for (body, reason) in [
        (
            r#"{"net": "784-20000-1000-10"}"#,
            "parameters; the lab trains up to 10000000",
        ),
        (r#"{"iters": 2000000}"#, "2000000 iterations of batch 100"),
    ] {
        let (status, answer) = post("/api/train", body);
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(reason),
            "{answer}"
        );
    }
    assert_eq!(post("/api/train/pause", "").0, 409, "no run to pause");

    // A long run (it is stopped long before its end) with a picture of its weights.
    let (status, answer) = post(
        "/api/train",
        r#"{"iters": 200000, "eval-every": 100000, "net": "784-30-10"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let start = follower.until(|e| e["type"] == "start");
    assert_eq!(start.last().unwrap()["net"], "784-30-10");
    follower.until(|e| e["type"] == "weights");
    let (status, png) = lab.get("/api/train/weights.png");
    assert_eq!(status, 200);
    assert!(png.as_str().unwrap().contains("PNG"));
    assert_eq!(post("/api/train", "{}").0, 409, "one run at a time");

    // Followers that leave mid-stream are let go.
    let leaving: Vec<Follower> = (0..20).map(|_| Follower::new(&lab)).collect();
    let followers = || lab.get("/api/train").1["followers"].as_u64().unwrap();
    wait_until("21 followers", || followers() == 21);
    drop(leaving);
    let before = follower.until(|e| e["type"] == "loss");
    let last_iter = |events: &[Value]| {
        events
            .iter()
            .rev()
            .find(|e| e["type"] == "loss")
            .map(|e| e["iter"].as_u64().unwrap())
    };
    assert_eq!(post("/api/train/pause", "").0, 200);
    // The run says it is paused when it has finished its iteration and waits: nothing trains
    // from then until it is resumed.
    let pausing = follower.until(status_is("paused"));
    let paused_at = pausing.last().unwrap()["iter"].as_u64().unwrap();
    assert!(paused_at > last_iter(&before).unwrap());
    assert_eq!(lab.get("/api/train").1["status"], "paused");
    assert_eq!(post("/api/train/pause", "").0, 409, "paused already");
    assert_eq!(post("/api/train/resume", "").0, 200);
    let resumed = follower.until(|e| e["type"] == "loss");
    assert!(status_is("running")(&resumed[0]), "{resumed:?}");
    assert!(
        last_iter(&resumed).unwrap() >= paused_at,
        "training goes on from where it stood"
    );
    assert_eq!(post("/api/train/stop", "").0, 200);
    follower.until(status_is("stopped"));
    assert_eq!(lab.get("/api/train").1["status"], "stopped");
    // Each leaver is noticed at a write: the losses before the stop, then heartbeats.
    wait_until("the leavers to be let go", || followers() == 1);
}
