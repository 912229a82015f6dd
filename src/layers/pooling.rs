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
//! perturbation that changes a window's maximum crosses a kink.
//!
//! ```
//! use backprop::layers::{Layer, Mode, Pooling};
//! use ndarray::Array4;
//! let mut pool = Pooling::new(2, 2, 2, 0);
//! let x = Array4::from_shape_vec((1, 1, 2, 4), vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 6.0]).unwrap();
//! let y = pool.forward(x.into_dyn(), Mode::Eval);
//! assert_eq!(y.into_raw_vec_and_offset().0, [5.0, 8.0]);
//! ```

use ndarray::{ArrayD, Axis, Ix4, NdFloat};

use super::im2col::{ImageShape, Window};
use super::{Layer, Mode, cached, check_dout_shape};
use crate::linalg::parallel_each;

/// Where a window's maximum was: the pixel's index within its channel plane (`y·W + x`).
const IN_PADDING: u32 = u32::MAX;

/// Max pooling over `PH × PW` windows.
#[derive(Debug, Clone)]
pub struct Pooling {
    window: Window,
    /// For every output `(N, C, OH, OW)`, the plane index of its maximum ([`IN_PADDING`] when
    /// it was padding), and the input shape.
    cache: Option<(Vec<u32>, ImageShape)>,
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
            cache: None,
        }
    }

    /// The maxima of one channel plane `x (H, W)` into `y (OH·OW)`, with their positions.
    fn pool_plane<A: NdFloat>(&self, x: &[A], (h, w): (usize, usize), y: &mut [A], at: &mut [u32]) {
        let Window {
            height: fh,
            width: fw,
            stride,
            pad,
        } = self.window;
        let (oh, ow) = self.window.output_size_or_panic("Pooling", (h, w));
        // The first maximum; a NaN wins and stays, so that it propagates. Written without
        // short-circuits so that it compiles to selects, not to branches mispredicted on
        // half the pixels.
        let better = |v: A, best: A| (v > best) | (v.is_nan() & !best.is_nan());
        if (fh, fw, stride, pad) == (2, 2, 2, 0) {
            // The book's 2×2 pooling: the two image rows of each output row side by side.
            for oy in 0..oh {
                let top = 2 * oy * w;
                let (r0, r1) = (&x[top..top + w], &x[top + w..top + 2 * w]);
                for (ox, (a, b)) in r0
                    .chunks_exact(2)
                    .zip(r1.chunks_exact(2))
                    .take(ow)
                    .enumerate()
                {
                    let start = top + 2 * ox;
                    let (mut best, mut best_at) = (a[0], start);
                    for (v, i) in [(a[1], start + 1), (b[0], start + w), (b[1], start + w + 1)] {
                        let take = better(v, best);
                        best = if take { v } else { best };
                        best_at = if take { i } else { best_at };
                    }
                    y[oy * ow + ox] = best;
                    at[oy * ow + ox] = best_at as u32;
                }
            }
            return;
        }
        if pad == 0 {
            // Every window inside the image: start from its first pixel.
            for oy in 0..oh {
                for ox in 0..ow {
                    let start = oy * stride * w + ox * stride;
                    let (mut best, mut best_at) = (x[start], start);
                    for row in (start..).step_by(w).take(fh) {
                        for (i, &v) in x[row..row + fw].iter().enumerate() {
                            let take = better(v, best);
                            best = if take { v } else { best };
                            best_at = if take { row + i } else { best_at };
                        }
                    }
                    y[oy * ow + ox] = best;
                    at[oy * ow + ox] = best_at as u32;
                }
            }
            return;
        }
        let full = fh * fw;
        for oy in 0..oh {
            let (ky, y0) = self.window.inside(oy, fh, h);
            for ox in 0..ow {
                let (kx, x0) = self.window.inside(ox, fw, w);
                // A window reaching into the padding has 0 among its values; one that does
                // not starts from its first pixel.
                let (mut best, mut best_at) = (A::zero(), IN_PADDING);
                let mut first = ky.len() * kx.len() == full;
                for row in y0..y0 + ky.len() {
                    for col in x0..x0 + kx.len() {
                        let v = x[row * w + col];
                        if first || better(v, best) {
                            (best, best_at, first) = (v, (row * w + col) as u32, false);
                        }
                    }
                }
                y[oy * ow + ox] = best;
                at[oy * ow + ox] = best_at;
            }
        }
    }
}

impl<A: NdFloat> Layer<A> for Pooling {
    fn kind(&self) -> &'static str {
        "Pool"
    }

    #[track_caller]
    fn forward(&mut self, x: ArrayD<A>, _mode: Mode) -> ArrayD<A> {
        let shape = x.shape().to_vec();
        let x = x.into_dimensionality::<Ix4>().unwrap_or_else(|_| {
            panic!("Pooling::forward: input of shape {shape:?} is not (N, C, H, W)")
        });
        let (n, c, h, w) = x.dim();
        let (oh, ow) = self.window.output_size_or_panic("Pooling::forward", (h, w));
        let x = x.as_standard_layout();
        let mut y = ndarray::Array3::<A>::zeros((n * c, oh, ow));
        let mut at = vec![0u32; n * c * oh * ow];
        let planes = x.to_shape((n * c, h * w)).expect("standard layout");
        let jobs: Vec<_> = y
            .outer_iter_mut()
            .zip(at.chunks_mut(oh * ow))
            .zip(planes.axis_iter(Axis(0)))
            .collect();
        parallel_each(jobs, |((mut y, at), plane)| {
            let plane = plane.to_slice().expect("standard layout");
            self.pool_plane(plane, (h, w), y.as_slice_mut().expect("fresh"), at);
        });
        self.cache = Some((at, (n, c, h, w)));
        y.into_shape_with_order(vec![n, c, oh, ow])
            .expect("planes back into images")
    }

    #[track_caller]
    fn backward(&mut self, dout: ArrayD<A>) -> ArrayD<A> {
        let (at, (n, c, h, w)) = cached(&self.cache, "Pooling");
        let (oh, ow) = self.window.output_size_or_panic("Pooling", (*h, *w));
        check_dout_shape("Pooling", &[*n, *c, oh, ow], dout.shape());
        let dout = dout.as_standard_layout();
        let dout = dout.as_slice().expect("standard layout");
        let mut dx = vec![A::zero(); n * c * h * w];
        // Each window's gradient goes to where its maximum was (adding up where windows share it).
        for ((plane, at), g) in dx
            .chunks_mut(h * w)
            .zip(at.chunks(oh * ow))
            .zip(dout.chunks(oh * ow))
        {
            for (&i, &g) in at.iter().zip(g) {
                if i != IN_PADDING {
                    plane[i as usize] += g;
                }
            }
        }
        ArrayD::from_shape_vec(vec![*n, *c, *h, *w], dx).expect("one gradient per pixel")
    }

    fn branches(&self) -> Option<ArrayD<bool>> {
        let (at, (n, c, h, w)) = self.cache.as_ref()?;
        let mut chosen = ArrayD::from_elem(vec![n * c, h * w], false);
        let (oh, ow) = self.window.output_size((*h, *w))?;
        for (p, at) in at.chunks(oh * ow).enumerate() {
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
