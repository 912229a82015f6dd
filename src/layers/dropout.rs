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

use ndarray::{ArrayD, ArrayView, NdFloat, Zip};
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
    /// The 64-bit draws of one example, filled from the stream in one call.
    draws: Vec<u64>,
}

/// `u > r` for `u` = `rand`'s uniform f64 of a 64-bit draw, asked of the draw as an integer.
///
/// `rand` makes `u = k · 2⁻⁵³` from the draw's top 53 bits `k`, so `u > r` exactly when
/// `k > ⌊r · 2⁵³⌋` (`r · 2⁵³` is exact: a power-of-two scaling). Same masks as drawing
/// `u` one by one, at a fraction of the cost.
#[derive(Debug, Clone, Copy)]
struct KeepAbove(u64);

impl KeepAbove {
    fn ratio(r: f64) -> Self {
        KeepAbove((r * (1u64 << 53) as f64).floor() as u64)
    }

    fn keeps(self, draw: u64) -> bool {
        draw >> 11 > self.0
    }
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
            draws: Vec::new(),
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
        let threshold = KeepAbove::ratio(self.ratio);
        self.draws.resize(units, 0);
        for (n, (mut x, mut mask)) in x.outer_iter_mut().zip(mask.outer_iter_mut()).enumerate() {
            // Each `u` is one 64-bit draw: two 32-bit words of the stream.
            self.rng
                .set_word_pos(2 * ((first_example + n) * units) as u128);
            self.rng.fill(&mut self.draws[..]);
            let draws = ArrayView::from_shape(x.raw_dim(), &self.draws)
                .expect("one draw per unit of the example");
            Zip::from(&mut x)
                .and(&mut mask)
                .and(draws)
                .for_each(|v, keep, &draw| {
                    *keep = threshold.keeps(draw);
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
            *d = if keep { *d } else { A::zero() };
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
    fn the_mask_is_u_above_r_for_the_streams_uniform_draws() {
        let (ratio, units) = (0.2, 37);
        let mut dropout = Dropout::new(ratio, 11);
        Layer::<f32>::set_position(
            &mut dropout,
            BatchPosition {
                pass: 3,
                first_example: 5,
            },
        );
        let y = dropout.forward(ArrayD::<f32>::ones(vec![2, units]), Mode::Train);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        rng.set_stream(3);
        rng.set_word_pos(2 * 5 * units as u128);
        let book: Vec<f32> = (0..2 * units)
            .map(|_| f32::from(u8::from(rng.random::<f64>() > ratio)))
            .collect();
        assert_eq!(y.as_slice(), Some(&book[..]));
    }

    #[test]
    fn keep_above_agrees_with_the_float_comparison_at_the_edges() {
        for r in [0.0, 0.2, 0.5, 1.0 / 3.0, 0.999_999_999] {
            let t = KeepAbove::ratio(r);
            let k = t.0;
            for k in [k.saturating_sub(1), k, k + 1, (1 << 53) - 1] {
                let u = k as f64 / (1u64 << 53) as f64;
                for low in [0, 0x7ff] {
                    assert_eq!(t.keeps(k << 11 | low), u > r, "r {r}, k {k}");
                }
            }
        }
    }

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
