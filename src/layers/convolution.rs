//! Convolution layer (§7.2, §7.4.3), computed image by image as a matrix product over `im2col` rows.
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
//!           ∂L/∂xₙ = col2im(Wcᵀ · ∂L/∂Yₙ)                   overlapping windows add up
//! ```
//!
//! With stride 1 and a square window (`FH = FW`, `P < FH`), `∂L/∂xₙ` is itself a convolution:
//! of `∂L/∂Yₙ` with the filters turned by 180° and their channels swapped, padded by
//! `FH − 1 − P`, which brings it back to `H × W`:
//!
//! ```text
//! ∂L/∂x[n, c, y, x] = Σ_{f,ky,kx} W[f, c, FH−1−ky, FW−1−kx] · ∂L/∂y[n, f, y + ky − (FH−1−P), x + kx − (FW−1−P)]
//! ```
//!
//! the same sums as `col2im`'s, computed as one product `Wflip (C, FN·FH·FW) · im2col(∂L/∂Yₙ)ᵀ`
//! instead of a product whose inner size is only `FN` followed by the scatter-adds of `col2im`
//! (1.25 × faster over DeepConvNet's convolutions, BENCHMARKS.md). Other windows take the
//! book's `col2im`.
//!
//! A training pass caches its input `x`; backward unfolds each image again (`colₙ =
//! im2col(xₙ)`, kept transposed, `(C·FH·FW, OH·OW)`, see [`im2col_image`](super::im2col_image())),
//! since a batch's im2col rows are `FH·FW` times the images (45 MB against 5 MB for
//! DeepConvNet's second layer at batch 100) and unfolding costs a few percent of a step. An
//! inference pass keeps nothing for backward, as none follows it. Working image by image
//! gives the output directly in the `(N, FN, OH, OW)` layout; how that and the threads make
//! it fast is in [`crate::machinery`].
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

use std::mem::MaybeUninit;

use ndarray::{
    Array1, Array2, Array3, Array4, ArrayD, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3,
    Axis, Ix3, Ix4, NdFloat,
};
use rand::Rng;

use super::im2col::{ImageShape, Window, col2im_image, im2col_image};
use super::{Layer, Mode, Param, cached, check_dout_shape, visit_weights};
use crate::functions::randn;
use crate::machinery::cost::Work;
use crate::machinery::linalg::matmul;
use crate::machinery::parallel::{
    parallel_zip3, per_thread, shares_of_groups, sum_in_fixed_groups,
};
use crate::machinery::scratch::reuse_for;

/// A 2-D convolution with `FN` filters of `C × FH × FW`.
///
/// A clone has the parameters, gradients and geometry but not the cache of the last training
/// pass, which only this layer's own `backward` reads: a clone needs a `forward` before its
/// `backward`.
#[derive(Debug)]
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
    /// The input `x (N, C, H, W)` of the last training pass (none after an inference pass).
    cache: Option<Array4<A>>,
    /// `colᵀ` buffers, one per thread's part of a pass (forward's groups of images, backward's
    /// shares of them), kept for the next pass with the same `(parts, C, H, W)` (their
    /// padding entries stay 0).
    cols: Option<(Array3<A>, ImageShape)>,
    /// Backward's buffers for what `∂L/∂xₙ` unfolds ([`InputGrad`]), one per thread's share of
    /// the images, kept as `cols` are.
    dcols: Option<(Array3<A>, ImageShape)>,
}

impl<A: Clone> Clone for Convolution<A> {
    fn clone(&self) -> Self {
        Convolution {
            w: self.w.clone(),
            b: self.b.clone(),
            dw: self.dw.clone(),
            db: self.db.clone(),
            stride: self.stride,
            pad: self.pad,
            cache: None,
            cols: None,
            dcols: None,
        }
    }
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
            cols: None,
            dcols: None,
        }
    }

    /// `W = std · randn(FN, C, FH, FW)`, `b = 0`, as the book's `weight_init_std * np.random.randn`.
    pub fn randn(
        shape: (usize, usize, usize, usize),
        (stride, pad): (usize, usize),
        std: f64,
        rng: &mut impl Rng,
    ) -> Self {
        Self::new(randn(shape, std, rng), Array1::zeros(shape.0), stride, pad)
    }

    /// The filters `W (FN, C, FH, FW)`.
    pub fn filters(&self) -> &Array4<A> {
        &self.w
    }

    /// The bias `b (FN,)`.
    pub fn bias(&self) -> &Array1<A> {
        &self.b
    }

    /// `x` as a batch of images `(N, C, H, W)` in standard layout.
    ///
    /// # Panics
    /// When it is not one, with `C` channels.
    #[track_caller]
    fn images(&self, x: ArrayD<A>) -> Array4<A> {
        let (c, shape) = (self.w.len_of(Axis(1)), x.shape().to_vec());
        match x.into_dimensionality::<Ix4>() {
            Ok(x) if x.len_of(Axis(1)) == c && x.is_standard_layout() => x,
            Ok(x) if x.len_of(Axis(1)) == c => x.as_standard_layout().into_owned(),
            _ => panic!(
                "Convolution::forward: input of shape {shape:?} is not (N, {c}, H, W) for W of shape {:?}",
                self.w.shape()
            ),
        }
    }

    /// The window of the filters: `FH × FW`, stride and padding.
    pub fn window(&self) -> Window {
        Window {
            height: self.w.len_of(Axis(2)),
            width: self.w.len_of(Axis(3)),
            stride: self.stride,
            pad: self.pad,
        }
    }

    /// `W` as the matrix `Wc (FN, C·FH·FW)`, a view.
    fn w_col(&self) -> ndarray::ArrayView2<'_, A> {
        as_matrix(&self.w)
    }
}

/// Filters `W (FN, C, FH, FW)` as the matrix `Wc (FN, C·FH·FW)`, a view.
fn as_matrix<A>(w: &Array4<A>) -> ndarray::ArrayView2<'_, A> {
    let fn_ = w.len_of(Axis(0));
    let wc = w.view().into_shape_with_order((fn_, w.len() / fn_.max(1)));
    wc.expect("W is in standard layout")
}

impl<A: NdFloat> Layer<A> for Convolution<A> {
    fn kind(&self) -> &'static str {
        "Conv"
    }

    /// `colₙᵀ = im2col(xₙ);  Yₙ = Wc·colₙᵀ + b`, image by image
    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, mode: Mode) -> ArrayD<A> {
        let x = self.images(x); // (N, C, H, W)
        let (n, fn_, (oh, ow)) = (x.dim().0, self.w_col().nrows(), self.output_size(x.dim()));
        // Not zeroed: every element is written (the bias, then the product added).
        let mut y = Array3::uninit((n, fn_, oh * ow));
        self.forward_in_groups(&x, y.view_mut());
        // SAFETY: forward_in_groups has given every image's Yₙ to forward_image, which
        // writes all of it.
        let y = unsafe { y.assume_init() };
        self.cache = match mode {
            Mode::Train => Some(x), // for backward
            Mode::Eval => None,     // no backward follows inference
        };
        let y = y.into_shape_with_order((n, fn_, oh, ow));
        y.expect("(N, FN, OH·OW) splits").into_dyn()
    }

    /// `∂L/∂b = Σ ∂L/∂Y;  ∂L/∂Wc = Σₙ ∂L/∂Yₙ·colₙ;  ∂L/∂xₙ = col2im(Wcᵀ·∂L/∂Yₙ)`
    /// (or the convolution of `∂L/∂Yₙ` with the turned filters, see the module doc)
    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let shape = cached(&self.cache, "Convolution").dim();
        let mut dx = Array4::zeros(shape);
        self.grads(dout, Some(&mut dx));
        dx.into_dyn()
    }

    #[track_caller]
    fn backward_params_only(&mut self, dout: ArrayD<A>) {
        self.grads(dout, None);
    }

    fn visit_params<'a>(&'a mut self, visit: &mut dyn FnMut(Param<'a, A>)) {
        visit_weights(
            (&mut self.w, &mut self.dw),
            (&mut self.b, &mut self.db),
            visit,
        );
    }
}

/// Images per partial sum of `∂L/∂W`: fixed, so the order of the additions, and with it every
/// bit of the result, does not depend on the thread count.
const IMAGES_PER_PARTIAL: usize = 8;

/// How `∂L/∂xₙ` is computed from `∂L/∂Yₙ` (the module doc has both formulas).
enum InputGrad<A> {
    /// The book's `col2im(Wcᵀ·∂L/∂Yₙ)`.
    Col2im(Window),
    /// The convolution of `∂L/∂Yₙ` with `Wflip (C, FN·FH·FW)`, the filters turned by 180° with
    /// their channels swapped, padded by `FH − 1 − P` for the layer's window.
    TurnedFilters(Array2<A>, Window),
}

impl<A: NdFloat> InputGrad<A> {
    /// The convolution with turned filters where it applies (stride 1, a square window, `P <
    /// FH`), else `col2im`.
    fn for_layer(w: &Array4<A>, window: Window) -> Self {
        let (fn_, c, fh, fw) = w.dim();
        if window.stride != 1 || fh != fw || window.pad >= fh {
            return InputGrad::Col2im(window);
        }
        // turned[c, (f·FH + ky)·FW + kx] = W[f, c, FH−1−ky, FW−1−kx]: a window turned by 180°
        // is its FH·FW values in reverse order.
        let area = fh * fw;
        let filters = w.as_slice().expect("W is in standard layout");
        let window_of = |f: usize, channel: usize| &filters[(f * c + channel) * area..][..area];
        let rows = (0..c).flat_map(|ch| (0..fn_).flat_map(move |f| window_of(f, ch).iter().rev()));
        let turned = Array2::from_shape_vec((c, fn_ * area), rows.copied().collect());
        let turned = turned.expect("C rows of FN·FH·FW");
        InputGrad::TurnedFilters(turned, window)
    }

    /// The shape of the buffer [`image`](Self::image) unfolds into: `colᵀ`'s `(C·FH·FW,
    /// OH·OW)` for `col2im`, `(FN·FH·FW, H·W)` for the turned filters.
    fn unfolded_dim(&self, col_t: (usize, usize), (_, _, h, w): ImageShape) -> (usize, usize) {
        match self {
            InputGrad::Col2im(_) => col_t,
            InputGrad::TurnedFilters(turned, _) => (turned.ncols(), h * w),
        }
    }

    /// `∂L/∂xₙ` of one image into `dx_n (C, H, W)`, from `∂L/∂Yₙ (FN, OH·OW)`, with `dcol_t`
    /// of [`unfolded_dim`](Self::unfolded_dim) as scratch; `wc` is `Wc (FN, C·FH·FW)`.
    fn image(
        &self,
        wc: ArrayView2<'_, A>,
        dy_n: ArrayView2<'_, A>,
        mut dcol_t: ArrayViewMut2<'_, A>,
        dx_n: ArrayViewMut3<'_, A>,
    ) {
        let (c, h, w) = dx_n.dim();
        match self {
            InputGrad::Col2im(window) => {
                matmul(wc.t(), dy_n, dcol_t.view_mut(), false); // ∂L/∂colₙᵀ = Wcᵀ·∂L/∂Yₙ
                let (dcol_t, dx_n) = (dcol_t.as_slice_mut(), dx_n.into_slice());
                col2im_image(
                    dcol_t.expect("fresh"),
                    (c, h, w),
                    *window,
                    dx_n.expect("fresh"),
                );
            }
            InputGrad::TurnedFilters(turned, window) => {
                let (oh, ow) = window.output_size_or_panic("Convolution::backward", (h, w));
                let turned_window = Window {
                    pad: window.height - 1 - window.pad,
                    ..*window
                };
                let (dy_n, dcol) = (dy_n.to_slice(), dcol_t.as_slice_mut());
                let (dy_n, dcol) = (dy_n.expect("standard layout"), dcol.expect("fresh"));
                im2col_image(dy_n, (wc.nrows(), oh, ow), turned_window, dcol);
                let dx_n = dx_n.into_shape_with_order((c, h * w));
                // ∂L/∂xₙ = Wflip · im2col(∂L/∂Yₙ)ᵀ
                matmul(turned.view(), dcol_t.view(), dx_n.expect("fresh"), false);
            }
        }
    }
}

impl<A: NdFloat> Convolution<A> {
    /// `(OH, OW)` for images of `shape`.
    ///
    /// # Panics
    /// When the filters do not fit the images.
    #[track_caller]
    fn output_size(&self, (_, _, h, w): ImageShape) -> (usize, usize) {
        self.window()
            .output_size_or_panic("Convolution::forward", (h, w))
    }

    /// [`forward_image`](Self::forward_image) for every image, in one group per thread with one
    /// `colᵀ` buffer each (kept for the next pass): one image's rows per thread, not a batch's.
    fn forward_in_groups(&mut self, x: &Array4<A>, mut y: ArrayViewMut3<'_, MaybeUninit<A>>) {
        let work = self.work_per_image(x.dim()).times(x.dim().0);
        let ((n, c, h, w), group) = (x.dim(), per_thread(x.dim().0, work));
        let groups = n.div_ceil(group);
        let dim = Ix3(groups, self.w_col().ncols(), y.len_of(Axis(2)));
        let mut cols = reuse_for(&mut self.cols, &(groups, c, h, w), dim, A::zero());
        let x_groups = x.axis_chunks_iter(Axis(0), group);
        let y_groups = y.axis_chunks_iter_mut(Axis(0), group);
        parallel_zip3(
            x_groups,
            y_groups,
            cols.outer_iter_mut(),
            work,
            |(x_group, mut y_group, mut col_t)| {
                for (x_n, y_n) in x_group.outer_iter().zip(y_group.outer_iter_mut()) {
                    self.forward_image(x_n, col_t.view_mut(), y_n);
                }
            },
        );
        self.cols = Some((cols, (groups, c, h, w)));
    }

    /// What one image of `shape`'s pass costs (its product and its im2col or col2im), for
    /// the decision to share a batch's images among threads ([`crate::machinery::cost`]).
    fn work_per_image(&self, shape: ImageShape) -> Work {
        let (fn_, k) = self.w_col().dim();
        let pixels = {
            let (oh, ow) = self.output_size(shape);
            oh * ow
        };
        let size = std::mem::size_of::<A>();
        Work::product(fn_, k, pixels, size).and(Work::bytes(2 * k * pixels * size))
    }

    /// One image: `colₙᵀ = im2col(xₙ);  Yₙ = b;  Yₙ += Wc·colₙᵀ`, every element of `y_n`
    /// written.
    fn forward_image(
        &self,
        x_n: ArrayView3<'_, A>,
        mut col_t: ArrayViewMut2<'_, A>,
        mut y_n: ArrayViewMut2<'_, MaybeUninit<A>>,
    ) {
        let x_slice = x_n.as_slice().expect("standard layout");
        im2col_image(
            x_slice,
            x_n.dim(),
            self.window(),
            col_t.as_slice_mut().expect("fresh"),
        );
        assert_eq!(y_n.nrows(), self.b.len(), "one row of Yₙ per filter");
        for (mut row, &b) in y_n.outer_iter_mut().zip(&self.b) {
            row.fill(MaybeUninit::new(b));
        }
        // SAFETY: every row of Yₙ, one per filter, has just been filled.
        let y_n = unsafe { y_n.assume_init() };
        matmul(self.w_col(), col_t.view(), y_n, true);
    }

    /// `∂L/∂b = Σₙ Σ_pixels ∂L/∂Yₙ` and `∂L/∂Wc = Σₙ ∂L/∂Yₙ·colₙ` into the gradient buffers,
    /// with `colₙ = im2col(xₙ)` unfolded again, and `∂L/∂xₙ` ([`InputGrad`]) into `dx` when
    /// given. Each thread unfolds its images into one `colᵀ` buffer.
    #[track_caller]
    fn grads(&mut self, dout: ArrayD<A>, dx: Option<&mut Array4<A>>) {
        let x = cached(&self.cache, "Convolution");
        let dy = self.output_grads(dout, x.dim()); // (N, FN, OH·OW)
        self.db = dy.sum_axis(Axis(2)).sum_axis(Axis(0));
        let (window, work) = (self.window(), self.work_per_image(x.dim()).times(x.dim().0));
        // Only for a layer asked for ∂L/∂x: the first layer of a net is not.
        let input_grad = dx.is_some().then(|| InputGrad::for_layer(&self.w, window));
        let wc = as_matrix(&self.w); // borrows W alone, so that ∂L/∂W can be written
        let (k, pixels) = (wc.ncols(), dy.len_of(Axis(2)));
        let dcol_dim = input_grad
            .as_ref()
            .map_or((0, 0), |g| g.unfolded_dim((k, pixels), x.dim()));
        let dw = self.dw.view_mut().into_shape_with_order(wc.dim());
        let ((n, c, h, w), (dr, dc)) = (x.dim(), dcol_dim);
        let key = (shares_of_groups(n, IMAGES_PER_PARTIAL, work), c, h, w);
        let mut cols = reuse_for(&mut self.cols, &key, Ix3(key.0, k, pixels), A::zero());
        let mut dcols = reuse_for(&mut self.dcols, &key, Ix3(key.0, dr, dc), A::zero());
        let mut dx_n = dx.map(|dx| dx.outer_iter_mut());
        let images = x.outer_iter().zip(dy.outer_iter());
        let items: Vec<_> = images
            .map(|(x_n, dy_n)| (x_n, dy_n, dx_n.as_mut().and_then(Iterator::next)))
            .collect();
        sum_in_fixed_groups(
            dw.expect("dW is in standard layout"),
            items,
            IMAGES_PER_PARTIAL,
            work,
            cols.outer_iter_mut().zip(dcols.outer_iter_mut()).collect(),
            |(x_n, dy_n, dx_n), (col_t, dcol_t), partial, accumulate| {
                let x_slice = x_n.as_slice().expect("standard layout");
                im2col_image(
                    x_slice,
                    x_n.dim(),
                    window,
                    col_t.as_slice_mut().expect("fresh"),
                );
                matmul(dy_n, col_t.t(), partial, accumulate); // ∂L/∂Wc += ∂L/∂Yₙ·colₙ
                if let (Some(dx_n), Some(input_grad)) = (dx_n, &input_grad) {
                    input_grad.image(wc, dy_n, dcol_t.view_mut(), dx_n);
                }
            },
        );
        (self.cols, self.dcols) = (Some((cols, key)), Some((dcols, key)));
    }

    /// `dout` as `(N, FN, OH·OW)` in standard layout.
    ///
    /// # Panics
    /// When it is not the shape of the last output.
    #[track_caller]
    fn output_grads(&self, dout: ArrayD<A>, shape @ (n, ..): ImageShape) -> Array3<A> {
        let (fn_, (oh, ow)) = (self.w.len_of(Axis(0)), self.output_size(shape));
        check_dout_shape("Convolution", &[n, fn_, oh, ow], dout.shape());
        let dout = match dout.is_standard_layout() {
            true => dout,
            false => dout.as_standard_layout().into_owned(),
        };
        let dy = dout.into_shape_with_order((n, fn_, oh * ow));
        dy.expect("standard layout")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::check_layer;
    use crate::gradient::standard_normal as test_input;
    use crate::layers::col2im;
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
    fn inference_gives_the_bits_of_training_and_keeps_no_im2col_rows() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for (stride, pad) in [(1, 0), (1, 1), (2, 2)] {
            let mut conv = Convolution::<f32>::randn((4, 3, 3, 3), (stride, pad), 1.0, &mut rng);
            let x = test_input::<f32>(&[5, 3, 8, 7], 10);
            let trained = conv.forward(x.clone(), Mode::Train);
            assert!(conv.cache.is_some(), "training keeps x for backward");
            let copy = conv.clone();
            assert!(copy.cache.is_none(), "a clone carries no cache");
            let mut fresh = copy;
            assert_eq!(
                fresh.forward(x, Mode::Eval),
                trained,
                "stride {stride} pad {pad}"
            );
            assert!(
                fresh.cache.is_none(),
                "inference keeps nothing for backward"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        // Turned filters for stride 1 (P = 0, 1, 2 with 3×3), col2im for the others.
        for (window, (stride, pad)) in [
            (3, (1, 0)),
            (3, (1, 1)),
            (3, (1, 2)),
            (3, (2, 1)),
            (2, (1, 1)),
        ] {
            let shape = (3, 2, window, window);
            let mut conv = Convolution::<f64>::randn(shape, (stride, pad), 1.0, &mut rng);
            conv.b = test_input(&[3], 6).into_dimensionality().unwrap();
            check_layer(&mut conv, &test_input(&[2, 2, 5, 5], 7), 8).assert_below(1e-6);
        }
    }

    #[test]
    fn the_turned_filters_give_the_books_col2im_gradient() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        // (C, FN, FH, FW, H, W, pad): 3×3 "same", P = 0 and 2, 5×5 with P = 2 and P = 4,
        // one channel in or out, odd sizes; then windows that take col2im (not square, P ≥ FH).
        let shapes = [
            (3, 4, 3, 3, 7, 6, 1),
            (2, 5, 3, 3, 6, 9, 0),
            (4, 3, 3, 3, 5, 5, 2),
            (1, 6, 5, 5, 9, 8, 2),
            (5, 1, 5, 5, 4, 6, 4),
            (3, 2, 1, 3, 5, 6, 1),
            (2, 3, 2, 2, 4, 3, 2),
        ];
        for (c, fn_, fh, fw, h, w, pad) in shapes {
            let mut conv = Convolution::<f64>::randn((fn_, c, fh, fw), (1, pad), 1.0, &mut rng);
            let x = test_input::<f64>(&[3, c, h, w], 12);
            let y = conv.forward(x, Mode::Train);
            let dy = test_input::<f64>(y.shape(), 13);
            let dx = conv.backward(dy.clone());
            let (n, window) = (dx.shape()[0], conv.window());
            let turned = !matches!(InputGrad::for_layer(&conv.w, window), InputGrad::Col2im(_));
            assert_eq!(turned, fh == fw && pad < fh, "{c} {fn_} {fh}×{fw} P{pad}");
            // The book's: col = ∂L/∂Y as rows (N·OH·OW, FN) · Wc, folded back.
            let rows = dy
                .into_shape_with_order((n, fn_, y.len() / n / fn_))
                .unwrap();
            let rows = rows
                .permuted_axes([0, 2, 1])
                .as_standard_layout()
                .into_owned();
            let rows = rows.into_shape_with_order((y.len() / fn_, fn_)).unwrap();
            let want = col2im(rows.dot(&conv.w_col()).view(), (n, c, h, w), window);
            let worst = (&dx - &want.into_dyn())
                .iter()
                .fold(0.0, |m: f64, d| m.max(d.abs()));
            assert!(worst < 1e-12, "{c} {fn_} {fh}×{fw} P{pad}: {worst}");
        }
    }

    /// Backward keeps its unfolding buffers, whose padding entries must stay 0, only for
    /// images of the shape they were made for: 7×6 then 6×7 images (as many pixels, the
    /// padding elsewhere) give the gradients of a layer that never saw 7×6.
    #[test]
    fn backward_buffers_serve_only_the_images_they_were_made_for() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        for (window, pad) in [(3, 1), (3, 2), (2, 1)] {
            let mut conv =
                Convolution::<f64>::randn((3, 2, window, window), (1, pad), 1.0, &mut rng);
            let mut fresh = conv.clone();
            let pass = |conv: &mut Convolution<f64>, shape: &[usize], seed| {
                let y = conv.forward(test_input(shape, seed), Mode::Train);
                let dx = conv.backward(test_input(y.shape(), seed + 1));
                (dx, conv.dw.clone(), conv.db.clone())
            };
            pass(&mut conv, &[4, 2, 7, 6], 30);
            let again = pass(&mut conv, &[4, 2, 6, 7], 40);
            assert_eq!(
                again,
                pass(&mut fresh, &[4, 2, 6, 7], 40),
                "{window}×{window} P{pad}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "is not (N, 3, H, W) for W of shape [4, 3, 3, 3]")]
    fn a_wrong_channel_count_names_both_shapes() {
        let mut conv = Convolution::<f64>::new(Array4::zeros((4, 3, 3, 3)), Array1::zeros(4), 1, 0);
        let _ = conv.forward(ArrayD::zeros(vec![2, 1, 5, 5]), Mode::Train);
    }
}
