//! Max pooling (§7.3, §7.4.4): the largest value of each window, channel by channel.
//!
//! ```text
//! x (N, C, H, W),  window PH×PW,  stride S,  padding P
//! y[n, c, oy, ox] = max_{ky,kx} x[n, c, oy·S + ky − P, ox·S + kx − P]      y (N, C, OH, OW)
//! backward  ∂L/∂x[pixel] = Σ over the windows whose maximum is that pixel of ∂L/∂y[window]
//! ```
//!
//! The book computes this with `im2col`: each window becomes a row of `col`, `y` is the
//! maximum of each row and backward puts `∂L/∂y` where the maximum was and folds `col` back
//! with `col2im`. A window row of pooling is only `PH·PW` values, so this layer reads the
//! windows straight from `x` and remembers where each maximum was, which gives the same
//! numbers (a test checks it against [`im2col`](super::im2col)) without building `col`.
//! Padding counts as 0, as in the book's `np.pad`; windows whose maximum is in the padding
//! send no gradient. Overlapping windows (stride < size) add up at a shared maximum.
//!
//! The positions of the maxima are what [`Layer::branches`] reports to gradient checks: a
//! perturbation that changes a window's maximum crosses a kink. The window scans are in
//! [`crate::machinery::pool_kernels`].
//!
//! ```
//! use backprop::layers::{Layer, Mode, Pooling};
//! use ndarray::Array4;
//! let mut pool = Pooling::new(2, 2, 2, 0);
//! let x = Array4::from_shape_vec((1, 1, 2, 4), vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 6.0]).unwrap();
//! let y = pool.forward(x.into_dyn(), Mode::Eval);
//! assert_eq!(y.into_raw_vec_and_offset().0, [5.0, 8.0]);
//! ```

use ndarray::{ArrayD, Ix4, NdFloat};

use super::im2col::{ImageShape, Window};
use super::{Layer, Mode, cached, check_dout_shape};
use crate::machinery::pool_kernels::{IN_PADDING, max_pool, route_to_maxima};

/// Max pooling over `PH × PW` windows.
#[derive(Debug, Clone)]
pub struct Pooling {
    window: Window,
    /// For every output `(N, C, OH, OW)`, where in its channel plane its maximum was, and the
    /// input shape.
    argmax: Option<(Vec<u32>, ImageShape)>,
}

impl Pooling {
    /// Max pooling over `height × width` windows moved by `stride`, with zero padding `pad`.
    ///
    /// # Panics
    /// When the stride or a window side is 0.
    #[track_caller]
    pub fn new(height: usize, width: usize, stride: usize, pad: usize) -> Self {
        assert!(
            height > 0 && width > 0 && stride > 0,
            "Pooling::new: window {height}×{width} with stride {stride}"
        );
        Pooling {
            window: Window {
                height,
                width,
                stride,
                pad,
            },
            argmax: None,
        }
    }

    /// The pooling window: `PH × PW`, stride and padding.
    pub fn window(&self) -> Window {
        self.window
    }
}

impl<A: NdFloat> Layer<A> for Pooling {
    fn kind(&self) -> &'static str {
        "Pool"
    }

    /// `y = max over each window`, remembering where each maximum was.
    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, _mode: Mode) -> ArrayD<A> {
        let shape = x.shape().to_vec();
        let x = x.into_dimensionality::<Ix4>().unwrap_or_else(|_| {
            panic!("Pooling::forward: input of shape {shape:?} is not (N, C, H, W)")
        });
        let (y, argmax) = max_pool(x.view(), self.window);
        let (n, c, oh, ow) = (x.dim().0, x.dim().1, y.dim().1, y.dim().2);
        self.argmax = Some((argmax, x.dim()));
        y.into_shape_with_order(vec![n, c, oh, ow])
            .expect("planes back into images")
    }

    /// `∂L/∂x`: each window's `∂L/∂y` goes to where its maximum was.
    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let (argmax, shape @ (n, c, h, w)) = cached(&self.argmax, "Pooling");
        let (oh, ow) = self.window.output_size_or_panic("Pooling", (*h, *w));
        check_dout_shape("Pooling", &[*n, *c, oh, ow], dout.shape());
        let dout = dout.as_standard_layout();
        route_to_maxima(dout.as_slice().expect("standard layout"), argmax, *shape)
    }

    fn branches(&self) -> Option<ArrayD<bool>> {
        let (argmax, (n, c, h, w)) = self.argmax.as_ref()?;
        let mut chosen = ArrayD::from_elem(vec![n * c, h * w], false);
        let (oh, ow) = self.window.output_size((*h, *w))?;
        for (p, at) in argmax.chunks(oh * ow).enumerate() {
            for &i in at.iter().filter(|&&i| i != IN_PADDING) {
                chosen[[p, i as usize]] = true;
            }
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;
    use crate::layers::im2col;
    use ndarray::Array4;

    /// The book's way: im2col on every channel plane, the maximum of each row.
    fn by_im2col(x: &Array4<f64>, window: Window) -> Vec<f64> {
        let (n, c, h, w) = x.dim();
        let planes = x.to_shape((n * c, 1, h, w)).unwrap().into_owned();
        im2col(planes.view(), window)
            .rows()
            .into_iter()
            .map(|row| row.fold(f64::NEG_INFINITY, |m, &v| m.max(v)))
            .collect()
    }

    #[test]
    fn forward_matches_the_books_im2col_form() {
        let x: Array4<f64> = test_input(&[2, 3, 7, 6], 1).into_dimensionality().unwrap();
        for (size, stride, pad) in [(2, 2, 0), (3, 1, 0), (3, 3, 0), (2, 2, 1), (3, 2, 1)] {
            let window = Window {
                height: size,
                width: size,
                stride,
                pad,
            };
            let y =
                Pooling::new(size, size, stride, pad).forward(x.clone().into_dyn(), Mode::Train);
            assert_eq!(
                y.iter().copied().collect::<Vec<_>>(),
                by_im2col(&x, window),
                "{window:?}"
            );
        }
    }

    #[test]
    fn gradient_goes_to_the_maximum_only() {
        // Distinct values, far apart: no perturbation of h changes a maximum.
        let x = ndarray::Array::from_shape_vec(
            (1, 2, 4, 4),
            (0..32).map(|v| ((v * 7) % 32) as f64 - 15.5).collect(),
        )
        .unwrap()
        .into_dyn();
        for (stride, pad) in [(2, 0), (1, 0), (2, 1)] {
            let mut pool = Pooling::new(2, 2, stride, pad);
            check_layer(&mut pool, &x, 2).assert_below(1e-6);
        }
        // Overlapping windows (stride 1) send a pixel the sum over the windows it tops:
        // nine windows, so nine units of gradient in all.
        let mut pool = Pooling::new(2, 2, 1, 0);
        let _ = Layer::<f64>::forward(&mut pool, x, Mode::Train);
        let dx = pool.backward(ArrayD::<f64>::ones(vec![1, 2, 3, 3]));
        assert_eq!(dx.sum(), 18.0);
    }

    #[test]
    fn branches_mark_the_maxima() {
        let x = ndarray::Array::from_shape_vec((1, 1, 2, 2), vec![1.0, 3.0, 2.0, 0.0])
            .unwrap()
            .into_dyn();
        let mut pool = Pooling::new(2, 2, 2, 0);
        let _ = Layer::<f64>::forward(&mut pool, x, Mode::Train);
        let chosen = Layer::<f64>::branches(&pool).unwrap();
        assert_eq!(
            chosen.iter().copied().collect::<Vec<_>>(),
            [false, true, false, false]
        );
    }
}
