//! Optimizers (§6.1): rules that update parameters from their gradients.
//!
//! Each optimizer receives the net's parameters with their gradients, named as in the book
//! (`W1`, `b1`, …), and keeps per-parameter state (velocities, squared-gradient sums, moments)
//! keyed by that name, created as zeros on first use, as the book's classes do.
//!
//! | book (`common/optimizer.py`) | update | here |
//! |---|---|---|
//! | `SGD` | `W ← W − η·g` | [`Sgd`] |
//! | `Momentum` | `v ← αv − η·g;  W ← W + v` | [`Momentum`] |
//! | `Nesterov` | `v ← αv − η·g;  W ← W + α²v − (1 + α)η·g` | [`Nesterov`] |
//! | `AdaGrad` | `h ← h + g⊙g;  W ← W − η·g/(√h + 10⁻⁷)` | [`AdaGrad`] |
//! | `RMSprop` | `h ← ρh + (1 − ρ)g⊙g;  W ← W − η·g/(√h + 10⁻⁷)` | [`RmsProp`] |
//! | `Adam` | moments `m`, `v` with bias correction | [`Adam`] |
//! | — | Adam with decoupled weight decay | [`AdamW`] |
//!
//! `g` is `∂L/∂W`. [`Optimizer::update`] takes the parameters as a list, as the book's
//! `update(params, grads)`; training calls [`Optimizer::step`], which visits them in the net
//! without collecting them, so that a training step allocates nothing. [`OptimizerSpec`]
//! names an optimizer and its hyper-parameters, as the CLI's `--optimizer` does, and builds it.

mod adagrad;
mod adam;
mod adamw;
mod momentum;
mod nesterov;
mod rmsprop;
mod sgd;
mod spec;

pub use adagrad::AdaGrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use momentum::Momentum;
pub use nesterov::Nesterov;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;
pub use spec::{OptimizerKind, OptimizerSpec};

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn, NdFloat, Zip};

use crate::error::{Error, Result};
use crate::net::{NamedParam, Sequential};

/// Optimizer state as named `f64` tensors, for checkpoints (exact for `f32` and `f64` nets).
pub type State = Vec<(String, ArrayD<f64>)>;

/// An update rule applied after each backward pass.
pub trait Optimizer<A: NdFloat>: Send {
    /// Prepares a step's updates: Adam counts the step and sets its step size; nothing for
    /// the others. [`update`](Self::update) and [`step`](Self::step) call it.
    fn begin_step(&mut self) {}

    /// Updates one parameter in place from its gradient, within the step begun last.
    fn update_param(&mut self, param: NamedParam<'_, A>);

    /// One step: updates every parameter in place from its gradient, as the book's
    /// `optimizer.update(params, grads)`.
    fn update(&mut self, params: Vec<NamedParam<'_, A>>) {
        self.begin_step();
        for param in params {
            self.update_param(param);
        }
    }

    /// One step over every parameter of `net`, as [`update`](Self::update) with
    /// `net.params_mut()` but without collecting them, so that it allocates nothing.
    fn step(&mut self, net: &mut Sequential<A>) {
        self.begin_step();
        net.visit_params(&mut |param| self.update_param(param));
    }

    /// The optimizer's state as named tensors, `kind/parameter` (`v/W1`); empty for SGD.
    fn state(&self) -> State {
        Vec::new()
    }

    /// Restores what [`state`](Self::state) returned.
    ///
    /// # Errors
    /// When a tensor does not belong to this optimizer.
    fn load_state(&mut self, state: State) -> Result<()> {
        reject_leftovers(state)
    }
}

impl<A: NdFloat, O: Optimizer<A> + ?Sized> Optimizer<A> for Box<O> {
    fn begin_step(&mut self) {
        (**self).begin_step();
    }
    fn update_param(&mut self, param: NamedParam<'_, A>) {
        (**self).update_param(param);
    }
    fn state(&self) -> State {
        (**self).state()
    }
    fn load_state(&mut self, state: State) -> Result<()> {
        (**self).load_state(state)
    }
}

/// Errors on the first tensor that no part of an optimizer took.
fn reject_leftovers(state: State) -> Result<()> {
    match state.first() {
        None => Ok(()),
        Some((name, _)) => Err(Error::Invalid(format!(
            "optimizer state {name:?} does not belong to this optimizer; resume with the optimizer the checkpoint was made with"
        ))),
    }
}

/// `zip.for_each(rule)` over `arrays` arrays side by side (the parameter, its gradient and
/// the optimizer's state), on all threads for a large parameter
/// ([`zip_for_each`](crate::machinery::parallel::zip_for_each)): every array read and all but
/// the gradient written.
macro_rules! for_each_element {
    ($zip:expr, $arrays:expr, $rule:expr) => {
        $crate::machinery::parallel::zip_for_each!($zip, (2 * $arrays - 1) * size_of::<A>(), $rule)
    };
}
use for_each_element;

/// `state` and `load_state` of an optimizer whose whole state is the [`Slots`] in `$field`
/// (Momentum's `v`, AdaGrad's `h`).
macro_rules! state_in_slots {
    ($($field:ident).+) => {
        fn state(&self) -> State {
            self.$($field).+.state()
        }

        fn load_state(&mut self, state: State) -> Result<()> {
            self.$($field).+.load(state)
        }
    };
}
use state_in_slots;

/// A hyper-parameter in the float type.
fn scalar<A: NdFloat>(v: f64) -> A {
    A::from(v).expect("a hyper-parameter fits the float type")
}

/// Per-parameter state of one kind (`v`, `h`, `m`), keyed by parameter name and created as
/// zeros of the parameter's shape on first use: the book's `if self.v is None: …zeros_like`.
#[derive(Debug, Clone)]
struct Slots<A> {
    kind: &'static str,
    arrays: BTreeMap<String, ArrayD<A>>,
}

impl<A: NdFloat> Slots<A> {
    fn new(kind: &'static str) -> Self {
        Slots {
            kind,
            arrays: BTreeMap::new(),
        }
    }

    /// The state of parameter `name`, zeros of `shape` the first time (or when the shape of
    /// the parameter changed).
    fn get(&mut self, name: &str, shape: IxDyn) -> &mut ArrayD<A> {
        // The key is allocated only the first time, not at every update.
        if self.arrays.get(name).is_none_or(|a| a.raw_dim() != shape) {
            self.arrays.insert(name.to_string(), ArrayD::zeros(shape));
        }
        self.arrays.get_mut(name).expect("inserted above")
    }

    /// Appends `kind/name` tensors to `out`.
    fn export(&self, out: &mut State) {
        for (name, a) in &self.arrays {
            let a = a.mapv(|v| v.to_f64().expect("a float converts to f64"));
            out.push((format!("{}/{name}", self.kind), a));
        }
    }

    /// Applies `rule(w, s, g)` to every element `w` of parameter `p`, with `s` its state
    /// element and `g` its gradient element.
    fn update(&mut self, p: NamedParam<'_, A>, rule: impl Fn(&mut A, &mut A, A) + Sync + Send) {
        let mut param = p.param;
        let slot = self.get(p.name, param.value.raw_dim());
        let zip = Zip::from(&mut param.value).and(slot).and(&param.grad);
        for_each_element!(zip, 3, |w: &mut A, s: &mut A, &g: &A| rule(w, s, g));
    }

    /// The state of an optimizer that has only this kind.
    fn state(&self) -> State {
        let mut out = Vec::new();
        self.export(&mut out);
        out
    }

    /// Restores the state of an optimizer that has only this kind.
    fn load(&mut self, mut state: State) -> Result<()> {
        self.import(&mut state);
        reject_leftovers(state)
    }

    /// Takes the `kind/…` tensors out of `state`.
    fn import(&mut self, state: &mut State) {
        let prefix = format!("{}/", self.kind);
        self.arrays.clear();
        state.retain(|(name, a)| match name.strip_prefix(&prefix) {
            Some(param) => {
                self.arrays
                    .insert(param.to_string(), a.mapv(|v| scalar::<A>(v)));
                false
            }
            None => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Targets;
    use crate::net::{NetSpec, Sequential};

    /// Runs `steps` updates of `optimizer` on a small seeded problem, returning the losses.
    pub(super) fn losses(optimizer: &mut dyn Optimizer<f64>, steps: usize) -> Vec<f64> {
        let mut net: Sequential<f64> = "6-8-3".parse::<NetSpec>().unwrap().build(0.5, 1);
        let x = crate::gradient::standard_normal::<f64>(&[12, 6], 2);
        let t = Targets::Indices((0..12).map(|i| i % 3).collect());
        (0..steps)
            .map(|_| {
                let loss = net.gradient(x.view(), &t);
                optimizer.update(net.params_mut());
                loss
            })
            .collect()
    }

    /// One update of a single parameter `w = [1, −2]` with gradient `g`; returns the new `w`.
    pub(super) fn step(optimizer: &mut dyn Optimizer<f64>, g: [f64; 2]) -> Vec<f64> {
        let mut w = ndarray::arr1(&[1.0, -2.0]).into_dyn();
        let mut g = ndarray::arr1(&g).into_dyn();
        let param = crate::layers::Param {
            name: "W",
            value: w.view_mut(),
            grad: g.view_mut(),
        };
        optimizer.update(vec![NamedParam { name: "W1", param }]);
        w.iter().copied().collect()
    }

    #[test]
    fn every_optimizer_lowers_the_loss_and_its_state_round_trips() {
        for kind in OptimizerKind::ALL {
            let spec = OptimizerSpec::new(kind).with_lr(10.0 * kind.default_lr());
            let mut a = spec.build::<f64>();
            let l = losses(a.as_mut(), 30);
            assert!(l[29] < 0.8 * l[0], "{kind}: {} → {}", l[0], l[29]);
            // A fresh optimizer given the state continues exactly like the original.
            let mut b = spec.build::<f64>();
            b.load_state(a.state()).unwrap();
            assert_eq!(step(a.as_mut(), [0.5, 0.25]), step(b.as_mut(), [0.5, 0.25]));
        }
    }

    #[test]
    fn large_parameters_get_the_same_bits_on_one_thread_and_many() {
        // 300 × 300 = 90,000 elements: updated on all threads when there are several.
        let g = crate::gradient::standard_normal::<f32>(&[300, 300], 2);
        for kind in OptimizerKind::ALL {
            let run = |threads: usize| {
                crate::machinery::parallel::set_threads(threads);
                let mut optimizer = OptimizerSpec::new(kind).build::<f32>();
                let mut w = crate::gradient::standard_normal::<f32>(&[300, 300], 1);
                let mut g = g.clone();
                for _ in 0..3 {
                    let param = crate::layers::Param {
                        name: "W",
                        value: w.view_mut(),
                        grad: g.view_mut(),
                    };
                    optimizer.update(vec![NamedParam { name: "W1", param }]);
                }
                w
            };
            assert_eq!(run(1), run(2), "{kind}");
        }
    }

    #[test]
    fn state_of_another_optimizer_is_refused() {
        let mut momentum = OptimizerSpec::new(OptimizerKind::Momentum).build::<f64>();
        losses(momentum.as_mut(), 1);
        let err = OptimizerSpec::new(OptimizerKind::AdaGrad)
            .build::<f64>()
            .load_state(momentum.state())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("optimizer state \"v/W1\" does not belong to this optimizer"),
            "{err}"
        );
    }
}
