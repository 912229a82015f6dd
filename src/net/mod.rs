//! Nets assembled from layers like blocks (§5.7).
//!
//! | book | here |
//! |---|---|
//! | `TwoLayerNet(input_size, hidden_size, output_size)` | [`TwoLayerNet::new`] |
//! | `self.layers = OrderedDict()` … `self.lastLayer` | [`Sequential`] |
//! | `net.gradient(x, t)`, `net.numerical_gradient(x, t)` | [`Sequential::gradient`], [`Sequential::numerical_gradient`] |
//! | `MultiLayerNet`, `MultiLayerNetExtend` (§6) | [`MultiLayerNet`] |
//! | `SimpleConvNet` (§7.5), `DeepConvNet` (§8.1) | [`SimpleConvNet`], [`DeepConvNet`] |
//! | (not in the book) a batch's gradient computed shard by shard, side by side | [`Shards`] |
//! | (not in the book) the shards spread over processes (MPI ranks) | [`Ranks`] |

mod architecture;
mod conv;
mod init;
mod multi_layer;
mod ranks;
mod sequential;
mod shards;
mod spec;
mod two_layer;
mod work;

pub use architecture::{Architecture, MAX_PARAMS, ModelKind};
pub use conv::{DeepConvNet, SimpleConvNet};
pub use init::Init;
pub use multi_layer::{Activation, MultiLayerNet};
pub use ranks::{Ranks, StepTimes};
pub use sequential::{LayerTrace, NamedParam, Sequential, Trace};
pub use shards::{FEWEST_EXAMPLES, LEAST_REUSE, LEAST_WORK, MOST_SHARDS, Shards};
pub use spec::NetSpec;
pub use two_layer::TwoLayerNet;
pub use work::ProductMacs;
