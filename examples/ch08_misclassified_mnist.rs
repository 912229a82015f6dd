//! The book's `ch08/misclassified_mnist.py` (§8.1.1): DeepConvNet's test accuracy from
//! `deep_convnet_params.pkl` (as `ch08_train_deepnet` saves it, or the book's own file), and
//! the first 20 test images it gets wrong, drawn with their labels to `misclassified.png`.
//!
//! `cargo run --release --example ch08_misclassified_mnist [PARAMS]`; for any model file:
//! `backprop misclassified --model FILE`.

use backprop::io::{LoadOptions, load_model};
use backprop::plot::{Tile, image_grid};
use backprop::train::predictions;

fn main() -> Result<(), backprop::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "deep_convnet_params.pkl".into());
    let mnist = backprop::data::load(None, None)?;
    let (mut network, info) = load_model(path.as_ref(), LoadOptions::default())?;
    for assumed in &info.assumed {
        eprintln!("{path}: {assumed}");
    }
    println!("calculating test accuracy ... ");
    let predicted = predictions(&mut network, &mnist.test);
    let labels: Vec<usize> = mnist.test.labels.iter().map(|&t| usize::from(t)).collect();
    let wrong: Vec<usize> = (0..labels.len())
        .filter(|&i| predicted[i] != labels[i])
        .collect();
    println!(
        "test accuracy:{}",
        1.0 - wrong.len() as f64 / labels.len() as f64
    );

    println!("======= misclassified result =======");
    println!("{{view index: (label, inference), ...}}");
    let mut tiles = Vec::new();
    for (view, &i) in wrong.iter().take(20).enumerate() {
        println!("{}: ({}, {})", view + 1, labels[i], predicted[i]);
        let image = mnist.test.images.row(i);
        let pixels =
            ndarray::Array2::from_shape_fn((28, 28), |(r, c)| f64::from(image[r * 28 + c]) / 255.0);
        tiles.push(Tile {
            caption: format!("{}: {} → {}", view + 1, labels[i], predicted[i]),
            pixels,
        });
    }
    image_grid(
        "misclassified.png".as_ref(),
        &[("misclassified (label → inference)".into(), tiles)],
        5,
        3,
    )?;
    println!("saved misclassified.png");
    Ok(())
}
