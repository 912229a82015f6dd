//! The book's activation and loss functions (§3.2, §3.5, §4.2), in numerically stable forms.
//!
//! | book (`common/functions.py`) | here |
//! |---|---|
//! | `sigmoid(x)` | [`sigmoid`] |
//! | `softmax(x)` | [`softmax`] (row-wise, shifted by the row maximum) |
//! | `cross_entropy_error(y, t)` | [`cross_entropy_error`] (one-hot or class-index targets) |
//! | `std * np.random.randn(…)` | [`randn`] (from an explicit seeded generator) |

use ndarray::{Array, Array2, ArrayView2, Dimension, NdFloat, ShapeBuilder, Zip};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The book's `delta`: probabilities are clipped to at least this before the logarithm,
/// so that `log 0 = -∞` never happens.
pub const LOG_CLIP: f64 = 1e-7;

/// Targets of a batch of `N` examples over `C` classes.
///
/// The book's code accepts both kinds and tells them apart by comparing sizes; here the kind
/// is said explicitly.
#[derive(Debug, PartialEq)]
pub enum Targets<A> {
    /// One class index in `0..C` per example; shape `(N,)`.
    Indices(Vec<usize>),
    /// One row per example, `t[n][k] = 1` for the true class (soft labels work too); shape `(N, C)`.
    OneHot(Array2<A>),
}

impl<A: Clone> Clone for Targets<A> {
    fn clone(&self) -> Self {
        match self {
            Targets::Indices(t) => Targets::Indices(t.clone()),
            Targets::OneHot(t) => Targets::OneHot(t.clone()),
        }
    }

    /// Copies into the buffers of `self` when `source` is of the same kind, so that targets
    /// kept from batch to batch are not reallocated.
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Targets::Indices(t), Targets::Indices(s)) => t.clone_from(s),
            (Targets::OneHot(t), Targets::OneHot(s)) => t.clone_from(s),
            (t, s) => *t = s.clone(),
        }
    }
}

impl<A: NdFloat> Targets<A> {
    /// The number of examples `N`.
    pub fn len(&self) -> usize {
        match self {
            Targets::Indices(t) => t.len(),
            Targets::OneHot(t) => t.nrows(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the targets of the examples `rows` into `into`, reusing its buffer when it is
    /// of the same kind (a shard's targets, kept from batch to batch).
    pub fn copy_rows_into(&self, rows: std::ops::Range<usize>, into: &mut Targets<A>) {
        match (self, into) {
            (Targets::Indices(t), Targets::Indices(into)) => {
                into.clear();
                into.extend_from_slice(&t[rows]);
            }
            (Targets::OneHot(t), Targets::OneHot(into))
                if into.dim() == (rows.len(), t.ncols()) =>
            {
                into.assign(&t.slice(ndarray::s![rows, ..]));
            }
            (Targets::Indices(t), into) => *into = Targets::Indices(t[rows].to_vec()),
            (Targets::OneHot(t), into) => {
                *into = Targets::OneHot(t.slice(ndarray::s![rows, ..]).to_owned());
            }
        }
    }

    /// The class of example `n`: its index, or the position of the largest entry of its row.
    pub fn class(&self, n: usize) -> usize {
        match self {
            Targets::Indices(t) => t[n],
            Targets::OneHot(t) => argmax(t.row(n).iter().copied()),
        }
    }

    /// The one-hot `(N, classes)` form, as the book's code builds with `one_hot_label=True`.
    pub fn to_one_hot(&self, classes: usize) -> Array2<A> {
        match self {
            Targets::OneHot(t) => t.clone(),
            Targets::Indices(t) => {
                let mut out = Array2::zeros((t.len(), classes));
                for (row, &k) in out.rows_mut().into_iter().zip(t) {
                    let mut row = row;
                    row[k] = A::one();
                }
                out
            }
        }
    }
}

/// `std · randn(shape)`: standard normal samples from `rng`, scaled, as the book's
/// `weight_init_std * np.random.randn(…)` draws initial weights.
pub fn randn<A: NdFloat, Sh: ShapeBuilder>(
    shape: Sh,
    std: f64,
    rng: &mut impl Rng,
) -> Array<A, Sh::Dim>
where
    Sh::Dim: Dimension,
{
    Array::from_shape_simple_fn(shape, || {
        let z: f64 = StandardNormal.sample(rng);
        A::from(std * z).expect("a normal sample fits the float type")
    })
}

/// Position of the largest value (the first one on ties); 0 for an empty input.
pub fn argmax<A: PartialOrd>(values: impl IntoIterator<Item = A>) -> usize {
    let mut best: Option<(usize, A)> = None;
    for (i, v) in values.into_iter().enumerate() {
        if best.as_ref().is_none_or(|(_, b)| v > *b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// `σ(x) = 1 / (1 + e⁻ˣ)`, evaluated as `eˣ / (1 + eˣ)` for negative `x` so that `e⁻ˣ`
/// never overflows ([`sigmoid_from`]).
pub fn sigmoid<A: NdFloat>(x: A) -> A {
    sigmoid_from(x, (-x.abs()).exp())
}

/// `σ(x)` given `e = e^(−|x|)`: `1 / (1 + e)` for `x ≥ 0`, `e / (1 + e)` below. Both are
/// computed and one is picked, with no branch for the processor to mispredict on half of the
/// inputs; a NaN stays NaN.
#[inline(always)]
pub fn sigmoid_from<A: NdFloat>(x: A, e: A) -> A {
    let (positive, negative) = (A::one() / (A::one() + e), e / (A::one() + e));
    if x >= A::zero() { positive } else { negative }
}

/// Row-wise softmax of scores `a` of shape `(N, C)`:
/// `yₖ = exp(aₖ − max a) / Σᵢ exp(aᵢ − max a)`.
///
/// Subtracting the row maximum (§3.5.2) leaves the result unchanged and keeps `exp` from
/// overflowing, so scores like `[1010, 1000, 990]` work.
pub fn softmax<A: NdFloat>(a: ArrayView2<A>) -> Array2<A> {
    let mut y = a.to_owned();
    softmax_in_place(&mut y);
    y
}

/// [`softmax`] overwriting its input.
///
/// Terms with `aₖ − max a < ½·ln(smallest normal float)` (−43.7 in f32, −354 in f64) are set
/// to 0: they are below 1e-19 (f32) of the largest term, so no sum or visible probability
/// changes, and downstream products (`(y − t)/N`, the next GEMMs) never meet subnormal
/// numbers, which CPUs handle a hundred times slower.
pub fn softmax_in_place<A: NdFloat>(y: &mut Array2<A>) {
    let smallest = A::min_positive_value().ln() / (A::one() + A::one());
    for mut row in y.rows_mut() {
        let max = row.fold(A::neg_infinity(), |m, &v| m.max(v));
        let mut sum = A::zero();
        row.mapv_inplace(|v| {
            let d = v - max;
            let e = if d < smallest { A::zero() } else { d.exp() };
            sum += e;
            e
        });
        row.mapv_inplace(|e| e / sum);
    }
}

/// Mean cross-entropy of probabilities `y` `(N, C)` against targets `t`:
/// `E = −(1/N) Σₙ Σₖ tₙₖ · log max(yₙₖ, δ)` with `δ =` [`LOG_CLIP`].
///
/// For class-index targets only the true class's term is non-zero:
/// `E = −(1/N) Σₙ log max(yₙ,ₜₙ, δ)`.
///
/// # Panics
/// When `t` has a different number of rows than `y`, or a class index `≥ C`.
#[track_caller]
pub fn cross_entropy_error<A: NdFloat>(y: ArrayView2<A>, t: &Targets<A>) -> A {
    let n = y.nrows();
    assert_eq!(
        t.len(),
        n,
        "cross_entropy_error: {} targets for {} rows of y {:?}",
        t.len(),
        n,
        y.shape()
    );
    let delta = A::from(LOG_CLIP).expect("1e-7 is representable");
    // Not `p.max(delta)`: that turns NaN into δ and would hide a diverged net.
    let log = |p: A| if p < delta { delta.ln() } else { p.ln() };
    let total = match t {
        Targets::Indices(t) => y
            .rows()
            .into_iter()
            .zip(t)
            .map(|(row, &k)| {
                assert!(
                    k < row.len(),
                    "cross_entropy_error: class {k} with only {} classes",
                    row.len()
                );
                log(row[k])
            })
            .fold(A::zero(), |s, v| s + v),
        Targets::OneHot(t) => {
            assert_eq!(
                t.dim(),
                y.dim(),
                "cross_entropy_error: one-hot targets must match y's shape"
            );
            let mut s = A::zero();
            Zip::from(y).and(t).for_each(|&p, &q| {
                if q != A::zero() {
                    s += q * log(p);
                }
            });
            s
        }
    };
    -total / A::from(n.max(1)).expect("batch size fits the float type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn sigmoid_matches_the_formula_and_survives_large_inputs() {
        // σ(0) = 1/2; σ(2) = 1/(1+e⁻²) = 0.8807970779778823
        assert_eq!(sigmoid(0.0f64), 0.5);
        assert!((sigmoid(2.0f64) - 0.880_797_077_977_882_3).abs() < 1e-15);
        assert!((sigmoid(-2.0f64) - (1.0 - 0.880_797_077_977_882_3)).abs() < 1e-15);
        assert_eq!(sigmoid(-1000.0f64), 0.0);
        assert_eq!(sigmoid(1000.0f32), 1.0);
    }

    #[test]
    fn softmax_is_shift_stable() {
        // Book §3.5.2: softmax([1010, 1000, 990]) = [9.99954600e-01, 4.53978686e-05, 2.06106005e-09]
        let y = softmax(array![[1010.0f64, 1000.0, 990.0], [0.3, 2.9, 4.0]].view());
        assert!((y[[0, 0]] - 9.999_546_000_702_375e-1).abs() < 1e-12);
        assert!((y[[0, 1]] - 4.539_786_860_886_666e-5).abs() < 1e-15);
        assert!((y[[0, 2]] - 2.061_060_046_209_062_6e-9).abs() < 1e-18);
        // Book §3.5.3: softmax([0.3, 2.9, 4.0]) = [0.01821127, 0.24519181, 0.73659691]
        assert!((y[[1, 0]] - 0.018_211_27).abs() < 1e-8);
        assert!((y[[1, 1]] - 0.245_191_81).abs() < 1e-8);
        assert!((y[[1, 2]] - 0.736_596_91).abs() < 1e-8);
    }

    #[test]
    fn cross_entropy_matches_the_book_for_both_target_kinds() {
        // Book §4.2.2: t = 2, y = [.1 .05 .6 0 .05 .1 0 .1 0 0] gives -log 0.6 = 0.5108256
        let y = array![[0.1f64, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]];
        let by_index = cross_entropy_error(y.view(), &Targets::Indices(vec![2]));
        let one_hot = Targets::Indices(vec![2]).to_one_hot(10);
        let by_one_hot = cross_entropy_error(y.view(), &Targets::OneHot(one_hot));
        assert!((by_index - 0.510_825_623_765_990_7).abs() < 1e-12);
        assert_eq!(by_index, by_one_hot);
        // A zero probability on the true class is clipped: -log(1e-7) = 16.118095650958319
        let zero = cross_entropy_error(y.view(), &Targets::Indices(vec![3]));
        assert!((zero - 16.118_095_650_958_32).abs() < 1e-9);
        // NaN is not clipped away: a diverged net must show a NaN loss.
        let nan = array![[f64::NAN, 0.5]];
        assert!(cross_entropy_error(nan.view(), &Targets::Indices(vec![0])).is_nan());
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax([1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(Vec::<f64>::new()), 0);
    }
}
