//! Numerical differentiation (§4.3–§4.4) and gradient checking (§5.7.3).
//!
//! The central difference `∂f/∂xᵢ ≈ (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h` with the book's
//! `h = 1e-4` is slow (two evaluations of `f` per element) but needs nothing from the
//! network except its loss, which makes it the independent reference against which the
//! backward passes are checked. Do checks in `f64`: with `f32`, `h = 1e-4` lets rounding
//! dominate the difference.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, NdFloat, Zip};
use rand::SeedableRng;

use crate::functions::Targets;
use crate::layers::{BatchPosition, Layer, Mode};
use crate::net::Sequential;

/// The book's step `h = 1e-4` (`1e-4` balances truncation against rounding error in f64).
pub const H: f64 = 1e-4;

/// Gradients smaller than this count as this large in [`Comparison::max_rel_err`], so that
/// elements whose true gradient is zero do not divide rounding noise by zero.
pub const REL_ERR_FLOOR: f64 = 1e-8;

/// `∂f/∂x` by central differences, perturbing `x` in place and restoring each element
/// exactly (the book's `numerical_gradient(f, x)`).
pub fn numerical_gradient<A: NdFloat>(
    mut f: impl FnMut(&ArrayD<A>) -> A,
    x: &mut ArrayD<A>,
) -> ArrayD<A> {
    if !x.is_standard_layout() {
        *x = x.as_standard_layout().into_owned();
    }
    let shape = x.raw_dim();
    central_differences(shape, |i, offset| {
        let old = shift_element(x.view_mut(), i, offset);
        let fx = f(x);
        set_element(x.view_mut(), i, old);
        fx
    })
}

/// `∂f/∂xᵢ ≈ (f(xᵢ + h) − f(xᵢ − h)) / 2h` for each element `i` (standard order) of an
/// array of `shape`, where `f_at_offset(i, δ)` evaluates `f` with `δ = ±h` added to element
/// `i` and then restores that element exactly.
///
/// This is the form the nets use, where `x` is a parameter inside a layer.
pub fn central_differences<A: NdFloat>(
    shape: ndarray::IxDyn,
    mut f_at_offset: impl FnMut(usize, A) -> A,
) -> ArrayD<A> {
    let h = A::from(H).expect("h fits the float type");
    let two_h = h + h;
    let mut grad = ArrayD::zeros(shape);
    for (i, g) in grad.iter_mut().enumerate() {
        let plus = f_at_offset(i, h);
        let minus = f_at_offset(i, -h);
        *g = (plus - minus) / two_h;
    }
    grad
}

/// Adds `offset` to element `i` (standard order) of `value` and returns its old value.
///
/// # Panics
/// When `value` is not in standard layout; parameters always are.
#[track_caller]
pub fn shift_element<A: NdFloat>(mut value: ArrayViewMutD<'_, A>, i: usize, offset: A) -> A {
    let slot = &mut value
        .as_slice_mut()
        .expect("parameters are stored in standard layout")[i];
    let old = *slot;
    *slot = old + offset;
    old
}

/// Sets element `i` (standard order) of `value`, restoring what [`shift_element`] returned.
///
/// # Panics
/// When `value` is not in standard layout.
#[track_caller]
pub fn set_element<A: NdFloat>(mut value: ArrayViewMutD<'_, A>, i: usize, v: A) {
    value
        .as_slice_mut()
        .expect("parameters are stored in standard layout")[i] = v;
}

/// How far a backprop gradient is from the numerical one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// `mean |g_backprop − g_numerical|`: the figure the book prints.
    pub mean_abs_diff: f64,
    /// `max |a − b| / max(|a|, |b|, REL_ERR_FLOOR)` over the elements.
    pub max_rel_err: f64,
}

impl Comparison {
    /// Compares two gradients of the same shape.
    ///
    /// # Panics
    /// When the shapes differ.
    #[track_caller]
    pub fn of<A: NdFloat>(backprop: ArrayViewD<'_, A>, numerical: ArrayViewD<'_, A>) -> Self {
        assert_eq!(
            backprop.shape(),
            numerical.shape(),
            "Comparison::of: shapes differ"
        );
        let (mut sum, mut max_rel) = (0.0f64, 0.0f64);
        Zip::from(&backprop).and(&numerical).for_each(|&a, &b| {
            let (a, b) = (
                a.to_f64().unwrap_or(f64::NAN),
                b.to_f64().unwrap_or(f64::NAN),
            );
            let diff = (a - b).abs();
            sum += diff;
            let rel = diff / a.abs().max(b.abs()).max(REL_ERR_FLOOR);
            max_rel = if rel.is_nan() {
                f64::NAN
            } else {
                max_rel.max(rel)
            };
        });
        let n = backprop.len().max(1) as f64;
        Comparison {
            mean_abs_diff: sum / n,
            max_rel_err: max_rel,
        }
    }
}

/// Units of a piecewise-linear layer whose branch changed under some perturbation `±h`:
/// there the function has a kink inside `[x − h, x + h]` and the central difference is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KinkCrossing {
    /// The layer, as the net names it (`Relu1`).
    pub layer: String,
    /// How many of its units switched branch.
    pub units: usize,
    /// How many units it has in this batch.
    pub of: usize,
    /// The parameters before the layer, whose numerical gradients the crossing disturbs.
    pub upstream: Vec<String>,
}

/// The result of a gradient check: one comparison per gradient, in the net's order.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheck {
    /// `(name, comparison)` per parameter (or `dx` for a layer's input).
    pub entries: Vec<(String, Comparison)>,
    /// Kinks crossed while differencing; empty when the numerical gradient is trustworthy.
    pub kinks: Vec<KinkCrossing>,
}

impl GradCheck {
    /// Whether every failure at `tol` lies upstream of a kink crossing, so that the kink, not
    /// backprop, explains it.
    pub fn failures_explained_by_kinks(&self, tol: f64) -> bool {
        self.failures(tol).iter().all(|name| {
            self.kinks
                .iter()
                .any(|k| k.upstream.iter().any(|u| u == name))
        })
    }

    /// The entries whose mean absolute difference exceeds `tol`.
    pub fn failures(&self, tol: f64) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(_, c)| c.mean_abs_diff.is_nan() || c.mean_abs_diff > tol)
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Asserts that every entry's maximum relative error is below `tol` (for tests).
    ///
    /// # Panics
    /// Naming the first entry that is not.
    #[track_caller]
    pub fn assert_below(&self, max_rel_err: f64) {
        assert!(!self.entries.is_empty(), "gradient check compared nothing");
        for (name, c) in &self.entries {
            assert!(
                c.max_rel_err < max_rel_err,
                "{name}: {c:?} exceeds {max_rel_err}"
            );
        }
    }
}

/// Checks a layer's backward pass against central differences, in `Mode::Train`.
///
/// The scalar checked is `L = Σ y ⊙ G` for a fixed random `G` (seeded by `seed`), whose
/// upstream derivative is `∂L/∂y = G`; every element of `∂L/∂x` and of each parameter
/// gradient is compared. Keep inputs of piecewise-linear layers at least `h` away from kinks.
/// A layer that draws random numbers (dropout) is set to the same position before every
/// forward pass, so its mask is held fixed.
pub fn check_layer<A: NdFloat, L: Layer<A> + ?Sized>(
    layer: &mut L,
    x: &ArrayD<A>,
    seed: u64,
) -> GradCheck {
    let forward = move |layer: &mut L, x: &ArrayD<A>| {
        layer.set_position(BatchPosition::default());
        layer.forward(x.clone(), Mode::Train)
    };
    let y = forward(layer, x);
    let g = standard_normal(y.shape(), seed);
    let dx = layer.backward(g.clone());
    let mut analytic = vec![("dx".to_string(), dx)];
    for p in layer.params_mut() {
        analytic.push((p.name.to_string(), p.grad.to_owned()));
    }

    let weighted = |layer: &mut L, x: &ArrayD<A>| (forward(layer, x) * &g).sum();
    let mut numeric = vec![numerical_gradient(|x| weighted(layer, x), &mut x.clone())];
    for k in 0..analytic.len() - 1 {
        let shape = layer.params_mut()[k].value.raw_dim();
        numeric.push(central_differences(shape, |i, offset| {
            let old = shift_element(layer.params_mut().swap_remove(k).value, i, offset);
            let loss = weighted(layer, x);
            set_element(layer.params_mut().swap_remove(k).value, i, old);
            loss
        }));
    }
    let entries = analytic
        .into_iter()
        .zip(&numeric)
        .map(|((name, a), n)| (name, Comparison::of(a.view(), n.view())))
        .collect();
    GradCheck {
        entries,
        kinks: Vec::new(),
    }
}

/// `(name, ∂L/∂param)` of every parameter of `net` by central differences of its
/// [`loss`](Sequential::loss) on `x, t` (the book's `numerical_gradient`): slow, two forward
/// passes per parameter element.
pub fn net_numerical_gradient<A: NdFloat>(
    net: &mut Sequential<A>,
    x: ArrayViewD<'_, A>,
    t: &Targets<A>,
) -> Vec<(String, ArrayD<A>)> {
    numerical_gradient_watching(net, x, t).0
}

/// Compares [`Sequential::gradient`] (backprop) with [`net_numerical_gradient`] for every
/// parameter of `net` (§5.7.3), and reports the units of piecewise-linear layers (ReLU) that
/// a perturbation of `±h` pushed across their kink, which is what makes a difference larger
/// than rounding noise.
pub fn check_net<A: NdFloat>(
    net: &mut Sequential<A>,
    x: ArrayViewD<'_, A>,
    t: &Targets<A>,
) -> GradCheck {
    check_net_side_by_side(net, x, t).0
}

/// The two gradients of a parameter, `(backprop, numerical)`.
pub type GradientPair<A> = (ArrayD<A>, ArrayD<A>);

/// [`check_net`] with the two gradients compared, one [`GradientPair`] per entry: what the
/// lab shows side by side.
pub fn check_net_side_by_side<A: NdFloat>(
    net: &mut Sequential<A>,
    x: ArrayViewD<'_, A>,
    t: &Targets<A>,
) -> (GradCheck, Vec<GradientPair<A>>) {
    let passes = net.training_passes();
    let (numeric, kinks) = numerical_gradient_watching(net, x.view(), t);
    net.set_training_passes(passes);
    net.gradient(x, t);
    let (entries, sides) = net
        .grads()
        .into_iter()
        .zip(numeric)
        .map(|((name, analytic), (_, n))| {
            let comparison = Comparison::of(analytic.view(), n.view());
            ((name, comparison), (analytic, n))
        })
        .unzip();
    (GradCheck { entries, kinks }, sides)
}

/// Numerical gradients plus, per layer with branches, the units that switched branch.
/// Random layers (dropout) see the pass they saw at the start in every forward pass, so every
/// pass uses the same masks.
fn numerical_gradient_watching<A: NdFloat>(
    net: &mut Sequential<A>,
    x: ArrayViewD<'_, A>,
    t: &Targets<A>,
) -> (Vec<(String, ArrayD<A>)>, Vec<KinkCrossing>) {
    let passes = net.training_passes();
    net.loss(x.view(), t, Mode::Train);
    let baseline: Vec<Option<ArrayD<bool>>> =
        net.layers().map(|(_, layer, _)| layer.branches()).collect();
    let mut switched: Vec<Option<ArrayD<bool>>> = baseline
        .iter()
        .map(|b| b.as_ref().map(|b| b.mapv(|_| false)))
        .collect();

    let shapes: Vec<(String, ndarray::IxDyn)> = net
        .params_mut()
        .into_iter()
        .map(|p| (p.name.to_string(), p.param.value.raw_dim()))
        .collect();
    let mut grads = Vec::with_capacity(shapes.len());
    for (k, (name, shape)) in shapes.into_iter().enumerate() {
        let grad = central_differences(shape, |i, offset| {
            let old = shift_element(net.params_mut().swap_remove(k).param.value, i, offset);
            net.set_training_passes(passes);
            let loss = net.loss(x.view(), t, Mode::Train);
            set_element(net.params_mut().swap_remove(k).param.value, i, old);
            mark_switched(net, &baseline, &mut switched);
            loss
        });
        grads.push((name, grad));
    }

    let names: Vec<String> = grads.iter().map(|(name, _)| name.clone()).collect();
    let mut kinks = Vec::new();
    let mut params_so_far = 0;
    for ((name, _, params), switched) in net.layers().zip(&switched) {
        let units = switched
            .as_ref()
            .map_or(0, |s| s.iter().filter(|&&b| b).count());
        if units > 0 {
            kinks.push(KinkCrossing {
                layer: name.to_string(),
                units,
                of: switched.as_ref().map_or(0, |s| s.len()),
                upstream: names[..params_so_far].to_vec(),
            });
        }
        params_so_far += params;
    }
    (grads, kinks)
}

/// Ors into `switched` the units whose branch differs from `baseline` after the last forward.
fn mark_switched<A: NdFloat>(
    net: &Sequential<A>,
    baseline: &[Option<ArrayD<bool>>],
    switched: &mut [Option<ArrayD<bool>>],
) {
    for (((_, layer, _), base), switched) in net.layers().zip(baseline).zip(switched) {
        if let (Some(now), Some(base), Some(switched)) = (layer.branches(), base, switched.as_mut())
        {
            ndarray::Zip::from(switched)
                .and(&now)
                .and(base)
                .for_each(|s, &n, &b| *s |= n != b);
        }
    }
}

/// An array of standard normal samples from a ChaCha8 RNG seeded with `seed`.
pub fn standard_normal<A: NdFloat>(shape: &[usize], seed: u64) -> ArrayD<A> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    crate::functions::randn(shape, 1.0, &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerical_gradient_of_the_books_function_2() {
        // Book §4.4: f(x0, x1) = x0² + x1² has gradient [6, 8] at (3, 4) and [0, 4] at (0, 2).
        let f = |x: &ArrayD<f64>| x.mapv(|v| v * v).sum();
        let g = numerical_gradient(f, &mut ndarray::arr1(&[3.0, 4.0]).into_dyn());
        assert!(
            (g[0] - 6.0).abs() < 1e-9 && (g[1] - 8.0).abs() < 1e-9,
            "{g}"
        );
        let g = numerical_gradient(f, &mut ndarray::arr1(&[0.0, 2.0]).into_dyn());
        assert!(g[0].abs() < 1e-9 && (g[1] - 4.0).abs() < 1e-9, "{g}");
    }

    #[test]
    fn comparison_reports_mean_and_relative_error() {
        let a = ndarray::arr1(&[1.0, 2.0, 0.0]).into_dyn();
        let b = ndarray::arr1(&[1.0, 2.2, 0.0]).into_dyn();
        let c = Comparison::of(a.view(), b.view());
        assert!((c.mean_abs_diff - 0.2 / 3.0).abs() < 1e-12);
        assert!((c.max_rel_err - 0.2 / 2.2).abs() < 1e-12);
    }

    #[test]
    fn a_wrong_backward_fails_the_check() {
        /// Claims y = 2x but differentiates as if y = x.
        #[derive(Clone)]
        struct Wrong;
        impl Layer<f64> for Wrong {
            fn kind(&self) -> &'static str {
                "Wrong"
            }
            fn forward(&mut self, x: ArrayD<f64>, _: Mode) -> ArrayD<f64> {
                x * 2.0
            }
            fn backward(&mut self, dout: ArrayD<f64>) -> ArrayD<f64> {
                dout
            }
        }
        let report = check_layer(&mut Wrong, &standard_normal(&[2, 3], 1), 2);
        assert!((report.entries[0].1.max_rel_err - 0.5).abs() < 1e-6);
        assert_eq!(report.failures(1e-3), vec!["dx"]);
    }
}
