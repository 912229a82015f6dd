//! # backprop
//!
//! Deep learning from scratch, in Rust: the backpropagation of chapter 5 of Koki Saitoh's
//! *Deep Learning from Scratch*, as a library that reads like the book and a command-line
//! tool (`backprop`) that trains real nets on a CPU.
//!
//! Every formula of the book is one small item here with the formula in its doc comment: a
//! layer computes its local forward step and, from the derivative flowing back, its local
//! backward step; a net is an ordered list of layers walked forward, then in reverse.
//!
//! ## A ten-line tour
//!
//! ```no_run
//! use backprop::{data, functions::Targets, net::TwoLayerNet, optim::{Optimizer, Sgd}};
//!
//! let mnist = data::load(None, None)?;                 // built in, no download
//! let mut net = TwoLayerNet::<f32>::new(784, 50, 10, 0.01, 0);
//! let mut batch = data::Batch::default();
//! batch.gather(&mnist.train, &[0, 1, 2]);               // u8 pixels → x / 255
//! let t = Targets::Indices(batch.t.clone());            // or Targets::OneHot
//! let loss = net.gradient(batch.x.view().into_dyn(), &t); // forward, then backward
//! Sgd::new(0.1).update(net.params_mut());               // W ← W − η·∂L/∂W
//! # let _ = loss;
//! # Ok::<(), backprop::Error>(())
//! ```
//!
//! ## Chapter map
//!
//! | book | module | example / command |
//! |---|---|---|
//! | §3.2, §3.5, §4.2 activation, softmax, cross-entropy | [`functions`] | |
//! | §4.3–4.4 numerical differentiation | [`gradient`] | |
//! | §5.1–5.4 computational graphs, Mul/Add layers | [`graph`], [`layers::MulLayer`], [`layers::AddLayer`] | `ch05_buy_apple`, `ch05_buy_apple_orange`, `backprop apple` |
//! | §5.5–5.6 ReLU, Sigmoid, Affine, Softmax-with-Loss | [`layers`] | |
//! | §5.7.2 `TwoLayerNet` | [`net`] | |
//! | §5.7.3 gradient check | [`gradient::check_net`] (as [`net::Sequential::gradient_check`]) | `ch05_gradient_check`, `backprop gradcheck` |
//! | §5.7.4 training with backprop | [`train`], [`optim`], [`data`] | `ch05_train_neuralnet`, `backprop train` |
//! | how each net trains by default (optimizer, learning rate, weight decay) | [`train::Recipe`] | `backprop train --model …` |
//! | model files, figures | [`io`], [`plot`] | `backprop eval`, `backprop predict` |
//! | the book's pickled weights (`sample_weight.pkl`, `params.pkl`, …) | [`io::pickle`], [`io::LoadOptions`] | `backprop convert`, `--model FILE.pkl`, `train --init-from` |
//! | other tools: TensorBoard's event files, ONNX | [`io::tensorboard`], [`train::TensorBoard`], [`io::onnx`] | `backprop train --tensorboard DIR`, `backprop export --onnx` |
//! | §6.1 optimizers (SGD … Adam, AdamW) | [`optim`] | `ch06_optimizer_compare_mnist`, `backprop experiment optimizer-compare` |
//! | §6.2 initial weights (He, Xavier) | [`net::Init`], [`experiments::activation_histograms`] | `ch06_weight_init_compare`, `ch06_weight_init_activation_histogram` |
//! | §6.3 batch normalisation | [`layers::BatchNorm`] | `ch06_batch_norm_test`, `backprop experiment batch-norm` |
//! | §6.4 weight decay, dropout | [`net::MultiLayerNet`], [`layers::Dropout`] | `ch06_overfit_weight_decay`, `ch06_overfit_dropout` |
//! | §6.5 hyper-parameter search | [`experiments::random_search`], [`data::Dataset::validation_split`] | `ch06_hyperparameter_optimization` |
//! | §7.2–7.4 convolution, pooling, im2col | [`layers::Convolution`], [`layers::Pooling`], [`layers::im2col`] | |
//! | §7.5 `SimpleConvNet`, §8.1 `DeepConvNet` | [`net::SimpleConvNet`], [`net::DeepConvNet`] | `ch07_train_convnet`, `ch08_train_deepnet`, `backprop train --model simple-conv\|deep-conv` |
//! | what makes it fast (skip on a first reading) | [`machinery`] | `backprop bench` |
//! | §7.6, §8.1 what the nets learned | [`plot::first_layer_tiles`], [`train::predictions`] | `ch07_visualize_filter`, `ch08_misclassified_mnist`, `backprop visualize-filters`, `backprop misclassified` |
//!
//! ## numpy line → this crate
//!
//! | the book's numpy | here |
//! |---|---|
//! | `np.dot(x, W) + b` | [`layers::Affine`] forward: `Y = b`, then `Y += X·W` ([`machinery::linalg::matmul`]) |
//! | `self.db = np.sum(dout, axis=0)` | `∂L/∂b = Σₙ ∂L/∂Y`: the column sum, the rows added in order |
//! | `self.mask = (x <= 0); out[self.mask] = 0` | [`layers::Relu`] keeps `[x > 0]` as `bool`s |
//! | `layers.reverse()` in `gradient` | [`net::Sequential::gradient`] walks `iter_mut().rev()` |
//! | `(self.y - self.t) / batch_size` | [`layers::SoftmaxWithLoss::backward`], one-hot or index labels |
//! | `np.random.choice(train_size, batch_size)` | [`data::Sampler`] with [`data::Sampling::WithReplacement`] |
//! | `load_mnist(normalize=True, one_hot_label=True)` | [`data::load`], [`data::Batch::gather`], [`data::one_hot`] |
//!
//! ## Correct where copies of the book's code slip
//!
//! Affine's `db` is the column sum of `dout`; backward walks the layers in reverse order;
//! Softmax-with-Loss gives `(y − t) / N` for one-hot *and* class-index labels, told apart by
//! type rather than guessed from sizes; softmax subtracts the row maximum and cross-entropy
//! takes the log of a clipped probability, which still lets NaN through so that a diverging
//! run is caught rather than hidden.
//!
//! ## Performance
//!
//! Products run on faer's GEMM, chosen by measurement on this project's shapes; transposed
//! operands are strided views, never copies. After its first step, a dense net's training
//! step allocates nothing; convolutions run image by image, the images of a batch shared among
//! the cores; evaluation runs in blocks shared among the cores; and the same seed gives the
//! same bits at any `--threads`. How is the page of [`machinery`], the code below the
//! layers that a learner can skip. `backprop bench` and `BENCHMARKS.md` compare with numpy,
//! PyTorch, burn and candle measured in the same run.
//!
//! ## Errors and panics
//!
//! Anything a user controls (files, net specs, flags) returns [`Result`] with an [`Error`]
//! that says what is wrong and what to do. Misuse of the API by a programmer (a shape that
//! does not fit a layer, `backward` before `forward`) panics with the layer and both shapes.
//!
//! ## Untrusted input
//!
//! The IDX reader checks the header against the real length before it allocates, so a file
//! claiming billions of items costs nothing; downloads are verified against pinned SHA-256
//! values before they are renamed into place. Pickles are read by a restricted unpickler
//! ([`io::pickle`]) that runs nothing and accepts only the globals of a dict of numpy arrays.
#![warn(missing_docs)]
// Data a user controls is never unwrapped: it gives an `Error`. (`expect` remains for
// invariants of the crate's own making, each with the reason it holds.)
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod data;
pub mod error;
pub mod experiments;
pub mod functions;
pub mod gradient;
pub mod graph;
pub mod io;
pub mod layers;
pub mod machinery;
pub mod net;
pub mod optim;
pub mod pause_points;
pub mod plot;
pub mod train;

pub use error::{Error, Result};
