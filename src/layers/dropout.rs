//! Dropout (§6.4.3): in training, each unit is kept with probability `1 − r`, a fresh mask
//! per forward pass; in inference, every unit is kept and scaled by `1 − r`.
//!
//! ```text
//! forward (train)  mask = [u > r],  u ~ U[0, 1) per unit     y = x ⊙ mask
//! forward (eval)   y = x · (1 − r)
//! backward         ∂L/∂x = ∂L/∂y ⊙ mask
//! ```
//!
//! This is the book's form, which scales at inference; "inverted" dropout (PyTorch's)
//! scales by `1/(1 − r)` in training instead, with the same expected output. Any shape.
//!
//! The draws `u` of example `n` of training pass `p` are those of the layer's seeded ChaCha8
//! generator on stream `p`, from position `n × units`: a mask is keyed by (seed, pass,
//! example), so it is the same whether the batch ran whole or cut into shards on other
//! threads or machines, and a checkpoint need only remember the pass.
//!
//! ```
//! use backprop::layers::{Dropout, Layer, Mode};
//! use ndarray::array;
//! let mut dropout = Dropout::new(0.5, 7);
//! let y = dropout.forward(array![[2.0, 2.0]].into_dyn(), Mode::Eval);
//! assert_eq!(y, array![[1.0, 1.0]].into_dyn());
//! ```

use ndarray::{ArrayD, NdFloat, Zip};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{BatchPosition, Layer, Mode, cached, check_dout_shape};
use crate::machinery::scratch::reuse;

/// Dropout with ratio `r`, the probability of dropping a unit.
#[derive(Debug, Clone)]
pub struct Dropout {
    /// The dropout ratio `r` in `[0, 1)`.
    ratio: f64,
    /// Draws the masks, on the stream of the pass and from the position of the example.
    rng: ChaCha8Rng,
    /// The pass and first example of the next training forward pass.
    position: BatchPosition,
    /// `mask` of the last training forward pass, shape of `x`.
    mask: Option<ArrayD<bool>>,
}

impl Dropout {
    /// Dropout with ratio `ratio`, its masks drawn from a ChaCha8 RNG seeded with `seed`.
    ///
    /// # Panics
    /// When `ratio` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(ratio: f64, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&ratio),
            "Dropout::new: the ratio {ratio} is not in [0, 1)"
        );
        Dropout {
            ratio,
            rng: ChaCha8Rng::seed_from_u64(seed),
            position: BatchPosition::default(),
            mask: None,
        }
    }

    /// The dropout ratio `r`.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }
}

impl<A: NdFloat> Layer<A> for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    /// Train: `mask = [u > r]`, `y = x ⊙ mask`; eval: `y = x · (1 − r)`
    fn forward(&mut self, mut x: ArrayD<A>, mode: Mode) -> ArrayD<A> {
        if mode == Mode::Eval {
            let scale = A::from(1.0 - self.ratio).expect("a ratio fits the float type");
            return x.mapv_into(|v| v * scale);
        }
        let mut mask = reuse(&mut self.mask, x.raw_dim(), false);
        let units = x.len() / x.shape()[0].max(1);
        let BatchPosition {
            pass,
            first_example,
        } = self.position;
        self.rng.set_stream(pass);
        for (n, (mut x, mut mask)) in x.outer_iter_mut().zip(mask.outer_iter_mut()).enumerate() {
            // Each `u` is one 64-bit draw: two 32-bit words of the stream.
            self.rng
                .set_word_pos(2 * ((first_example + n) * units) as u128);
            Zip::from(&mut x).and(&mut mask).for_each(|v, keep| {
                *keep = self.rng.random::<f64>() > self.ratio;
                *v = if *keep { *v } else { A::zero() };
            });
        }
        self.mask = Some(mask);
        // Used alone, the next pass draws a new mask; in a net, the net says which pass.
        self.position.pass += 1;
        x
    }

    /// `∂L/∂x = ∂L/∂y ⊙ mask`
    #[track_caller]
    fn backward(&mut self, mut dout: ArrayD<A>) -> ArrayD<A> {
        let mask = cached(&self.mask, "Dropout");
        check_dout_shape("Dropout", mask.shape(), dout.shape());
        Zip::from(&mut dout).and(mask).for_each(|d, &keep| {
            if !keep {
                *d = A::zero();
            }
        });
        dout
    }

    fn rng_mut(&mut self) -> Option<&mut ChaCha8Rng> {
        Some(&mut self.rng)
    }

    fn set_position(&mut self, position: BatchPosition) {
        self.position = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;

    #[test]
    fn drops_about_the_ratio_and_passes_gradients_only_where_kept() {
        let mut dropout = Dropout::new(0.3, 1);
        let x = ArrayD::<f64>::ones(vec![100, 100]);
        let y = dropout.forward(x, Mode::Train);
        let kept = y.iter().filter(|&&v| v == 1.0).count();
        // 10,000 Bernoulli(0.7) draws: mean 7,000, standard deviation ≈ 46.
        assert!((6_800..7_200).contains(&kept), "{kept} kept");
        let dx = dropout.backward(ArrayD::from_elem(vec![100, 100], 2.0));
        assert!(dx.iter().zip(&y).all(|(&d, &v)| d == 2.0 * v));
    }

    #[test]
    fn the_same_seed_gives_the_same_masks_and_a_new_pass_a_new_mask() {
        let x = ArrayD::<f32>::ones(vec![4, 25]);
        let mut a = Dropout::new(0.5, 9);
        let mut b = Dropout::new(0.5, 9);
        let first = a.forward(x.clone(), Mode::Train);
        assert_eq!(first, b.forward(x.clone(), Mode::Train));
        assert_ne!(first, a.forward(x, Mode::Train));
    }

    #[test]
    fn an_example_gets_the_same_mask_in_a_whole_batch_as_in_a_shard() {
        let x = ArrayD::<f32>::ones(vec![6, 3, 5]);
        let mut whole = Dropout::new(0.5, 4);
        let at = |pass, first_example| BatchPosition {
            pass,
            first_example,
        };
        Layer::<f32>::set_position(&mut whole, at(7, 0));
        let y = whole.forward(x.clone(), Mode::Train);
        let mut shard = Dropout::new(0.5, 4);
        Layer::<f32>::set_position(&mut shard, at(7, 4));
        let tail = shard.forward(
            x.slice(ndarray::s![4.., .., ..]).to_owned().into_dyn(),
            Mode::Train,
        );
        assert_eq!(tail, y.slice(ndarray::s![4.., .., ..]).into_dyn());
        // Another pass, another mask.
        Layer::<f32>::set_position(&mut shard, at(8, 4));
        assert_ne!(
            shard.forward(
                x.slice(ndarray::s![4.., .., ..]).to_owned().into_dyn(),
                Mode::Train
            ),
            tail
        );
    }

    #[test]
    fn gradient_matches_finite_differences_with_the_mask_held() {
        check_layer(&mut Dropout::new(0.5, 3), &test_input::<f64>(&[4, 6], 5), 6)
            .assert_below(1e-6);
    }
}
