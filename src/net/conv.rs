//! The book's convolutional nets: `SimpleConvNet` (§7.5) and `DeepConvNet` (§8.1).
//!
//! ```text
//! SimpleConvNet   Conv 30×5×5 → Relu → Pool 2×2/2 → Affine 100 → Relu → Affine 10
//! DeepConvNet     Conv 16 → Relu → Conv 16 → Relu → Pool
//!                 Conv 32 → Relu → Conv 32 (pad 2) → Relu → Pool
//!                 Conv 64 → Relu → Conv 64 → Relu → Pool
//!                 Affine 50 → Relu → Dropout 0.5 → Affine 10 → Dropout 0.5
//!                 (3×3 filters, stride 1, pad 1; pools 2×2 stride 2; He initialisation)
//! ```
//!
//! Both end in softmax-with-loss and take images `(N, C, H, W)`; flat batches `(N, C·H·W)`
//! are reshaped on entry (see [`Sequential::set_input_shape`]). Parameters are numbered by
//! weight layer as in the book: `W1 b1` the first convolution … `W3 b3` the last Affine of
//! SimpleConvNet, `W1…W6` the convolutions and `W7 W8` the Affine layers of DeepConvNet.

use std::fmt;

use ndarray::NdFloat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Init, Sequential};
use crate::error::{Error, Result};
use crate::layers::{Affine, Convolution, Dropout, Pooling, Relu, Window};

/// The book's `SimpleConvNet(input_dim, conv_param, hidden_size, output_size, weight_init_std)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimpleConvNet {
    /// Input `(C, H, W)`; MNIST is `(1, 28, 28)`.
    pub input: (usize, usize, usize),
    /// Number of filters `FN` (30).
    pub filters: usize,
    /// Filter side `FH = FW` (5).
    pub filter_size: usize,
    /// Convolution padding (0).
    pub pad: usize,
    /// Convolution stride (1).
    pub stride: usize,
    /// Units of the hidden Affine layer (100).
    pub hidden: usize,
    /// Number of classes (10).
    pub classes: usize,
    /// Initial weight scale (`weight_init_std`, 0.01).
    pub init: Init,
}

impl SimpleConvNet {
    /// The book's net for images `input (C, H, W)` and `classes` classes.
    pub fn new(input: (usize, usize, usize), classes: usize) -> Self {
        SimpleConvNet {
            input,
            filters: 30,
            filter_size: 5,
            pad: 0,
            stride: 1,
            hidden: 100,
            classes,
            init: Init::Std(0.01),
        }
    }

    /// Builds the net, weights drawn in layer order from a ChaCha8 RNG seeded with `seed`.
    ///
    /// # Errors
    /// When the filters do not fit the images, or a size is 0.
    pub fn build<A: NdFloat>(&self, seed: u64) -> Result<Sequential<A>> {
        let mut s = Stack::new(self.input, seed)?;
        s.conv(
            self.filters,
            self.filter_size,
            (self.stride, self.pad),
            self.init,
        )?;
        s.net.push(Relu::new());
        s.pool(2, 2)?;
        s.affine(self.hidden, self.init)?;
        s.net.push(Relu::new());
        s.affine(self.classes, self.init)?;
        Ok(s.net)
    }
}

/// The book's `DeepConvNet(input_dim, hidden_size=50, output_size=10)`: He-initialised,
/// dropout 0.5 in training.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeepConvNet {
    /// Input `(C, H, W)`; MNIST is `(1, 28, 28)`.
    pub input: (usize, usize, usize),
    /// Units of the hidden Affine layer (50).
    pub hidden: usize,
    /// Number of classes (10).
    pub classes: usize,
}

impl DeepConvNet {
    /// The book's net for images `input (C, H, W)` and `classes` classes.
    pub fn new(input: (usize, usize, usize), classes: usize) -> Self {
        DeepConvNet {
            input,
            hidden: 50,
            classes,
        }
    }

    /// Builds the net, weights drawn in layer order from a ChaCha8 RNG seeded with `seed`
    /// and dropout masks from a second stream of it.
    ///
    /// # Errors
    /// When the images are too small for three poolings, or a size is 0.
    pub fn build<A: NdFloat>(&self, seed: u64) -> Result<Sequential<A>> {
        let mut s = Stack::new(self.input, seed)?;
        for (filters, pads) in [(16, [1, 1]), (32, [1, 2]), (64, [1, 1])] {
            for pad in pads {
                s.conv(filters, 3, (1, pad), Init::He)?;
                s.net.push(Relu::new());
            }
            s.pool(2, 2)?;
        }
        s.affine(self.hidden, Init::He)?;
        s.net.push(Relu::new());
        s.dropout(0.5);
        s.affine(self.classes, Init::He)?;
        s.dropout(0.5);
        Ok(s.net)
    }
}

/// A net under construction that knows the shape of what its last layer outputs.
struct Stack<A: NdFloat> {
    net: Sequential<A>,
    /// `(C, H, W)` of the last layer's output, or `(D, 1, 1)` after an Affine layer.
    shape: (usize, usize, usize),
    weights: ChaCha8Rng,
    masks: ChaCha8Rng,
}

impl<A: NdFloat> Stack<A> {
    fn new(input: (usize, usize, usize), seed: u64) -> Result<Self> {
        let size = input
            .0
            .checked_mul(input.1)
            .and_then(|n| n.checked_mul(input.2));
        if size.is_none_or(|n| n == 0) {
            return Err(Error::Invalid(format!(
                "input shape {input:?} has a zero side or too many values"
            )));
        }
        let mut net = Sequential::new();
        net.set_input_shape(&[input.0, input.1, input.2]);
        let mut masks = ChaCha8Rng::seed_from_u64(seed);
        masks.set_stream(1);
        Ok(Stack {
            net,
            shape: input,
            weights: ChaCha8Rng::seed_from_u64(seed),
            masks,
        })
    }

    fn window(size: usize, (stride, pad): (usize, usize)) -> Window {
        Window {
            height: size,
            width: size,
            stride,
            pad,
        }
    }

    fn conv(
        &mut self,
        filters: usize,
        size: usize,
        (stride, pad): (usize, usize),
        init: Init,
    ) -> Result<()> {
        let c = self.shape.0;
        let (oh, ow) = self.fit(Self::window(size, (stride, pad)), "convolution")?;
        let std = init.std(c * size * size);
        self.net.push(Convolution::randn(
            (filters, c, size, size),
            (stride, pad),
            std,
            &mut self.weights,
        ));
        self.shape = (filters, oh, ow);
        Ok(())
    }

    fn pool(&mut self, size: usize, stride: usize) -> Result<()> {
        let (oh, ow) = self.fit(Self::window(size, (stride, 0)), "pooling")?;
        self.net.push(Pooling::new(size, size, stride, 0));
        self.shape = (self.shape.0, oh, ow);
        Ok(())
    }

    fn affine(&mut self, outputs: usize, init: Init) -> Result<()> {
        if outputs == 0 {
            return Err(Error::Invalid("a layer size must be at least 1".into()));
        }
        let inputs = self.shape.0 * self.shape.1 * self.shape.2;
        self.net.push(Affine::randn(
            inputs,
            outputs,
            init.std(inputs),
            &mut self.weights,
        ));
        self.shape = (outputs, 1, 1);
        Ok(())
    }

    fn dropout(&mut self, ratio: f64) {
        let seed = self.masks.random();
        self.net.push(Dropout::new(ratio, seed));
    }

    fn fit(&self, window: Window, what: &str) -> Result<(usize, usize)> {
        let (c, h, w) = self.shape;
        match window.output_size((h, w)) {
            Some((oh, ow)) if oh > 0 && ow > 0 && c > 0 => Ok((oh, ow)),
            _ => Err(Error::Invalid(format!(
                "a {}×{} {what} window (stride {}, padding {}) does not fit the {c}×{h}×{w} maps it gets; the input images are too small for this net",
                window.height, window.width, window.stride, window.pad
            ))),
        }
    }
}

impl fmt::Display for SimpleConvNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, h, w) = self.input;
        write!(
            f,
            "SimpleConvNet {c}×{h}×{w}: conv {}×{}×{} (stride {}, pad {}), pool 2×2, affine {}, {} classes, {} init",
            self.filters,
            self.filter_size,
            self.filter_size,
            self.stride,
            self.pad,
            self.hidden,
            self.classes,
            self.init
        )
    }
}

impl fmt::Display for DeepConvNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, h, w) = self.input;
        write!(
            f,
            "DeepConvNet {c}×{h}×{w}: conv 16-16-32-32-64-64, 3 pools, affine {}, dropout 0.5, {} classes",
            self.hidden, self.classes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Targets;
    use crate::gradient::standard_normal;

    #[test]
    fn the_books_names_and_shapes() {
        let mut simple = SimpleConvNet::new((1, 28, 28), 10).build::<f32>(0).unwrap();
        let shapes: Vec<(&str, Vec<usize>)> = simple
            .params_mut()
            .into_iter()
            .map(|p| (p.name, p.param.value.shape().to_vec()))
            .collect();
        assert_eq!(
            shapes,
            [
                ("W1", vec![30, 1, 5, 5]),
                ("b1", vec![30]),
                ("W2", vec![4320, 100]),
                ("b2", vec![100]),
                ("W3", vec![100, 10]),
                ("b3", vec![10]),
            ]
        );
        let mut deep = DeepConvNet::new((1, 28, 28), 10).build::<f32>(0).unwrap();
        let names: Vec<&str> = deep.params_mut().into_iter().map(|p| p.name).collect();
        assert_eq!(names.len(), 16);
        assert_eq!(names[14], "W8");
        let w7 = deep.params_mut().swap_remove(12);
        assert_eq!((w7.name, w7.param.value.shape()), ("W7", &[1024, 50][..]));
        // Flat MNIST batches go in as they are.
        let y = deep.predict(
            ndarray::ArrayD::zeros(vec![2, 784]).view(),
            crate::layers::Mode::Eval,
        );
        assert_eq!(y.dim(), (2, 10));
    }

    #[test]
    fn images_too_small_are_refused() {
        let err = DeepConvNet::new((1, 2, 2), 10).build::<f32>(0).unwrap_err();
        assert!(
            err.to_string().contains("the input images are too small"),
            "{err}"
        );
    }

    #[test]
    fn gradient_check_of_a_small_simple_conv_net() {
        let net = SimpleConvNet {
            filters: 3,
            filter_size: 3,
            hidden: 6,
            init: Init::Std(0.3),
            ..SimpleConvNet::new((2, 7, 7), 4)
        };
        let mut built = net.build::<f64>(1).unwrap();
        let x = standard_normal::<f64>(&[3, 2, 7, 7], 2);
        let t = Targets::Indices(vec![0, 3, 1]);
        let report = built.gradient_check(x.view(), &t);
        assert!(report.kinks.is_empty(), "{:?}", report.kinks);
        report.assert_below(1e-6);
    }
}
