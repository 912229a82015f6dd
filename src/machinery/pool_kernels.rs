//! Max pooling's window scans, for [`crate::layers::Pooling`].
//!
//! Each output is the maximum of its window, read straight from the channel plane (no im2col
//! rows), with the position of that maximum kept for backward. Written with selects, not
//! branches: which of a window's pixels is largest is a coin flip the branch predictor cannot
//! learn. The book's 2×2 windows with stride 2 take a path whose loop along an output row runs
//! in SIMD lanes (compiled for AVX-512 and AVX2, picked at run time); windows that reach into
//! the padding count it as 0 and record [`IN_PADDING`].

use ndarray::{Array3, ArrayD, ArrayView4, Axis, NdFloat};

use super::cost::Work;
use super::parallel::parallel_each;
use crate::layers::Window;

/// Where a window's maximum was, when it was padding; otherwise the pixel's index within its
/// channel plane (`y·W + x`).
pub const IN_PADDING: u32 = u32::MAX;

/// The maxima of every window of `x (N, C, H, W)`, as `(N·C, OH, OW)`, and the plane index of
/// each (the planes shared among the cores).
pub fn max_pool<A: NdFloat>(x: ArrayView4<'_, A>, window: Window) -> (Array3<A>, Vec<u32>) {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = window.output_size_or_panic("Pooling::forward", (h, w));
    let x = x.as_standard_layout();
    let mut y = Array3::<A>::zeros((n * c, oh, ow));
    let mut at = vec![0u32; n * c * oh * ow];
    let planes = x.to_shape((n * c, h * w)).expect("standard layout");
    let work = Work::bytes(x.len() * size_of::<A>() + y.len() * (4 + size_of::<A>()));
    let jobs: Vec<_> = y
        .outer_iter_mut()
        .zip(at.chunks_mut(oh * ow))
        .zip(planes.axis_iter(Axis(0)))
        .collect();
    parallel_each(jobs, work, |((mut y, at), plane)| {
        let plane = plane.to_slice().expect("standard layout");
        max_pool_plane(window, plane, (h, w), y.as_slice_mut().expect("fresh"), at);
    });
    (y, at)
}

/// `∂L/∂x (N, C, H, W)`: each window's `∂L/∂y` added to the pixel at `at` (nothing for
/// [`IN_PADDING`]); `dout` is `(N·C, OH·OW)` in standard layout.
pub fn route_to_maxima<A: NdFloat>(
    dout: &[A],
    at: &[u32],
    (n, c, h, w): (usize, usize, usize, usize),
) -> ArrayD<A> {
    let per_plane = (at.len() / (n * c).max(1)).max(1);
    let mut dx = vec![A::zero(); n * c * h * w];
    let work = Work::bytes(dx.len() * size_of::<A>() + at.len() * (4 + size_of::<A>()));
    let jobs: Vec<_> = dx
        .chunks_mut(h * w)
        .zip(at.chunks(per_plane))
        .zip(dout.chunks(per_plane))
        .collect();
    parallel_each(jobs, work, |((plane, at), g)| {
        for (&i, &g) in at.iter().zip(g) {
            if i != IN_PADDING {
                plane[i as usize] += g;
            }
        }
    });
    ArrayD::from_shape_vec(vec![n, c, h, w], dx).expect("one gradient per pixel")
}

/// The book's pooling window: 2×2, stride 2, no padding.
const BOOK: Window = Window {
    height: 2,
    width: 2,
    stride: 2,
    pad: 0,
};

/// The maxima of one channel plane `x (H, W)` into `y (OH·OW)`, with their positions.
fn max_pool_plane<A: NdFloat>(
    window: Window,
    x: &[A],
    (h, w): (usize, usize),
    y: &mut [A],
    at: &mut [u32],
) {
    let (fh, fw, stride, pad) = (window.height, window.width, window.stride, window.pad);
    let (oh, ow) = window.output_size_or_panic("Pooling", (h, w));
    if window == BOOK {
        return max_pool_2x2(x, w, (y, at));
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
        let (ky, y0) = window.inside(oy, fh, h);
        for ox in 0..ow {
            let (kx, x0) = window.inside(ox, fw, w);
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

/// Whether `v` replaces `best` in a scan for the first maximum: larger, or a NaN where `best`
/// is none (a NaN wins and stays, so that it propagates). Without short-circuits, so that it
/// compiles to selects, not to branches mispredicted on half the pixels.
#[inline(always)]
fn better<A: NdFloat>(v: A, best: A) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// The book's 2×2 pooling with stride 2 of one plane `x (H, W)` into `y` and `at` (`(OH·OW)`
/// each): every output from its four pixels in the order of a row-by-row scan, with selects
/// only, so that the loop along an output row runs in SIMD lanes (compiled for AVX-512 and
/// AVX2 as well, picked at run time). In a profile of SimpleConvNet's step on one thread,
/// pooling went from 13 % of the time (a scan of the upper row, then the lower one, in SSE
/// code) to 5 %.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn max_pool_2x2<A: NdFloat>(x: &[A], w: usize, (y, at): (&mut [A], &mut [u32])) {
    let (ow, down) = (w / 2, w as u32);
    for (oy, (y, at)) in y
        .chunks_exact_mut(ow)
        .zip(at.chunks_exact_mut(ow))
        .enumerate()
    {
        let top = 2 * oy * w;
        let (upper, lower) = (&x[top..top + 2 * ow], &x[top + w..top + w + 2 * ow]);
        let (y, at) = (&mut y[..ow], &mut at[..ow]);
        for ox in 0..ow {
            let (v, i) = (upper[2 * ox], 0);
            let (v, i) = keep_first_max((v, i), (upper[2 * ox + 1], 1));
            let (v, i) = keep_first_max((v, i), (lower[2 * ox], down));
            let (v, i) = keep_first_max((v, i), (lower[2 * ox + 1], down + 1));
            y[ox] = v;
            at[ox] = (top + 2 * ox) as u32 + i;
        }
    }
}

/// The maximum so far and its offset, or the next pixel and its offset where it is
/// [`better`].
#[inline(always)]
fn keep_first_max<A: NdFloat>((v, i): (A, u32), (p, offset): (A, u32)) -> (A, u32) {
    let take = better(p, v);
    (if take { p } else { v }, if take { offset } else { i })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    /// Every 2×2 window of values from {0, 1, NaN} (81 windows, ties and NaNs in every place)
    /// pooled as the book does: the first maximum in row-major order is kept, a NaN counting
    /// as larger than anything and the first NaN winning; in `f32` and `f64`, whose SIMD
    /// lanes differ.
    fn ties_and_nans_in<A: NdFloat>() {
        let values = [A::zero(), A::one(), A::nan()];
        let windows: Vec<[A; 4]> = (0..81)
            .map(|k: usize| [0, 1, 2, 3].map(|i| values[k / 3usize.pow(i) % 3]))
            .collect();
        // One image row of windows side by side: a 2 × 162 plane.
        let x = Array4::from_shape_fn((1, 1, 2, 162), |(_, _, r, c)| windows[c / 2][2 * r + c % 2]);
        let expected: Vec<u32> = windows
            .iter()
            .enumerate()
            .map(|(k, win)| {
                let first_nan = win.iter().position(|v| v.is_nan());
                let max = win.iter().copied().fold(A::neg_infinity(), A::max);
                let best = first_nan.unwrap_or_else(|| win.iter().position(|&v| v == max).unwrap());
                (2 * k + best % 2 + best / 2 * 162) as u32
            })
            .collect();
        let (y, at) = max_pool(x.view(), BOOK);
        assert_eq!(at, expected);
        for ((&v, &i), win) in y.iter().zip(&at).zip(&windows) {
            let plane = x.as_slice().unwrap();
            assert!(v == plane[i as usize] || (v.is_nan() && win.iter().any(|w| w.is_nan())));
        }
    }

    #[test]
    fn ties_and_nans_go_to_the_first_in_scan_order() {
        ties_and_nans_in::<f32>();
        ties_and_nans_in::<f64>();
        // Several output rows and an odd width (the last column in no window), with ties.
        let x = Array4::from_shape_fn((2, 1, 5, 7), |(n, _, r, c)| {
            ((n + r * 3 + c * 5) % 4) as f64
        });
        let (_, at) = max_pool(x.view(), BOOK);
        let scan: Vec<u32> = (0..2 * 2 * 3)
            .map(|k| {
                let (n, oy, ox) = (k / 6, k / 3 % 2, k % 3);
                let pixels = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .map(|(dy, dx)| (2 * oy + dy) * 7 + 2 * ox + dx);
                let plane = x.index_axis(ndarray::Axis(0), n);
                let plane = plane.as_slice().unwrap();
                let max = pixels
                    .iter()
                    .map(|&p| plane[p])
                    .fold(f64::NEG_INFINITY, f64::max);
                *pixels.iter().find(|&&p| plane[p] == max).unwrap() as u32
            })
            .collect();
        assert_eq!(at, scan);
    }
}
