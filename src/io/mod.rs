//! Model files: safetensors, the book's pickles, and atomic writes; ONNX export and
//! TensorBoard's event files.
//!
//! A model file holds one tensor per parameter, named as in the book (`W1`, `b1`, `W2`, …,
//! with `W` of shape `(in, out)`), in `F32` (`F64` is read too), and string metadata:
//!
//! | key | value |
//! |---|---|
//! | `format` | `backprop` |
//! | `model` | `mlp`, `simple-conv` or `deep-conv` |
//! | `architecture` | for convolutional nets, their settings as JSON |
//! | `net` | the layer sizes, e.g. `784-50-10` |
//! | `activation` | `relu` or `sigmoid` |
//! | `batch_norm` | `true` when hidden layers are batch-normalised (tensors `gammaK`, `betaK`, `running_meanK`, `running_varK`) |
//! | `dropout` | the dropout ratio, when the net has dropout |
//! | `weight_decay` | the L2 `λ` it was trained with, when not 0 |
//! | `normalisation` | `pixel/255`: how images become inputs |
//! | `input_shape` | `28x28` |
//! | `classes` | the class names as a JSON list |
//! | `dataset` | the data set trained on |
//! | `test_accuracy` | the test accuracy of these weights, when the run's last evaluation was after its last update |
//! | `checkpoint` | in a checkpoint: `ITERATION/ITERS`, where in its run it was taken |
//!
//! A checkpoint (`checkpoint.safetensors` of `backprop train --checkpoint-every`) is such a
//! file with the trainer's state besides: the optimizer's tensors (`optimizer/…`), the loss
//! of every iteration (`train/losses`), the position in the run (metadata `trainer`) and the
//! run's settings (metadata `run`, [`crate::train::RunSettings`]); the format is
//! [`crate::train`]'s `checkpoint.rs`.
//! [`load_model`] reads its weights like a model's and says in [`ModelInfo::checkpoint`]
//! at which iteration it was taken.
//!
//! Such a file loads in numpy or PyTorch with the `safetensors` package
//! (`safetensors.numpy.load_file`), and a file written there with the book's names loads here.
//! So do the book's own pickled weights ([`pickle`], read without running anything). A file
//! without metadata is recognised from the shapes of its weights (an MLP, SimpleConvNet or
//! DeepConvNet, see [`LoadOptions`]), and what that leaves open is assumed and said.
//!
//! Every file is written to a temporary name in the same folder, synced, and renamed into
//! place, so a crash leaves either the old file or the new one, never a torn one.

// The bytes parsed here come from users: nothing about them is unwrapped or expected.
#![cfg_attr(not(test), deny(clippy::expect_used))]

/// The most tensors a model file may hold: DeepConvNet has 16, an MLP of 100 batch-normalised
/// layers 600. Bounds the work of matching names to a net's parameters.
const MAX_TENSORS: usize = 4096;

mod atomic;
mod model;
pub mod onnx;
pub mod pickle;
mod recognise;
pub mod tensorboard;
mod tensors;

pub use atomic::{TEMP_PREFIX, remove_stale_temporaries, write_atomically, write_together};
pub use model::{
    ModelInfo, PIXEL_NORMALISATION, RunPosition, TRAINER_KEY, encode_model, load_model, model_from,
    named_params, save_model,
};
pub use recognise::LoadOptions;
pub use tensors::{TensorFile, encode_tensors};
