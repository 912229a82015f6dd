//! `backprop visualize-filters` and `backprop misclassified`: seeing what a net learned
//! (§7.6.1, §8.1.1).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backprop::Error;
use backprop::data::Known;
use backprop::net::Architecture;
use backprop::plot::{Tile, first_layer_tiles, image_grid};

/// Flags of `backprop visualize-filters`.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    #[command(flatten)]
    model: super::ModelFile,
    /// The PNG to write (default: filters.png next to the model).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the untrained net drawn for comparison.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// At most this many filters (units for fully connected nets).
    #[arg(long, default_value_t = 100, value_parser = super::at_least_one)]
    count: usize,
}

/// Flags of `backprop misclassified`.
#[derive(Debug, clap::Args)]
pub struct MisclassifiedArgs {
    #[command(flatten)]
    model: super::ModelFile,
    /// How many misclassified test images to show.
    #[arg(long, default_value_t = 20, value_parser = super::at_least_one)]
    count: usize,
    /// The PNG to write (default: misclassified.png next to the model).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Data set (default: the one the model was trained on, else mnist).
    #[arg(long)]
    dataset: Option<Known>,
    /// A folder with the four IDX files (train/t10k images/labels; .gz, .xz or not compressed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// A caption for a model a reader recognises: its net and test accuracy, else its file name
/// (never a folder of the machine it was made on).
fn described(info: &backprop::io::ModelInfo, model: &Path) -> String {
    let net = match &info.net {
        Architecture::Mlp(mlp) => format!("MLP {}", mlp.sizes),
        Architecture::SimpleConv(_) => "SimpleConvNet".into(),
        Architecture::DeepConv(_) => "DeepConvNet".into(),
    };
    let at = info
        .checkpoint
        .map(|c| format!(" at iteration {}", c.iteration))
        .unwrap_or_default();
    match info.test_accuracy {
        Some(accuracy) => format!("{net}{at}, {:.2}% test accuracy", 100.0 * accuracy),
        None => {
            let file = model.file_name().unwrap_or(model.as_os_str());
            format!("{net}{at} ({})", file.to_string_lossy())
        }
    }
}

/// `dir/name` next to `model`, unless `out` is given.
fn output(out: &Option<PathBuf>, model: &Path, name: &str) -> PathBuf {
    out.clone().unwrap_or_else(|| {
        model
            .parent()
            .map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
    })
}

pub fn filters(args: &FilterArgs) -> super::Outcome {
    let (mut trained, info) = args.model.load()?;
    let image = info.input_shape.unwrap_or((28, 28));
    let mut untrained = info.net.build::<f32>(args.seed)?;
    let tiles = |net: &mut backprop::net::Sequential<f32>| -> Result<Vec<Tile>, Error> {
        let params = net.params_mut();
        let w1 = params
            .first()
            .ok_or_else(|| Error::Invalid("the model has no parameters".into()))?;
        first_layer_tiles(w1.param.value.view(), image, args.count)
    };
    let groups = vec![
        (
            format!("before training (random, seed {})", args.seed),
            tiles(&mut untrained)?,
        ),
        (
            format!("after training: {}", described(&info, &args.model.path)),
            tiles(&mut trained)?,
        ),
    ];
    let columns = groups[0].1.len().min(10);
    let side = groups[0].1.first().map_or(1, |t| t.pixels.nrows().max(1));
    let path = output(&args.out, &args.model.path, "filters.png");
    image_grid(&path, &groups, columns, (60 / side as u32).clamp(2, 12))?;
    println!(
        "{} first-layer filters of {} ({})",
        groups[1].1.len(),
        args.model.path.display(),
        info.net.layout()
    );
    eprintln!("saved {}", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn misclassified(args: &MisclassifiedArgs) -> super::Outcome {
    let (mut net, mut info, data) =
        super::eval::model_and_data(&args.model, args.dataset, args.data_dir.as_deref())?;
    let predicted = backprop::train::predictions(&mut net, &data.test);
    let wrong: Vec<(usize, usize, usize)> = predicted
        .iter()
        .zip(&data.test.labels)
        .enumerate()
        .filter(|(_, (p, t))| **p != usize::from(**t))
        .map(|(i, (&p, &t))| (i, usize::from(t), p))
        .collect();
    println!(
        "{} of {} {} test images misclassified; the first {}:",
        wrong.len(),
        data.test.len(),
        data.name,
        wrong.len().min(args.count)
    );
    let name = |c: usize| data.class_names.get(c).map_or("?", String::as_str);
    let tiles: Vec<Tile> = wrong
        .iter()
        .take(args.count)
        .map(|&(i, t, p)| {
            println!("  image {i:>5}: true {}, predicted {}", name(t), name(p));
            let image = data.test.images.row(i);
            let cols = data.test.cols;
            let pixels = ndarray::Array2::from_shape_fn((data.test.rows, cols), |(r, c)| {
                f64::from(image[r * cols + c]) / 255.0
            });
            Tile {
                caption: format!("t:{} p:{}", name(t), name(p)),
                pixels,
            }
        })
        .collect();
    let path = output(&args.out, &args.model.path, "misclassified.png");
    info.test_accuracy = Some(1.0 - wrong.len() as f64 / data.test.len().max(1) as f64);
    let heading = format!("misclassified by {}", described(&info, &args.model.path));
    image_grid(&path, &[(heading, tiles)], 5, 3)?;
    eprintln!("saved {}", path.display());
    Ok(ExitCode::SUCCESS)
}
