//! Batch normalisation (§6.3): normalise each feature over the mini-batch, then scale and shift.
//!
//! ```text
//! forward (train)  μ = 1/N Σₙ xₙ                         x (N, D), μ σ² γ β (D,)
//!                  x̂ = (x − μ) / √(σ² + ε),  σ² = 1/N Σₙ (xₙ − μ)²,  ε = 1e-6
//!                  y = γ ⊙ x̂ + β
//!                  running_μ ← m·running_μ + (1 − m)·μ   (same for σ²), m = 0.9
//! forward (eval)   x̂ = (x − running_μ) / √(running_σ² + ε)
//! backward         ∂L/∂β = Σₙ ∂L/∂y,   ∂L/∂γ = Σₙ x̂ ⊙ ∂L/∂y,   g = γ ⊙ ∂L/∂y
//!                  ∂L/∂x = (g − mean_n(g) − x̂ ⊙ mean_n(g ⊙ x̂)) / √(σ² + ε)
//! ```
//!
//! The backward line is the book's node-by-node derivation (`dxn → dxc → dstd → dvar → dmu`)
//! collected into one expression. Inputs with more than two axes are flattened to
//! `(N, C·H·W)` as the book's `BatchNormalization` does, and `∂L/∂x` is reshaped back.
//! Caches `x̂` and `1/√(σ² + ε)` for backward; the sums over the batch go into buffers of
//! `D` values kept from pass to pass, and `y` into the array `x̂` held last time, so that a
//! training step allocates nothing after its first.
//!
//! Unlike the book, whose running statistics start as zeros (so a net evaluated before
//! training divides by `√ε`), the running variance starts at 1, as in PyTorch.
//!
//! ```
//! use backprop::layers::{BatchNorm, Layer, Mode};
//! use ndarray::array;
//! // One feature with values 1 and 3: μ = 2, σ² = 1, so x̂ = ∓1/√(1 + 1e-6).
//! let mut bn = BatchNorm::<f64>::new(1);
//! let y = bn.forward(array![[1.0], [3.0]].into_dyn(), Mode::Train);
//! assert!((y[[0, 0]] + 1.0).abs() < 1e-6 && (y[[1, 0]] - 1.0).abs() < 1e-6);
//! ```

use ndarray::{Array1, Array2, ArrayD, Dimension, IxDyn, NdFloat, Zip};

use super::{
    Buffer, Layer, Mode, Param, cached, check_dout_shape, flatten_batch, unflatten,
    visit_two_params,
};
use crate::machinery::features::per_feature;
use crate::machinery::scratch::reuse_like;

/// `ε` of `√(σ² + ε)`, the book's `10e-7`.
const EPS: f64 = 1e-6;
/// Weight `m` of the old running statistics, the book's `momentum=0.9`.
const MOMENTUM: f64 = 0.9;

/// Batch normalisation over the features of `(N, D)` batches.
#[derive(Debug, Clone)]
pub struct BatchNorm<A> {
    /// Scale `γ`, shape `(D,)`, initially ones.
    gamma: Array1<A>,
    /// Shift `β`, shape `(D,)`, initially zeros.
    beta: Array1<A>,
    /// `∂L/∂γ`, shape `(D,)`.
    dgamma: Array1<A>,
    /// `∂L/∂β`, shape `(D,)`.
    dbeta: Array1<A>,
    /// Running mean for inference, shape `(D,)`, initially zeros.
    running_mean: Array1<A>,
    /// Running variance for inference, shape `(D,)`, initially ones.
    running_var: Array1<A>,
    /// From the last training forward pass: `x̂ (N, D)` and the input's shape.
    cache: Option<(Array2<A>, IxDyn)>,
    /// `μ` of the last forward pass, then (backward) `mean_n(g)`, shape `(D,)`.
    mean: Array1<A>,
    /// `1/√(σ² + ε)` of the last forward pass, shape `(D,)`.
    inv_std: Array1<A>,
    /// `σ²` of the last forward pass, then (backward) `mean_n(g ⊙ x̂)`, shape `(D,)`.
    var: Array1<A>,
    /// The `x̂` of the last backward pass, for the next forward pass's `y`.
    spare_y: Option<Array2<A>>,
}

impl<A: NdFloat> BatchNorm<A> {
    /// `γ = 1`, `β = 0` for `features` features.
    pub fn new(features: usize) -> Self {
        BatchNorm {
            gamma: Array1::ones(features),
            beta: Array1::zeros(features),
            dgamma: Array1::zeros(features),
            dbeta: Array1::zeros(features),
            running_mean: Array1::zeros(features),
            running_var: Array1::ones(features),
            cache: None,
            mean: Array1::zeros(features),
            inv_std: Array1::zeros(features),
            var: Array1::zeros(features),
            spare_y: None,
        }
    }

    /// Scale `γ` and shift `β`.
    pub fn scale_and_shift(&self) -> (&Array1<A>, &Array1<A>) {
        (&self.gamma, &self.beta)
    }

    /// The running mean and variance that inference normalises with.
    pub fn running_statistics(&self) -> (&Array1<A>, &Array1<A>) {
        (&self.running_mean, &self.running_var)
    }

    /// `ε` of `√(σ² + ε)`.
    pub fn epsilon(&self) -> f64 {
        EPS
    }

    fn constant(v: f64) -> A {
        A::from(v).expect("a small constant fits the float type")
    }
}

impl<A: NdFloat> Layer<A> for BatchNorm<A> {
    fn kind(&self) -> &'static str {
        "BatchNorm"
    }

    /// `x̂ = (x − μ) / √(σ² + ε);  y = γ ⊙ x̂ + β`, with the batch's `μ, σ²` in training
    /// (the running ones updated) and the running ones in inference.
    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, mode: Mode) -> ArrayD<A> {
        let (mut x, shape) = flatten_batch("BatchNorm", x, ("gamma", self.gamma.shape())); // (N, D)
        match mode {
            Mode::Train => self.batch_statistics(&x), // μ, σ²; the running ones move
            Mode::Eval => {
                self.mean.assign(&self.running_mean);
                self.var.assign(&self.running_var);
            }
        }
        let eps = Self::constant(EPS);
        Zip::from(&mut self.inv_std)
            .and(&self.var)
            .for_each(|s, &v| *s = A::one() / (v + eps).sqrt());
        let (mean, inv_std) = (self.mean.view(), self.inv_std.view());
        per_feature(x.view_mut(), None, (mean, inv_std), |x, v, mu, s| {
            *x = (v - mu) * s; // x ← x̂
        });
        let mut y = reuse_like(&mut self.spare_y, &x, A::zero());
        let (gamma, beta) = (self.gamma.view(), self.beta.view());
        per_feature(y.view_mut(), Some(x.view()), (gamma, beta), |y, v, g, b| {
            *y = g * v + b; // y = γ ⊙ x̂ + β
        });
        match mode {
            Mode::Train => self.cache = Some((x, shape.clone())),
            Mode::Eval => (self.cache, self.spare_y) = (None, Some(x)),
        }
        unflatten(y, shape).expect("y has as many elements as x")
    }

    /// `∂L/∂β = Σₙ ∂L/∂y;  ∂L/∂γ = Σₙ x̂ ⊙ ∂L/∂y;  g = γ ⊙ ∂L/∂y;`
    /// `∂L/∂x = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε)`
    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let (x_hat, shape) = cached(&self.cache, "BatchNorm");
        check_dout_shape("BatchNorm", shape.slice(), dout.shape());
        let (mut g, _) = flatten_batch("BatchNorm", dout, ("gamma", self.gamma.shape()));
        sum_over_batch(&mut self.dbeta, &g, None); // ∂L/∂β = Σₙ ∂L/∂y
        sum_over_batch(&mut self.dgamma, &g, Some(x_hat)); // ∂L/∂γ = Σₙ x̂ ⊙ ∂L/∂y
        Zip::from(&mut g)
            .and_broadcast(&self.gamma)
            .for_each(|v, &gamma| *v = gamma * *v); // g = γ ⊙ ∂L/∂y
        let (mean_g, mean_g_xhat) = (&mut self.mean, &mut self.var);
        mean_over_batch(mean_g, &g, None);
        mean_over_batch(mean_g_xhat, &g, Some(x_hat));
        Zip::from(&mut g)
            .and(x_hat)
            .and_broadcast(&*mean_g)
            .and_broadcast(&*mean_g_xhat)
            .and_broadcast(&self.inv_std)
            .for_each(|v, &xh, &mg, &mgx, &s| *v = (*v - mg - xh * mgx) * s);
        let (x_hat, shape) = self.cache.take().expect("cached above");
        self.spare_y = Some(x_hat);
        unflatten(g, shape).expect("dx has the shape of x")
    }

    fn visit_params<'a>(&'a mut self, visit: &mut dyn FnMut(Param<'a, A>)) {
        visit_two_params(
            ["gamma", "beta"],
            (&mut self.gamma, &mut self.dgamma),
            (&mut self.beta, &mut self.dbeta),
            visit,
        );
    }

    fn visit_buffers<'a>(&'a mut self, visit: &mut dyn FnMut(Buffer<'a, A>)) {
        visit(Buffer {
            name: "running_mean",
            value: self.running_mean.view_mut().into_dyn(),
        });
        visit(Buffer {
            name: "running_var",
            value: self.running_var.view_mut().into_dyn(),
        });
    }
}

impl<A: NdFloat> BatchNorm<A> {
    /// `μ = 1/N Σₙ xₙ` and `σ² = 1/N Σₙ (xₙ − μ)²` of the batch into `mean` and `var`, and
    /// `running ← m·running + (1 − m)·batch` for both.
    fn batch_statistics(&mut self, x: &Array2<A>) {
        let inv_n = A::one() / A::from(x.nrows().max(1)).expect("a batch size fits the float type");
        sum_over_batch(&mut self.mean, x, None);
        self.mean.mapv_inplace(|s| s * inv_n);
        self.var.fill(A::zero());
        for row in x.rows() {
            Zip::from(&mut self.var)
                .and(&row)
                .and(&self.mean)
                .for_each(|s, &v, &mu| *s += (v - mu) * (v - mu));
        }
        self.var.mapv_inplace(|s| s * inv_n);
        let m = Self::constant(MOMENTUM);
        for (running, batch) in [
            (&mut self.running_mean, &self.mean),
            (&mut self.running_var, &self.var),
        ] {
            Zip::from(running)
                .and(batch)
                .for_each(|r, &v| *r = m * *r + (A::one() - m) * v);
        }
    }
}

/// `out = Σₙ rows[n, :]`, or `Σₙ rows[n, :] ⊙ times[n, :]`, the rows added in order.
fn sum_over_batch<A: NdFloat>(out: &mut Array1<A>, rows: &Array2<A>, times: Option<&Array2<A>>) {
    out.fill(A::zero());
    match times {
        None => rows.rows().into_iter().for_each(|row| *out += &row),
        Some(times) => {
            for (row, t) in rows.rows().into_iter().zip(times.rows()) {
                Zip::from(&mut *out)
                    .and(&row)
                    .and(&t)
                    .for_each(|o, &r, &t| *o += r * t);
            }
        }
    }
}

/// `out = 1/N Σₙ rows[n, :]` (or of `rows ⊙ times`).
fn mean_over_batch<A: NdFloat>(out: &mut Array1<A>, rows: &Array2<A>, times: Option<&Array2<A>>) {
    let inv_n = A::one() / A::from(rows.nrows()).expect("a batch size fits the float type");
    sum_over_batch(out, rows, times);
    out.mapv_inplace(|s| s * inv_n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;
    use ndarray::{Axis, array};

    /// A column-major batch (as inference's products give one) passes batch norm and the
    /// element-wise layers in inference with the row-major batch's bits, and stays
    /// column-major, so the next product reads it as it is.
    #[test]
    fn column_major_batches_pass_with_the_row_major_bits() {
        use crate::layers::{Dropout, Relu, Sigmoid};
        use crate::machinery::scratch::column_major;
        use ndarray::ShapeBuilder;
        let x = test_input::<f32>(&[37, 6], 3);
        let mut bn = BatchNorm::<f32>::new(6);
        bn.forward(x.clone(), Mode::Train); // running statistics not 0 and 1
        let rows = x.into_dimensionality::<ndarray::Ix2>().unwrap();
        let columns = {
            let mut c = Array2::zeros(rows.raw_dim().f());
            c.assign(&rows);
            c.into_dyn()
        };
        let layers: [Box<dyn Layer<f32>>; 4] = [
            Box::new(bn),
            Box::new(Relu::new()),
            Box::new(Sigmoid::new()),
            Box::new(Dropout::new(0.3, 1)),
        ];
        for mut layer in layers {
            let by_rows = layer.forward(rows.clone().into_dyn(), Mode::Eval);
            let by_columns = layer.forward(columns.clone(), Mode::Eval);
            assert_eq!(by_columns, by_rows, "{}", layer.kind());
            assert!(
                column_major(&by_columns),
                "{} keeps the batch column-major",
                layer.kind()
            );
        }
    }

    #[test]
    fn normalises_per_feature_and_tracks_running_statistics() {
        // Feature 0: 0, 2, 4 → μ 2, σ² 8/3; feature 1: 1, 1, 1 → μ 1, σ² 0 (x̂ = 0).
        let mut bn = BatchNorm::<f64>::new(2);
        let y = bn.forward(
            array![[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]].into_dyn(),
            Mode::Train,
        );
        let s = (8.0f64 / 3.0 + 1e-6).sqrt();
        for (got, want) in y.iter().zip([-2.0 / s, 0.0, 0.0, 0.0, 2.0 / s, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{y}");
        }
        // running ← 0.9·running + 0.1·batch
        assert!((bn.running_mean[0] - 0.2).abs() < 1e-12);
        assert!((bn.running_var[0] - (0.9 + 0.1 * 8.0 / 3.0)).abs() < 1e-12);
        assert!((bn.running_var[1] - 0.9).abs() < 1e-12);
        // Inference uses the running statistics: (x − 0.2) / √(running_var + ε) per feature 0.
        let e = bn.forward(array![[1.2, 1.0]].into_dyn(), Mode::Eval);
        assert!((e[[0, 0]] - 1.0 / (bn.running_var[0] + 1e-6).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut bn = BatchNorm::<f64>::new(4);
        bn.gamma = array![1.5, -0.5, 2.0, 0.7];
        bn.beta = array![0.1, 0.2, -0.3, 0.0];
        check_layer(&mut bn, &test_input(&[5, 4], 11), 12).assert_below(1e-6);
        // Image batches are normalised per C·H·W feature, as in the book.
        let mut bn = BatchNorm::<f64>::new(2 * 3);
        check_layer(&mut bn, &test_input(&[8, 2, 3], 13), 14).assert_below(1e-6);
    }

    #[test]
    fn agrees_with_the_books_node_by_node_backward() {
        // The book's `__backward` step by step, in numpy terms, for comparison.
        let x = test_input::<f64>(&[6, 3], 21)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let dout = test_input::<f64>(&[6, 3], 22)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let gamma = array![0.5, 1.5, -1.0];
        let mut bn = BatchNorm::<f64>::new(3);
        bn.gamma = gamma.clone();
        let _ = bn.forward(x.clone().into_dyn(), Mode::Train);
        let dx = bn.backward(dout.clone().into_dyn());

        let n = 6.0;
        let mu = x.mean_axis(Axis(0)).unwrap();
        let xc = &x - &mu;
        let std = (&xc * &xc)
            .mean_axis(Axis(0))
            .unwrap()
            .mapv(|v| (v + 1e-6).sqrt());
        let xn = &xc / &std;
        let dxn = &dout * &gamma;
        let mut dxc = &dxn / &std;
        let dstd = -(&dxn * &xc / (&std * &std)).sum_axis(Axis(0));
        let dvar = 0.5 * &dstd / &std;
        dxc = dxc + (2.0 / n) * &xc * &dvar;
        let dmu = dxc.sum_axis(Axis(0));
        let book_dx = &dxc - &(dmu / n);
        let book_dgamma = (&xn * &dout).sum_axis(Axis(0));
        assert!((&dx - &book_dx.into_dyn()).iter().all(|d| d.abs() < 1e-12));
        assert!((&bn.dgamma - &book_dgamma).iter().all(|d| d.abs() < 1e-12));
    }
}
