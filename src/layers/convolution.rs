//! Convolution layer (§7.2, §7.4.3), computed as one matrix product over `im2col` rows.
//!
//! ```text
//! x (N, C, H, W),  W (FN, C, FH, FW),  b (FN,),  stride S,  padding P
//! y[n, f, oy, ox] = b[f] + Σ_{c,ky,kx} W[f, c, ky, kx] · x[n, c, oy·S + ky − P, ox·S + kx − P]
//! y (N, FN, OH, OW),  OH = ⌊(H + 2P − FH)/S⌋ + 1
//!
//! as products, with col = im2col(x) (N·OH·OW, C·FH·FW) and Wc = W reshaped (FN, C·FH·FW):
//! per image n, with colₙ its OH·OW rows and Yₙ = y[n] as (FN, OH·OW):
//! forward   Yₙ = Wc · colₙᵀ + b
//! backward  ∂L/∂b  = Σₙ Σ_pixels ∂L/∂Yₙ
//!           ∂L/∂Wc = Σₙ ∂L/∂Yₙ · colₙ                        → (FN, C, FH, FW)
//!           ∂L/∂xₙ = col2im(∂L/∂Yₙᵀ · Wc)                   overlapping windows add up
//! ```
//!
//! Working image by image gives the output directly in the `(N, FN, OH, OW)` layout, with no
//! transposed copy, and lets the images of a batch go to different threads (im2col, product
//! and col2im of one image stay on one core, in its cache). Each image's `col` is kept
//! transposed, `colₙᵀ (C·FH·FW, OH·OW)` (see [`im2col_image`](super::im2col_image())), so that
//! all three products take plain row-major operands. Caches the `colᵀ` and the input shape.
//! The products run on [`crate::linalg::matmul`].
//!
//! ```
//! use backprop::layers::{Convolution, Layer, Mode};
//! use ndarray::{Array1, Array4};
//! // One 2×2 filter of ones on a 3×3 image 1…9: each output is the sum of a 2×2 window.
//! let mut conv = Convolution::new(Array4::ones((1, 1, 2, 2)), Array1::zeros(1), 1, 0);
//! let x = Array4::from_shape_vec((1, 1, 3, 3), (1..=9).map(f64::from).collect()).unwrap();
//! let y = conv.forward(x.into_dyn(), Mode::Eval);
//! assert_eq!(y.into_raw_vec_and_offset().0, [12.0, 16.0, 24.0, 28.0]);
//! ```

use ndarray::{Array1, Array2, Array3, Array4, ArrayD, Axis, Ix4, NdFloat};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::im2col::{ImageShape, Window, col2im_image, im2col_image};
use super::{Layer, Mode, Param, cached, check_dout_shape, visit_two_params};
use crate::linalg::{matmul, parallel_each};

/// A 2-D convolution with `FN` filters of `C × FH × FW`.
#[derive(Debug, Clone)]
pub struct Convolution<A> {
    /// Filters `W`, shape `(FN, C, FH, FW)`.
    w: Array4<A>,
    /// Bias `b`, shape `(FN,)`.
    b: Array1<A>,
    /// `∂L/∂W`, shape `(FN, C, FH, FW)`.
    dw: Array4<A>,
    /// `∂L/∂b`, shape `(FN,)`.
    db: Array1<A>,
    stride: usize,
    pad: usize,
    /// Every image's `colᵀ (C·FH·FW, OH·OW)`, as `(N, C·FH·FW, OH·OW)`, and the input shape
    /// `(N, C, H, W)` of the last forward pass. Reused by the next pass of the same shape.
    cache: Option<(Array3<A>, ImageShape)>,
}

impl<A: NdFloat> Convolution<A> {
    /// A layer with filters `w (FN, C, FH, FW)`, bias `b (FN,)`, `stride` and zero padding `pad`.
    ///
    /// # Panics
    /// When `b` does not have one entry per filter or the stride is 0.
    #[track_caller]
    pub fn new(w: Array4<A>, b: Array1<A>, stride: usize, pad: usize) -> Self {
        assert!(
            w.len_of(Axis(0)) == b.len() && stride > 0,
            "Convolution::new: W has shape {:?}, b has shape {:?}, stride {stride}",
            w.shape(),
            b.shape()
        );
        Convolution {
            dw: Array4::zeros(w.raw_dim()),
            db: Array1::zeros(b.raw_dim()),
            w,
            b,
            stride,
            pad,
            cache: None,
        }
    }

    /// `W = std · randn(FN, C, FH, FW)`, `b = 0`, as the book's `weight_init_std * np.random.randn`.
    pub fn randn(
        shape: (usize, usize, usize, usize),
        (stride, pad): (usize, usize),
        std: f64,
        rng: &mut impl Rng,
    ) -> Self {
        let w = Array4::from_shape_simple_fn(shape, || {
            let z: f64 = StandardNormal.sample(rng);
            A::from(std * z).expect("a normal sample fits the float type")
        });
        Self::new(w, Array1::zeros(shape.0), stride, pad)
    }

    /// The filters `W (FN, C, FH, FW)`.
    pub fn filters(&self) -> &Array4<A> {
        &self.w
    }

    fn window(&self) -> Window {
        Window {
            height: self.w.len_of(Axis(2)),
            width: self.w.len_of(Axis(3)),
            stride: self.stride,
            pad: self.pad,
        }
    }

    /// `W` as the matrix `Wc (FN, C·FH·FW)`, a view.
    fn w_col(&self) -> ndarray::ArrayView2<'_, A> {
        let fn_ = self.w.len_of(Axis(0));
        self.w
            .view()
            .into_shape_with_order((fn_, self.w.len() / fn_.max(1)))
            .expect("W is in standard layout")
    }
}

impl<A: NdFloat> Layer<A> for Convolution<A> {
    fn kind(&self) -> &'static str {
        "Conv"
    }

    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, _mode: Mode) -> ArrayD<A> {
        let (fn_, c) = (self.w.len_of(Axis(0)), self.w.len_of(Axis(1)));
        let shape = x.shape().to_vec();
        let x = match x.into_dimensionality::<Ix4>() {
            Ok(x) if x.len_of(Axis(1)) == c => x,
            _ => panic!(
                "Convolution::forward: input of shape {shape:?} is not (N, {c}, H, W) for W of shape {:?}",
                self.w.shape()
            ),
        };
        let (n, _, h, w) = x.dim();
        let window = self.window();
        let (oh, ow) = window.output_size_or_panic("Convolution::forward", (h, w));
        let p = oh * ow;
        let x = x.as_standard_layout();
        let k = c * window.height * window.width;
        // The buffer of the last pass when the shapes are the same: the entries in the
        // padding, never written, are still 0.
        let mut col = match self.cache.take() {
            Some((col, shape)) if shape == (n, c, h, w) => col,
            _ => Array3::zeros((n, k, p)),
        };
        let mut y = Array3::zeros((n, fn_, p));
        let (w_col, b) = (self.w_col(), &self.b);
        let jobs: Vec<_> = col
            .outer_iter_mut()
            .zip(y.outer_iter_mut())
            .zip(x.outer_iter())
            .collect();
        // Image by image: its colᵀ, then Yₙ = b + Wc · colₙᵀ, (FN, OH·OW).
        parallel_each(jobs, |((mut col_t, mut y_n), image)| {
            let image = image.to_slice().expect("standard layout");
            let col_slice = col_t.as_slice_mut().expect("standard layout");
            im2col_image(image, (c, h, w), window, col_slice);
            for (mut row, &bias) in y_n.rows_mut().into_iter().zip(b) {
                row.fill(bias);
            }
            matmul(w_col, col_t.view(), y_n, true);
        });
        self.cache = Some((col, (n, c, h, w)));
        y.into_shape_with_order((n, fn_, oh, ow))
            .expect("(N, FN, OH·OW) splits into (N, FN, OH, OW)")
            .into_dyn()
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let dout = self.param_grads(dout);
        let (col, (n, c, h, w)) = cached(&self.cache, "Convolution");
        let (c, h, w) = (*c, *h, *w);
        let window = self.window();
        let (n, p) = (*n, dout.len_of(Axis(2)));
        let w_col = self.w_col();
        let mut dx = Array4::zeros((n, c, h, w));
        // One group of images per thread, sharing one ∂L/∂colᵀ buffer.
        let group = n.div_ceil(crate::linalg::threads()).max(1);
        let jobs: Vec<_> = dx
            .axis_chunks_iter_mut(Axis(0), group)
            .zip(dout.axis_chunks_iter(Axis(0), group))
            .collect();
        // ∂L/∂colₙᵀ = Wcᵀ · ∂L/∂Yₙ, folded back onto the image's pixels.
        parallel_each(jobs, |(mut dx_group, dout_group)| {
            let mut dcol_t = Array2::zeros((col.len_of(Axis(1)), p));
            for (mut dx_n, dout_n) in dx_group.outer_iter_mut().zip(dout_group.outer_iter()) {
                matmul(w_col.t(), dout_n, dcol_t.view_mut(), false);
                let dx_n = dx_n.as_slice_mut().expect("an image of a fresh array");
                col2im_image(dcol_t.as_slice().expect("fresh"), (c, h, w), window, dx_n);
            }
        });
        dx.into_dyn()
    }

    #[track_caller]
    fn backward_params_only(&mut self, dout: ArrayD<A>) {
        let _ = self.param_grads(dout);
    }

    fn visit_params<'a>(&'a mut self, visit: &mut dyn FnMut(Param<'a, A>)) {
        visit_two_params(
            ["W", "b"],
            (&mut self.w, &mut self.dw),
            (&mut self.b, &mut self.db),
            visit,
        );
    }
}

/// Images per partial sum of `∂L/∂W`: fixed, so the order of the additions, and with it every
/// bit of the result, does not depend on the thread count.
const IMAGES_PER_PARTIAL: usize = 8;

impl<A: NdFloat> Convolution<A> {
    /// `∂L/∂W` and `∂L/∂b` into the gradient buffers; returns `∂L/∂Y` as `(N, FN, OH·OW)`.
    #[track_caller]
    fn param_grads(&mut self, dout: ArrayD<A>) -> Array3<A> {
        let (col, (n, _, h, w)) = cached(&self.cache, "Convolution");
        let fn_ = self.w.len_of(Axis(0));
        let (oh, ow) = self.window().output_size_or_panic("Convolution", (*h, *w));
        check_dout_shape("Convolution", &[*n, fn_, oh, ow], dout.shape());
        let p = oh * ow;
        let dout = if dout.is_standard_layout() {
            dout
        } else {
            dout.as_standard_layout().into_owned()
        }
        .into_shape_with_order((*n, fn_, p))
        .expect("standard layout");
        self.db = dout.sum_axis(Axis(2)).sum_axis(Axis(0));
        // ∂L/∂Wc = Σₙ ∂L/∂Yₙ · colₙ, summed in fixed groups of images, then the groups in order.
        let k = col.len_of(Axis(1));
        let mut partials: Vec<Array2<A>> = (0..n.div_ceil(IMAGES_PER_PARTIAL))
            .map(|_| Array2::zeros((fn_, k)))
            .collect();
        let jobs: Vec<_> = partials
            .iter_mut()
            .zip(dout.axis_chunks_iter(Axis(0), IMAGES_PER_PARTIAL))
            .zip(col.axis_chunks_iter(Axis(0), IMAGES_PER_PARTIAL))
            .collect();
        parallel_each(jobs, |((partial, dout_group), col_group)| {
            for (i, (dout_n, col_t)) in dout_group
                .outer_iter()
                .zip(col_group.outer_iter())
                .enumerate()
            {
                matmul(dout_n, col_t.t(), partial.view_mut(), i > 0);
            }
        });
        let mut dw_col = self
            .dw
            .view_mut()
            .into_shape_with_order((fn_, k))
            .expect("dW is in standard layout");
        dw_col.fill(A::zero());
        for partial in &partials {
            dw_col += partial;
        }
        dout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;
    use rand::SeedableRng;

    /// The definition, one output at a time, with padding by bounds checks.
    fn direct(
        x: &Array4<f64>,
        w: &Array4<f64>,
        b: &Array1<f64>,
        stride: usize,
        pad: usize,
    ) -> Array4<f64> {
        let (n, c, h, wd) = x.dim();
        let (fn_, _, fh, fw) = w.dim();
        let (oh, ow) = (
            (h + 2 * pad - fh) / stride + 1,
            (wd + 2 * pad - fw) / stride + 1,
        );
        Array4::from_shape_fn((n, fn_, oh, ow), |(i, f, oy, ox)| {
            let mut sum = b[f];
            for ch in 0..c {
                for ky in 0..fh {
                    for kx in 0..fw {
                        let (y, xx) = (
                            (oy * stride + ky) as isize - pad as isize,
                            (ox * stride + kx) as isize - pad as isize,
                        );
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                            sum += w[[f, ch, ky, kx]] * x[[i, ch, y as usize, xx as usize]];
                        }
                    }
                }
            }
            sum
        })
    }

    #[test]
    fn forward_matches_the_nested_loop_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (stride, pad) in [(1, 0), (1, 1), (2, 1), (2, 2)] {
            let mut conv = Convolution::<f64>::randn((4, 3, 3, 3), (stride, pad), 1.0, &mut rng);
            conv.b = test_input(&[4], 2).into_dimensionality().unwrap();
            let x: Array4<f64> = test_input(&[2, 3, 7, 6], 3).into_dimensionality().unwrap();
            let y = conv.forward(x.clone().into_dyn(), Mode::Train);
            let want = direct(&x, &conv.w, &conv.b, stride, pad);
            assert_eq!(y.shape(), want.shape());
            assert!(
                (&y - &want.into_dyn()).iter().all(|d| d.abs() < 1e-12),
                "stride {stride} pad {pad}"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (stride, pad) in [(1, 0), (2, 1)] {
            let mut conv = Convolution::<f64>::randn((3, 2, 3, 3), (stride, pad), 1.0, &mut rng);
            conv.b = test_input(&[3], 6).into_dimensionality().unwrap();
            check_layer(&mut conv, &test_input(&[2, 2, 5, 5], 7), 8).assert_below(1e-6);
        }
    }

    #[test]
    #[should_panic(expected = "is not (N, 3, H, W) for W of shape [4, 3, 3, 3]")]
    fn a_wrong_channel_count_names_both_shapes() {
        let mut conv = Convolution::<f64>::new(Array4::zeros((4, 3, 3, 3)), Array1::zeros(4), 1, 0);
        let _ = conv.forward(ArrayD::zeros(vec![2, 1, 5, 5]), Mode::Train);
    }
}
