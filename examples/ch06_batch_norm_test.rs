//! The book's `ch06/batch_norm_test.py` (§6.3.2): a 784-100-100-100-100-100-10 net on 1,000
//! MNIST images, trained 20 epochs with SGD 0.01 from 16 weight scales between 1 and 10⁻⁴,
//! with and without batch normalisation. Prints the training accuracy after the last epoch:
//! with batch norm the net learns from almost every scale, without it from few.
//!
//! `cargo run --release --example ch06_batch_norm_test`; with the plot:
//! `backprop experiment batch-norm`.

use backprop::experiments::{compare_batch_norm, weight_scales};

fn main() -> Result<(), backprop::Error> {
    let mnist = backprop::data::load(None, None)?.subset(1000, 0);
    let scales = weight_scales(16);
    let runs = compare_batch_norm(&mnist, &scales, &[100; 5], 20, 0)?;
    for (i, run) in runs.iter().enumerate() {
        println!("============== {}/16 ==============", i + 1);
        // A run whose loss became NaN is said so (the book's would print chance accuracy).
        let last = |accuracies: &[f64]| match accuracies.last() {
            Some(a) if a.is_finite() => format!("{a:.3}"),
            _ => "diverged".into(),
        };
        println!(
            "weight std {:.6}: train acc {} - with batch norm {}",
            run.weight_std,
            last(&run.plain),
            last(&run.batch_norm)
        );
    }
    Ok(())
}
