//! `im2col` and `col2im` (§7.4.3): convolution and pooling as matrix products.
//!
//! `im2col` unfolds every filter-sized window of a batch of images into one row, so that a
//! convolution becomes one product with the filters laid out as columns:
//!
//! ```text
//! x (N, C, H, W),  window FH×FW,  stride S,  padding P
//! OH = ⌊(H + 2P − FH)/S⌋ + 1,  OW = ⌊(W + 2P − FW)/S⌋ + 1
//! col[(n·OH + oy)·OW + ox,  (c·FH + ky)·FW + kx] = x[n, c, oy·S + ky − P, ox·S + kx − P]
//!                                                   (0 where that falls in the padding)
//! col (N·OH·OW, C·FH·FW)
//! ```
//!
//! `col2im` is its adjoint, used in backward passes: each entry of `col` is added back to the
//! pixel it came from, so pixels shared by overlapping windows **accumulate** their gradients
//! (the book's `img[…] += col[…]`), and padding entries are dropped.
//!
//! Both work image by image ([`im2col_image`], [`col2im_image`]), the images of a batch split
//! among threads; each image's output is written by one thread in a fixed order, so results
//! do not depend on the thread count. Per image they use the transposed layout
//! `colᵀ (C·FH·FW, OH·OW)`, in which a window element's values over an output row are read from
//! one image row: with stride 1, one contiguous copy of up to OW values, and with the "same"
//! padding `2P = FW − 1` (3×3 windows with `P = 1`), one copy for all the rows of a window
//! element.

use ndarray::{Array2, Array4, ArrayView2, ArrayView4, Axis, NdFloat};

use crate::machinery::cost::Work;
use crate::machinery::parallel::parallel_each;

/// The shape `(N, C, H, W)` of a batch of images.
pub type ImageShape = (usize, usize, usize, usize);

/// A window's geometry: its size, stride and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Window height `FH`.
    pub height: usize,
    /// Window width `FW`.
    pub width: usize,
    /// Stride `S`.
    pub stride: usize,
    /// Zero padding `P` on every side.
    pub pad: usize,
}

impl Window {
    /// The output size `(OH, OW)` for an input `(H, W)`: `⌊(H + 2P − FH)/S⌋ + 1` as the
    /// book's `1 + (H + 2*pad - filter_h) // stride`, or `None` when the window is larger than
    /// the padded image or the stride is 0.
    pub fn output_size(&self, (h, w): (usize, usize)) -> Option<(usize, usize)> {
        let along = |size: usize, window: usize| {
            let span = self
                .pad
                .checked_mul(2)?
                .checked_add(size)?
                .checked_sub(window)?;
            (self.stride > 0).then(|| span / self.stride + 1)
        };
        Some((along(h, self.height)?, along(w, self.width)?))
    }

    /// `(OH, OW)` for `(h, w)`.
    ///
    /// # Panics
    /// Naming `layer` and the shapes when the window does not fit.
    #[track_caller]
    pub(crate) fn output_size_or_panic(
        &self,
        layer: &str,
        (h, w): (usize, usize),
    ) -> (usize, usize) {
        self.output_size((h, w)).unwrap_or_else(|| {
            panic!(
                "{layer}: a {}×{} window with stride {} and padding {} does not fit a {h}×{w} image",
                self.height, self.width, self.stride, self.pad
            )
        })
    }

    /// For output column `ox` (or row), the window offsets `k` whose pixel `ox·S + k − P` lies
    /// inside a side of `size` pixels, as a range, with the pixel of its first offset.
    pub(crate) fn inside(
        &self,
        o: usize,
        window: usize,
        size: usize,
    ) -> (std::ops::Range<usize>, usize) {
        let start = o * self.stride;
        let first = self.pad.saturating_sub(start).min(window);
        let last = (size + self.pad)
            .saturating_sub(start)
            .min(window)
            .max(first);
        (first..last, (start + first).saturating_sub(self.pad))
    }
}

/// Unfolds `x (N, C, H, W)` into `col (N·OH·OW, C·FH·FW)`.
///
/// # Panics
/// When the window does not fit the images.
#[track_caller]
pub fn im2col<A: NdFloat>(x: ArrayView4<'_, A>, window: Window) -> Array2<A> {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = window.output_size_or_panic("im2col", (h, w));
    let k = c * window.height * window.width;
    let mut col = Array2::zeros((n * oh * ow, k));
    let x = x.as_standard_layout();
    let work = Work::bytes(2 * col.len() * size_of::<A>());
    let jobs: Vec<_> = col
        .axis_chunks_iter_mut(Axis(0), oh * ow)
        .zip(x.outer_iter())
        .collect();
    parallel_each(jobs, work, |(mut rows, image)| {
        let mut col_t = Array2::zeros((k, oh * ow));
        let image = image.to_slice().expect("standard layout");
        im2col_image(
            image,
            (c, h, w),
            window,
            col_t.as_slice_mut().expect("fresh"),
        );
        rows.assign(&col_t.t());
    });
    col
}

/// One image `x (C, H, W)`, as a slice, unfolded into `colᵀ (C·FH·FW, OH·OW)`: one row per
/// window element, one column per window (the transpose of its rows of [`im2col`], the
/// layout in which every copy is a run along image rows). Padding entries outside the copied
/// blocks are not written: `col_t` must be zero there, as a fresh buffer, or one filled before
/// for the same shapes, is.
///
/// # Panics
/// When the slices do not have the sizes the shapes give.
pub fn im2col_image<A: NdFloat>(
    x: &[A],
    (c, h, w): (usize, usize, usize),
    window: Window,
    col_t: &mut [A],
) {
    let (oh, ow) = window.output_size_or_panic("im2col", (h, w));
    assert!(
        x.len() == c * h * w && col_t.len() == c * window.height * window.width * oh * ow,
        "im2col_image: sizes"
    );
    for_each_block(window, (c, h, w), (oh, ow), |pixel, entry, len, gaps| {
        let (src, dst) = (&x[pixel..], &mut col_t[entry..entry + len]);
        if window.stride == 1 {
            dst.copy_from_slice(&src[..len]);
        } else {
            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(window.stride)) {
                *d = v;
            }
        }
        for gap in gaps {
            zero_few(&mut col_t[gap]);
        }
    });
}

/// Folds `col (N·OH·OW, C·FH·FW)` back into images of `shape (N, C, H, W)`, adding entries
/// that come from the same pixel.
///
/// # Panics
/// When `col` does not have the shape `im2col` gives for `shape` and `window`.
#[track_caller]
pub fn col2im<A: NdFloat>(col: ArrayView2<'_, A>, shape: ImageShape, window: Window) -> Array4<A> {
    let (n, c, h, w) = shape;
    let (oh, ow) = window.output_size_or_panic("col2im", (h, w));
    assert_eq!(
        col.dim(),
        (n * oh * ow, c * window.height * window.width),
        "col2im: col has shape {:?}, not the im2col shape for images {shape:?}",
        col.shape()
    );
    let mut img = Array4::zeros(shape);
    let work = Work::bytes(2 * col.len() * size_of::<A>());
    let jobs: Vec<_> = img
        .outer_iter_mut()
        .zip(col.axis_chunks_iter(Axis(0), oh * ow))
        .collect();
    parallel_each(jobs, work, |(mut image, rows)| {
        let image = image.as_slice_mut().expect("an image of a fresh array");
        let mut col_t = rows.t().as_standard_layout().into_owned();
        col2im_image(
            col_t.as_slice_mut().expect("fresh"),
            (c, h, w),
            window,
            image,
        );
    });
    img
}

/// Adds one image's `colᵀ (C·FH·FW, OH·OW)` (the layout of [`im2col_image`]) into
/// `x (C, H, W)`, as a slice. Entries of `col_t` in the padding, which have no pixel, are
/// set to 0 on the way.
///
/// # Panics
/// When the slices do not have the sizes the shapes give.
pub fn col2im_image<A: NdFloat>(
    col_t: &mut [A],
    (c, h, w): (usize, usize, usize),
    window: Window,
    x: &mut [A],
) {
    let (oh, ow) = window.output_size_or_panic("col2im", (h, w));
    assert!(
        x.len() == c * h * w && col_t.len() == c * window.height * window.width * oh * ow,
        "col2im_image: sizes"
    );
    for_each_block(window, (c, h, w), (oh, ow), |pixel, entry, len, gaps| {
        for gap in gaps {
            zero_few(&mut col_t[gap]);
        }
        let (dst, src) = (&mut x[pixel..], &col_t[entry..entry + len]);
        if window.stride == 1 {
            for (d, &v) in dst[..len].iter_mut().zip(src) {
                *d += v;
            }
        } else {
            for (d, &v) in dst.iter_mut().step_by(window.stride).zip(src) {
                *d += v;
            }
        }
    });
}

/// Calls `f(pixel, entry, len, gaps)` for every block of `colᵀ` read along the image in one
/// go: window element `(ch, ky, kx)` reads `x[pixel + i·S]` into `colᵀ[entry + i]`, for
/// `i < len`, except at the entries of `gaps`, which lie in the padding.
///
/// A block is one run along an image row: for output row `oy`, the outputs `ox` whose pixel
/// lies inside the image. With stride 1 and as many output columns as image columns (the
/// "same" padding `2P = FW − 1`, e.g. 3×3 windows with `P = 1`), the runs of a window element
/// are `W` apart both in `x` and in `colᵀ`, so they form one block: one copy instead of one
/// per output row (a call per run of 7–28 values cost more than its copy), with the
/// entries between two runs, which the block would take from the neighbouring image row, as
/// its gaps.
fn for_each_block(
    window: Window,
    (c, h, w): (usize, usize, usize),
    (oh, ow): (usize, usize),
    mut f: impl FnMut(usize, usize, usize, Gaps),
) {
    let Window {
        height: fh,
        width: fw,
        stride,
        pad,
    } = window;
    // The outputs o with 0 ≤ o·S + k − P < size, for window offset k.
    let inside = |k: usize, size: usize, outputs: usize| {
        let first = pad.saturating_sub(k).div_ceil(stride);
        first..(size + pad).saturating_sub(k).div_ceil(stride).min(outputs)
    };
    for ch in 0..c {
        for ky in 0..fh {
            let rows = inside(ky, h, oh);
            for kx in 0..fw {
                let (columns, entry) = (inside(kx, w, ow), ((ch * fh + ky) * fw + kx) * oh * ow);
                if columns.is_empty() || rows.is_empty() {
                    continue;
                }
                let at = |oy: usize| {
                    let pixel = (ch * h + oy * stride + ky - pad) * w + columns.start * stride;
                    (pixel + kx - pad, entry + oy * ow + columns.start)
                };
                let run = columns.len();
                if stride == 1 && ow == w {
                    let (pixel, start) = at(rows.start);
                    let gaps = Gaps {
                        next: entry + rows.start * ow + columns.end,
                        count: if run < ow { rows.len() - 1 } else { 0 },
                        len: ow - run,
                        step: ow,
                    };
                    f(pixel, start, (rows.len() - 1) * ow + run, gaps);
                } else {
                    for oy in rows.clone() {
                        let (pixel, start) = at(oy);
                        f(pixel, start, run, Gaps::NONE);
                    }
                }
            }
        }
    }
}

/// `entries ← 0`, for the few entries (`≤ P`) of a gap: one store each, where the call
/// to `memset` that `fill` becomes cost more than the entries.
fn zero_few<A: NdFloat>(entries: &mut [A]) {
    for entry in entries {
        // `black_box` keeps the compiler from turning this loop back into a call to `memset`.
        *std::hint::black_box(entry) = A::zero();
    }
}

/// The entries of a block of `colᵀ` that lie in the padding: `count` ranges of `len`
/// entries, `step` apart, from `next` on.
struct Gaps {
    next: usize,
    count: usize,
    len: usize,
    step: usize,
}

impl Gaps {
    const NONE: Gaps = Gaps {
        next: 0,
        count: 0,
        len: 0,
        step: 0,
    };
}

impl Iterator for Gaps {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.count > 0).then(|| {
            let gap = self.next..self.next + self.len;
            (self.next, self.count) = (self.next + self.step, self.count - 1);
            gap
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    /// The definition, element by element.
    fn naive(x: &Array4<f64>, window: Window) -> Array2<f64> {
        let (n, c, h, w) = x.dim();
        let (oh, ow) = window.output_size((h, w)).unwrap();
        let (fh, fw, s, p) = (window.height, window.width, window.stride, window.pad);
        Array2::from_shape_fn((n * oh * ow, c * fh * fw), |(r, k)| {
            let (i, oy, ox) = (r / (oh * ow), r / ow % oh, r % ow);
            let (ch, ky, kx) = (k / (fh * fw), k / fw % fh, k % fw);
            let (y, xx) = (
                (oy * s + ky) as isize - p as isize,
                (ox * s + kx) as isize - p as isize,
            );
            if y < 0 || xx < 0 || y as usize >= h || xx as usize >= w {
                0.0
            } else {
                x[[i, ch, y as usize, xx as usize]]
            }
        })
    }

    #[test]
    fn the_books_shapes() {
        // §7.4.3: x1 (1, 3, 7, 7) with 5×5 windows → (9, 75); x2 (10, 3, 7, 7) → (90, 75).
        let window = Window {
            height: 5,
            width: 5,
            stride: 1,
            pad: 0,
        };
        let x1 = Array4::<f64>::zeros((1, 3, 7, 7));
        assert_eq!(im2col(x1.view(), window).dim(), (9, 75));
        let x2 = Array4::<f64>::zeros((10, 3, 7, 7));
        assert_eq!(im2col(x2.view(), window).dim(), (90, 75));
    }

    #[test]
    fn unfolds_windows_with_padding_by_hand() {
        // x = [[1 2], [3 4]], 2×2 windows, stride 1, padding 1 → 3×3 windows;
        // the top-left window sees [0 0; 0 1], the centre one the whole image.
        let x = Array::from_shape_vec((1, 1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let window = Window {
            height: 2,
            width: 2,
            stride: 1,
            pad: 1,
        };
        let col = im2col(x.view(), window);
        assert_eq!(col.dim(), (9, 4));
        assert_eq!(col.row(0).to_vec(), [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(col.row(4).to_vec(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(col.row(8).to_vec(), [4.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn agrees_with_the_definition_for_every_geometry() {
        let x: Array4<f64> = crate::gradient::standard_normal(&[2, 3, 7, 6], 1)
            .into_dimensionality()
            .unwrap();
        for (size, stride, pad) in [
            (1, 1, 0),
            (3, 1, 1),
            (3, 2, 1),
            (2, 2, 0),
            (3, 3, 2),
            (5, 1, 2),
            (4, 3, 3),
        ] {
            let window = Window {
                height: size,
                width: size,
                stride,
                pad,
            };
            assert_eq!(im2col(x.view(), window), naive(&x, window), "{window:?}");
        }
    }

    #[test]
    fn windows_of_other_shapes_and_a_reused_buffer_agree_with_the_definition() {
        // 1×3 with P = 1: whole blocks whose first and last output rows see only padding;
        // 3×1 with P = 1: runs; 5×5 with P = 2: blocks with gaps of two.
        for (height, width, pad) in [(1, 3, 1), (3, 1, 1), (5, 5, 2)] {
            let window = Window {
                height,
                width,
                stride: 1,
                pad,
            };
            let (oh, ow) = window.output_size((7, 6)).unwrap();
            let mut col_t = vec![0.0; 3 * height * width * oh * ow];
            for seed in [1, 2] {
                let x: Array4<f64> = crate::gradient::standard_normal(&[1, 3, 7, 6], seed)
                    .into_dimensionality()
                    .unwrap();
                // The second image goes into the buffer the first one filled.
                im2col_image(x.as_slice().unwrap(), (3, 7, 6), window, &mut col_t);
                let want = naive(&x, window).reversed_axes();
                assert_eq!(
                    col_t,
                    want.iter().copied().collect::<Vec<_>>(),
                    "{window:?}"
                );
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_and_accumulates_overlaps() {
        // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for any x and c: col2im adds, never overwrites.
        for (size, stride, pad) in [(3, 1, 1), (3, 2, 2), (2, 2, 0)] {
            let window = Window {
                height: size,
                width: size,
                stride,
                pad,
            };
            let x: Array4<f64> = crate::gradient::standard_normal(&[2, 2, 5, 5], 1)
                .into_dimensionality()
                .unwrap();
            let col = im2col(x.view(), window);
            let c: Array2<f64> = crate::gradient::standard_normal(col.shape(), 2)
                .into_dimensionality()
                .unwrap();
            let lhs = (&col * &c).sum();
            let rhs = (&x * &col2im(c.view(), (2, 2, 5, 5), window)).sum();
            assert!((lhs - rhs).abs() < 1e-12, "{window:?}: {lhs} vs {rhs}");
        }
        // A pixel in the middle of a 4×4 image is in all nine 3×3 windows around it.
        let window = Window {
            height: 3,
            width: 3,
            stride: 1,
            pad: 1,
        };
        let ones = Array2::<f64>::ones((2 * 16, 2 * 9));
        assert_eq!(col2im(ones.view(), (2, 2, 4, 4), window)[[0, 0, 1, 1]], 9.0);
    }

    #[test]
    fn output_sizes_floor_like_the_book() {
        let window = Window {
            height: 3,
            width: 3,
            stride: 2,
            pad: 0,
        };
        assert_eq!(window.output_size((7, 7)), Some((3, 3)));
        assert_eq!(window.output_size((6, 6)), Some((2, 2)));
        assert_eq!(window.output_size((2, 2)), None);
    }
}
