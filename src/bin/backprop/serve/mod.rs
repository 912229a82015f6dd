//! `backprop serve`: the lab, a local web server whose pages show backpropagation happen
//! (the apple graphs of §5.4 and a net on one image, stepped node by node; the gradient
//! check; a run trained live; a digit drawn, classified and explained), over a small JSON API
//! that scripts can use too (`api.rs`). Every page and asset is built into the binary
//! (`page/`): it works offline.

mod api;
mod explain;
mod live;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use backprop::Error;
use backprop::data::{Dataset, Known, Sampling};
use backprop::io::{LoadOptions, ModelInfo};
use backprop::net::{Activation, Architecture, MultiLayerNet, NetSpec, Sequential};
use backprop::optim::Sgd;
use backprop::train::{TrainConfig, Trainer, model_info};

/// Flags of `backprop serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model the pages use (a model or checkpoint of `backprop train`, the book's .pkl);
    /// default: the book's 784-50-10 net, trained at start for 2,000 iterations (seconds).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The hidden activation of a fully connected net whose file does not name it.
    #[arg(long)]
    activation: Option<Activation>,
    /// Where to listen. Loopback only by default; another address lets anyone who can reach
    /// it use the lab.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Threads answering requests (each page following a training run has one of its own).
    #[arg(long, default_value_t = 4, value_parser = super::at_least_one)]
    workers: usize,
    /// Data set of the pictures, the gradient check and the runs: mnist (built in) or
    /// fashion-mnist [default: the model's].
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels; .gz, .xz or not compressed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// What every request may use: the net (each worker answers with its own copy) and what it
/// takes, the data, the live run.
#[derive(Debug)]
pub struct Lab {
    net: Sequential<f32>,
    info: ModelInfo,
    /// The image shape the net takes.
    shape: (usize, usize),
    data: Dataset,
    live: live::Live,
}

pub fn run(args: &Args) -> super::Outcome {
    let (mut net, info, data) = match &args.model {
        Some(path) => {
            let options = LoadOptions {
                activation: args.activation,
                ..LoadOptions::default()
            };
            let (net, info) = super::load_model_saying(path, options)?;
            let known = match (args.dataset, &info.dataset) {
                (None, Some(name)) => match name.parse::<Known>() {
                    Ok(known) => Some(known),
                    Err(_) if args.data_dir.is_some() => None,
                    Err(_) => {
                        return Err(Error::Invalid(format!(
                            "{}: the model was trained on {name:?}: give its images with --data-dir",
                            path.display()
                        )));
                    }
                },
                (given, _) => given,
            };
            let data = backprop::data::load(known, args.data_dir.as_deref())?;
            (net, info, data)
        }
        None => {
            let data = backprop::data::load(args.dataset, args.data_dir.as_deref())?;
            let (net, info) = book_net(&data)?;
            (net, info, data)
        }
    };
    let shape = image_shape(&info)
        .ok_or_else(|| Error::Invalid(format!("the net {} does not take images", info.net)))?;
    backprop::train::check_fits(&mut net, &data)?;
    let lab = Arc::new(Lab {
        net,
        info,
        shape,
        data,
        live: live::Live::default(),
    });
    let server = tiny_http::Server::http(args.addr)
        .map_err(|e| Error::Invalid(format!("cannot listen on {}: {e}", args.addr)))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Invalid("the server has no IP address".into()))?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {addr}: anyone who can reach this address can use the lab"
        );
    }
    println!("backprop lab at http://{addr}/ (Ctrl-C stops it)");
    let server = Arc::new(server);
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let (server, lab) = (server.clone(), lab.clone());
            std::thread::spawn(move || {
                let mut net = lab.net.clone();
                while let Ok(request) = server.recv() {
                    // A bug met by one request costs that request (its connection closes),
                    // not the worker; the net is copied afresh after it.
                    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        api::answer(request, &lab, &mut net)
                    }));
                    if answered.is_err() {
                        net = lab.net.clone();
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(ExitCode::SUCCESS)
}

/// The image shape a net takes: from its file, else the square of its inputs.
fn image_shape(info: &ModelInfo) -> Option<(usize, usize)> {
    let inputs = info.net.inputs();
    let (rows, cols) = info.input_shape.unwrap_or_else(|| {
        let side = (inputs as f64).sqrt().round() as usize;
        (side, side)
    });
    (rows.checked_mul(cols) == Some(inputs)).then_some((rows, cols))
}

/// The book's net (784-50-10, ReLU, SGD 0.1, batch 100) trained on `data` for 2,000
/// iterations, seed 0: what the pages show when no model is given.
fn book_net(data: &Dataset) -> Result<(Sequential<f32>, ModelInfo), Error> {
    const ITERS: usize = 2_000;
    eprintln!(
        "no --model: training the book's 784-50-10 net for {ITERS} iterations on {}",
        data.name
    );
    let arch = Architecture::Mlp(MultiLayerNet::new(NetSpec::book()));
    let config = TrainConfig {
        iters: ITERS,
        eval_every: None,
        sampling: Sampling::WithReplacement,
        ..TrainConfig::book(data.train.len())
    };
    let mut trainer = Trainer::new(arch.build(0)?, Sgd::new(0.1), data, config)?;
    trainer.run(|_| {})?;
    let info = model_info(&arch, data);
    Ok((trainer.net, info))
}
