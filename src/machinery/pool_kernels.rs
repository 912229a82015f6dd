//! Max pooling's window scans, for [`crate::layers::Pooling`].
//!
//! Each output is the maximum of its window, read straight from the channel plane (no im2col
//! rows), with the position of that maximum kept for backward. Written with selects, not
//! branches: which of a window's pixels is largest is a coin flip the branch predictor cannot
//! learn. The book's 2×2 windows with stride 2 take a path that reads the two image rows of
//! an output row side by side; windows that reach into the padding count it as 0 and record
//! [`IN_PADDING`].

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
