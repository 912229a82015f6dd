//! Live training from the lab: a run started from the page's form (the flags of `backprop
//! train`, on the lab's data), its losses, accuracies and first-layer weights streamed to every
//! page that follows it as server-sent events, and paused, resumed or stopped from any of them.
//!
//! Memory stays bounded however long a run is and however many follow it: a run has at most
//! [`MOST_ITERS`] iterations of at most [`MOST_BATCH`] examples on a net of at most
//! [`MOST_PARAMS`] parameters; it keeps at most [`MOST_POINTS`] loss points (means of
//! consecutive iterations), [`MOST_EVALUATIONS`] evaluations, [`MOST_CONTROLS`] pauses, resumes
//! and stops, and its latest weight picture; each follower is a thread holding only its place
//! in that list, at most [`MOST_FOLLOWERS`] of them. A follower that has gone away is noticed
//! at a write (the second after it left; a heartbeat every [`HEARTBEAT`] when nothing happens)
//! and costs nothing more. A panic in training fails the run.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use backprop::Error;
use backprop::plot::{first_layer_tiles, grey_mosaic_png};
use backprop::train::Event;
use serde_json::{Value, json};

use super::Lab;
use super::api::{Refusal, refuse};
use crate::train;

/// The most loss points a run keeps and streams.
pub const MOST_POINTS: usize = 1_000;
/// The most evaluations a run from the lab may make (each reads both whole splits).
pub const MOST_EVALUATIONS: usize = 1_000;
/// The most iterations a run from the lab may have (it keeps 8 bytes of loss per iteration).
pub const MOST_ITERS: usize = 1_000_000;
/// The most parameters a net trained from the lab may have.
pub const MOST_PARAMS: usize = 10_000_000;
/// The most examples in a lab run's batch.
pub const MOST_BATCH: usize = 1_000;
/// The most pauses, resumes and stops a run takes (each is an event every follower gets).
pub const MOST_CONTROLS: usize = 1_000;
/// The most pages following at once.
pub const MOST_FOLLOWERS: usize = 256;
/// How often a follower is written to when nothing happens, so that one that has gone away is
/// noticed.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Weight pictures per run.
const PICTURES: usize = 50;
/// The flags of `backprop train` the page's form may set; the data, files and threads are
/// the lab's.
const FORM_FLAGS: [&str; 17] = [
    "model",
    "net",
    "activation",
    "init",
    "batch-norm",
    "dropout",
    "optimizer",
    "lr",
    "momentum",
    "weight-decay",
    "batch",
    "iters",
    "epochs",
    "eval-every",
    "sampling",
    "seed",
    "shards",
];

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    /// No run yet.
    Idle,
    Running,
    Paused,
    /// Asked to stop; stops before its next iteration.
    Stopping,
    Stopped,
    Finished,
    Failed(String),
}

impl Status {
    fn name(&self) -> &str {
        match self {
            Status::Idle => "idle",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Finished => "finished",
            Status::Failed(_) => "failed",
        }
    }

    fn in_progress(&self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Stopping)
    }
}

/// The lab's run and its followers.
#[derive(Debug)]
pub struct Live {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    /// The run's number, from 1; 0 before the first.
    run: u64,
    status: Status,
    /// The run's events as JSON, in order.
    events: Vec<String>,
    /// The latest picture of the first layer's weights (PNG).
    weights: Option<Arc<Vec<u8>>>,
    followers: usize,
    /// Pauses, resumes and stops of this run so far.
    controls: usize,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            state: Mutex::new(State {
                run: 0,
                status: Status::Idle,
                events: Vec::new(),
                weights: None,
                followers: 0,
                controls: 0,
            }),
            changed: Condvar::new(),
        }
    }
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, event: Value) {
        self.lock().events.push(event.to_string());
        self.changed.notify_all();
    }

    fn set_status(&self, state: &mut State, status: Status) {
        state.status = status;
        let mut event = json!({ "type": "status", "status": state.status.name() });
        if let Status::Failed(why) = &state.status {
            event["error"] = why.as_str().into();
        }
        state.events.push(event.to_string());
        self.changed.notify_all();
    }

    /// `GET /api/train`: the run's number and status.
    pub fn summary(&self) -> Value {
        let state = self.lock();
        json!({
            "run": state.run,
            "status": state.status.name(),
            "events": state.events.len(),
            "followers": state.followers,
        })
    }

    /// `GET /api/train/weights.png`.
    pub fn weights(&self) -> Option<Arc<Vec<u8>>> {
        self.lock().weights.clone()
    }

    /// `POST /api/train/pause`, `resume`, `stop`. A pause is announced by the run itself, when
    /// it has finished its iteration and waits.
    pub fn control(&self, action: &str) -> Result<Value, Refusal> {
        let mut state = self.lock();
        if state.controls >= MOST_CONTROLS {
            return Err(refuse(
                429,
                format!(
                    "run {} has been paused, resumed or stopped {MOST_CONTROLS} times: stop sending controls",
                    state.run
                ),
            ));
        }
        let next = match (action, &state.status) {
            ("pause", Status::Running) => Status::Paused,
            ("resume", Status::Paused) => Status::Running,
            ("stop", Status::Running | Status::Paused) => Status::Stopping,
            (_, status) => {
                return Err(refuse(
                    409,
                    format!("cannot {action} a run that is {}", status.name()),
                ));
            }
        };
        state.controls += 1;
        if next == Status::Paused {
            state.status = next;
        } else {
            self.set_status(&mut state, next);
        }
        drop(state);
        Ok(self.summary())
    }

    /// Before iteration `iter`: waits while the run is paused (saying so once), then whether
    /// it goes on.
    fn go_on(&self, iter: usize) -> bool {
        let mut state = self.lock();
        if state.status == Status::Paused {
            let event = json!({ "type": "status", "status": "paused", "iter": iter });
            state.events.push(event.to_string());
            self.changed.notify_all();
        }
        while state.status == Status::Paused {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.status == Status::Running
    }
}

/// `POST /api/train`: starts a run with the form's `{"flag": value}` (see [`FORM_FLAGS`]).
pub fn start(lab: &Arc<Lab>, body: &[u8]) -> Result<Value, Refusal> {
    let args = form_args(body)?;
    // Checked before the run is announced, so that a bad form gets its 4xx.
    let (settings, start) =
        train::fresh_settings(&args, &lab.data).map_err(|e| refuse(400, e.to_string()))?;
    let params = settings.net.param_count().unwrap_or(usize::MAX);
    if params > MOST_PARAMS {
        return Err(refuse(
            422,
            format!(
                "the net has {params} parameters; the lab trains up to {MOST_PARAMS}: use `backprop train`"
            ),
        ));
    }
    let trainer = train::trainer(&args, &lab.data, &settings, start)
        .map_err(|e| refuse(400, e.to_string()))?;
    let config = *trainer.config();
    if config.iters > MOST_ITERS || config.batch > MOST_BATCH {
        return Err(refuse(
            422,
            format!(
                "{} iterations of batch {}: the lab's runs have up to {MOST_ITERS} iterations of up to {MOST_BATCH} examples; use `backprop train`",
                config.iters, config.batch
            ),
        ));
    }
    // Evaluations after iterations 0, every, 2·every, …
    let evaluations = config
        .eval_every
        .map_or(0, |every| config.iters.div_ceil(every));
    if evaluations > MOST_EVALUATIONS {
        return Err(refuse(
            400,
            format!(
                "{evaluations} evaluations: the lab's runs evaluate at most {MOST_EVALUATIONS} times; raise eval-every"
            ),
        ));
    }
    drop(trainer);
    let run = {
        let mut state = lab.live.lock();
        if state.status.in_progress() {
            return Err(refuse(
                409,
                format!(
                    "run {} is {}: stop it first",
                    state.run,
                    state.status.name()
                ),
            ));
        }
        state.run += 1;
        state.events.clear();
        state.weights = None;
        state.controls = 0;
        let announced = json!({
                "type": "start",
                "run": state.run,
                "net": settings.net.layout(),
                "optimizer": settings.optimizer.to_string(),
                "iters": config.iters,
                "batch": config.batch,
                "eval_every": config.eval_every,
        });
        state.events.push(announced.to_string());
        lab.live.set_status(&mut state, Status::Running);
        state.run
    };
    let lab = lab.clone();
    std::thread::spawn(move || {
        // A panic in training fails the run instead of leaving it running for ever.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| train_run(&lab, &args)));
        let mut state = lab.live.lock();
        let status = match outcome {
            Err(_) => Status::Failed("training panicked (a bug: please report it)".into()),
            Ok(Err(e)) => Status::Failed(e.to_string()),
            Ok(Ok(())) if state.status == Status::Stopping => Status::Stopped,
            Ok(Ok(())) => Status::Finished,
        };
        lab.live.set_status(&mut state, status);
    });
    Ok(json!({ "run": run, "status": "running" }))
}

/// The flags of `backprop train` from the form's JSON object.
fn form_args(body: &[u8]) -> Result<train::Args, Refusal> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        args: train::Args,
    }
    let form: serde_json::Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        refuse(
            400,
            format!("the body is not a JSON object of train flags: {e}"),
        )
    })?;
    let mut flags = vec!["train".to_string(), "--quiet".to_string()];
    for (key, value) in &form {
        if !FORM_FLAGS.contains(&key.as_str()) {
            return Err(refuse(
                400,
                format!(
                    "{key:?} is not a setting of the lab's runs: {}",
                    FORM_FLAGS.join(", ")
                ),
            ));
        }
        match value {
            Value::Bool(false) | Value::Null => {}
            Value::Bool(true) => flags.push(format!("--{key}")),
            Value::String(text) if text.is_empty() => {}
            // One argument each: a value is never read as a flag of its own.
            Value::String(text) => flags.push(format!("--{key}={text}")),
            Value::Number(n) => flags.push(format!("--{key}={n}")),
            _ => {
                return Err(refuse(
                    400,
                    format!("{key}: give a number, a string or true/false"),
                ));
            }
        }
    }
    <Flags as clap::Parser>::try_parse_from(flags)
        .map(|f| f.args)
        .map_err(|e| refuse(400, super::api::clap_line(&e)))
}

/// Trains the run, publishing as it goes, until it ends or is stopped.
fn train_run(lab: &Lab, args: &train::Args) -> Result<(), Error> {
    let data = &lab.data;
    let (settings, start) = train::fresh_settings(args, data)?;
    let mut trainer = train::trainer(args, data, &settings, start)?;
    let iters = trainer.config().iters;
    let per_point = iters.div_ceil(MOST_POINTS);
    let per_picture = iters.div_ceil(PICTURES);
    let image = (data.train.rows, data.train.cols);
    publish_weights(lab, &mut trainer.net, image, 0);
    let mut sum = (0.0, 0);
    while trainer.iteration() < iters && lab.live.go_on(trainer.iteration()) {
        trainer.run_until(trainer.iteration() + 1, |event| match event {
            Event::Step { iter, loss } => {
                sum = (sum.0 + loss, sum.1 + 1);
                if (iter + 1) % per_point == 0 || iter + 1 == iters {
                    let mean = sum.0 / f64::from(sum.1);
                    lab.live
                        .publish(json!({ "type": "loss", "iter": iter, "loss": mean }));
                    sum = (0.0, 0);
                }
            }
            Event::Evaluated(record) => {
                let mut event = json!(record);
                event["type"] = "eval".into();
                lab.live.publish(event);
            }
            Event::Weights(_) => {}
        })?;
        let done = trainer.iteration();
        if done % per_picture == 0 || done == iters {
            publish_weights(lab, &mut trainer.net, image, done);
        }
    }
    Ok(())
}

/// Draws the first layer's weights (as `backprop visualize filters`) and tells the followers.
fn publish_weights(
    lab: &Lab,
    net: &mut backprop::net::Sequential<f32>,
    image: (usize, usize),
    iter: usize,
) {
    let picture = net
        .params_mut()
        .into_iter()
        .next()
        .and_then(|p| first_layer_tiles(p.param.value.view(), image, 100).ok())
        .and_then(|tiles| grey_mosaic_png(&tiles, 10, 2).ok());
    if let Some((png, _)) = picture {
        lab.live.lock().weights = Some(Arc::new(png));
        lab.live.publish(json!({ "type": "weights", "iter": iter }));
    }
}

/// `GET /api/train/events`: follows the run as server-sent events (`data: {json}` each), from
/// its start, into the runs after it, until the page goes away.
pub fn follow(request: tiny_http::Request, lab: &Arc<Lab>) {
    let live = &lab.live;
    {
        let mut state = live.lock();
        if state.followers >= MOST_FOLLOWERS {
            drop(state);
            let refusal = json!({ "error": format!("{MOST_FOLLOWERS} pages follow the run already; close one") });
            let _ = request.respond(super::api::json_reply(&refusal).with_status_code(503));
            return;
        }
        state.followers += 1;
    }
    let mut writer = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    let mut seen = (u64::MAX, 0); // (run, events sent)
    let mut ok = writer.write_all(head.as_bytes()).is_ok();
    while ok {
        let mut text = String::new();
        {
            let mut state = live.lock();
            loop {
                if state.run != seen.0 {
                    text += &format!(
                        "data: {}\n\n",
                        json!({ "type": "run", "run": state.run, "status": state.status.name() })
                    );
                    seen = (state.run, 0);
                }
                if state.events.len() > seen.1 {
                    for event in &state.events[seen.1..] {
                        text += &format!("data: {event}\n\n");
                    }
                    seen.1 = state.events.len();
                }
                if !text.is_empty() {
                    break;
                }
                let (next, waited) = live
                    .changed
                    .wait_timeout(state, HEARTBEAT)
                    .unwrap_or_else(|e| e.into_inner());
                state = next;
                if waited.timed_out() {
                    text += ": heartbeat\n\n";
                }
            }
        }
        ok = writer.write_all(text.as_bytes()).is_ok() && writer.flush().is_ok();
    }
    live.lock().followers -= 1;
}
