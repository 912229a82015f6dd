//! The book's `ch07/visualize_filter.py` (§7.6.1): the 30 first-layer filters of
//! SimpleConvNet before training (random) and after (edges and blobs), from `params.pkl` as
//! `ch07_train_convnet` saves it (the book's own `ch07/params.pkl` works too), drawn to
//! `filters.png`.
//!
//! `cargo run --release --example ch07_visualize_filter [PARAMS]`; for any model file:
//! `backprop visualize-filters --model FILE`.

use backprop::io::{LoadOptions, load_model};
use backprop::net::{Architecture, SimpleConvNet};
use backprop::plot::{first_layer_tiles, image_grid};

fn main() -> Result<(), backprop::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "params.pkl".into());
    let (mut trained, info) = load_model(path.as_ref(), LoadOptions::default())?;
    for assumed in &info.assumed {
        eprintln!("{path}: {assumed}");
    }
    let mut random =
        Architecture::SimpleConv(SimpleConvNet::new((1, 28, 28), 10)).build::<f32>(0)?;
    let filters = |net: &mut backprop::net::Sequential<f32>| {
        let w1 = net.params_mut().remove(0).param.value.to_owned();
        first_layer_tiles(w1.view(), (28, 28), 30)
    };
    let groups = vec![
        (
            "before training (random)".to_string(),
            filters(&mut random)?,
        ),
        (format!("after training ({path})"), filters(&mut trained)?),
    ];
    image_grid("filters.png".as_ref(), &groups, 10, 12)?;
    println!(
        "saved filters.png: {} filters before and after training",
        groups[1].1.len()
    );
    Ok(())
}
