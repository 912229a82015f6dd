//! `backprop predict`: classify pictures of digits with a saved model.

use std::path::PathBuf;
use std::process::ExitCode;

use backprop::Error;
use backprop::io::PIXEL_NORMALISATION;
use backprop::layers::Mode;
use ndarray::Array2;

/// Flags of `backprop predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelFile,
    /// PNG or JPEG pictures: any size, dark-on-light or light-on-dark.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many of the most probable classes to show.
    #[arg(long, default_value_t = 3, value_parser = super::at_least_one)]
    top: usize,
}

pub fn run(args: &Args) -> super::Outcome {
    let (mut net, info) = args.model.load()?;
    if info.normalisation != PIXEL_NORMALISATION {
        return Err(Error::Model {
            path: args.model.path.clone(),
            what: format!(
                "normalisation {:?} is not supported; expected {PIXEL_NORMALISATION}",
                info.normalisation
            ),
        });
    }
    let (rows, cols) = info.input_shape.unwrap_or_else(|| {
        let side = (info.net.inputs() as f64).sqrt().round() as usize;
        (side, side)
    });
    if rows.checked_mul(cols) != Some(info.net.inputs()) {
        return Err(Error::Model {
            path: args.model.path.clone(),
            what: format!(
                "the net takes {} inputs, which is not an image of {rows}×{cols}",
                info.net.inputs()
            ),
        });
    }
    // Read every picture first: one bad file stops the command before any output.
    let mut x = Array2::<f32>::zeros((args.images.len(), rows * cols));
    for (mut row, path) in x.rows_mut().into_iter().zip(&args.images) {
        let pixels = backprop::data::digitize_file(path, rows, cols)?;
        row.iter_mut()
            .zip(pixels)
            .for_each(|(v, p)| *v = f32::from(p) / 255.0);
    }
    let scores = net.predict(x.view().into_dyn(), Mode::Eval);
    let probabilities = backprop::functions::softmax(scores.view());
    for (path, p) in args.images.iter().zip(probabilities.rows()) {
        let mut ranked: Vec<(usize, f32)> = p.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<String> = ranked
            .iter()
            .take(args.top)
            .map(|&(c, p)| format!("{} ({:.1}%)", info.class_names[c], 100.0 * p))
            .collect();
        println!("{}: {}", path.display(), top.join("  "));
    }
    Ok(ExitCode::SUCCESS)
}
