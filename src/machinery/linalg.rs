//! Matrix products for the layers.
//!
//! [`matmul`]: `C ← A·B` (or `C ← C + A·B`) by faer's GEMM, the fastest option measured on
//! this project's shapes (63 GFLOP/s single-threaded on 100×784·784×50 against 37 for
//! ndarray's matrixmultiply, on the Skylake-SP machine of BENCHMARKS.md's GEMM ceilings).
//! `A` and `B` may be transposed views: no copy is made.
//!
//! Whether a product is split among threads is decided by the cost model of
//! [`super::cost`]; results do not depend on it: every output element is computed by one
//! thread with its additions in the same order whatever the split (the split cuts `C`, never
//! the sum over `k`), so `--threads 1` and `--threads 2` give the same bits.
//!
//! After every faer product the upper halves of the AVX registers are cleared
//! (`vzeroupper`): left dirty, they made every legacy-SSE instruction that
//! followed stall (softmax right after a product ran up to 25× slower than on its own).

use std::any::TypeId;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, NdFloat, ShapeBuilder};

use super::cost::{self, Work};

/// The fewest rows (or columns) of `C` a part of a split product gets: a whole panel of
/// faer's kernels, and never the single row or column for which faer would take its
/// matrix-vector path, whose additions come in another order.
const MIN_PART: usize = 16;

/// The fewest multiply-adds a part of a split product gets: above the 4096 under which faer
/// takes its small-product kernels (another order of additions again).
const MIN_PART_WORK: usize = 8192;

/// `C ← A·B`, or `C ← C + A·B` when `accumulate`; `A (m, k)`, `B (k, n)`, `C (m, n)`.
///
/// A product large enough for splitting to pay ([`cost::threads_for`]) is cut along the
/// longer side of `C` into one block of rows (or columns) per thread, each block a
/// single-threaded faer GEMM on rayon's pool. Every element of `C` is then computed by one
/// thread with its additions in the same order as unsplit (faer's kernels add over `k` in
/// chunks of 512 whatever the block's size), so the bits do not depend on the thread count
/// (tested below). Cutting `C` in blocks ran as fast as faer's own parallel GEMM or faster
/// on every shape measured (BENCHMARKS.md), and from far smaller products on.
///
/// # Panics
/// When the shapes do not chain.
#[track_caller]
pub fn matmul<A: NdFloat>(
    a: ArrayView2<'_, A>,
    b: ArrayView2<'_, A>,
    c: ArrayViewMut2<'_, A>,
    accumulate: bool,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(
        b.nrows() == k && c.dim() == (m, n),
        "matmul: A {:?} · B {:?} does not fit C {:?}",
        a.shape(),
        b.shape(),
        c.shape()
    );
    let work = Work::product(m, k, n, std::mem::size_of::<A>());
    let parts = cost::threads_for(work, (m.max(n) / MIN_PART).min(m * k * n / MIN_PART_WORK));
    split_product(a, b, c, accumulate, parts);
}

/// A `C (m, n)` whose every row is `row` (`n` values), for a product to be added to, in a
/// memory order free to choose (inference, where no backward pass reads `C`): column-major
/// when `C` has fewer columns than rows (but more than one), else row-major. Written in that
/// order, one run after another, with no zeroing first (assigning `row` to a column-major
/// array walked it across its columns, one stride-`m` store at a time).
///
/// faer's kernels cut the side of `C` that is contiguous in memory into SIMD vectors (16 `f32`
/// with AVX-512), so that side should be the longer one. `Y = X·W` of 250 images into 50
/// units, row-major, fills 50 of the 64 lanes it computes (78 %); column-major, 250 of 256.
/// Measured on 784-50-10's inference (AVX-512): the products' time 0.89 × (faer's packing of
/// the row-major `X` included), the whole pass 1.1 × the images per second. A single column
/// stays row-major: it is both orders at once, which buffers kept by order would not tell.
/// Both orders give the same bits: every element's sum over `k` runs in the same order
/// (tested in the layers).
pub fn product_output<A: NdFloat>(m: usize, row: ArrayView1<'_, A>) -> Array2<A> {
    let n = row.len();
    let mut values = Vec::with_capacity(m * n);
    let by_columns = 1 < n && n < m;
    if by_columns {
        row.iter()
            .for_each(|&v| values.extend(std::iter::repeat_n(v, m)));
    } else {
        (0..m).for_each(|_| values.extend(row.iter().copied()));
    }
    Array2::from_shape_vec((m, n).set_f(by_columns), values).expect("m rows of n values")
}

/// [`matmul`] in `parts` blocks of rows of `C` (or of columns, when `C` is wider than tall),
/// halved recursively with [`super::parallel::join`] (rayon's join, which allocates nothing,
/// timed for the cost model).
fn split_product<A: NdFloat>(
    a: ArrayView2<'_, A>,
    b: ArrayView2<'_, A>,
    c: ArrayViewMut2<'_, A>,
    accumulate: bool,
    parts: usize,
) {
    if parts <= 1 {
        return product(a, b, c, accumulate);
    }
    let (half, rows) = (parts / 2, c.nrows() >= c.ncols());
    let axis = if rows { Axis(0) } else { Axis(1) };
    let at = c.len_of(axis) * half / parts;
    let (c0, c1) = c.split_at(axis, at);
    let ((a0, b0), (a1, b1)) = if rows {
        let (a0, a1) = a.split_at(Axis(0), at);
        ((a0, b), (a1, b))
    } else {
        let (b0, b1) = b.split_at(Axis(1), at);
        ((a, b0), (a, b1))
    };
    super::parallel::join(
        || split_product(a0, b0, c0, accumulate, half),
        || split_product(a1, b1, c1, accumulate, parts - half),
    );
}

/// [`matmul`] on the calling thread alone.
fn product<A: NdFloat>(
    a: ArrayView2<'_, A>,
    b: ArrayView2<'_, A>,
    mut c: ArrayViewMut2<'_, A>,
    accumulate: bool,
) {
    if a.is_empty() || b.is_empty() || c.is_empty() {
        if !accumulate {
            c.fill(A::zero());
        }
        return;
    }
    if TypeId::of::<A>() == TypeId::of::<f32>() {
        // SAFETY: A is f32, so the views have the element type they are cast to.
        unsafe { faer_gemm::<f32>(cast(a), cast(b), cast_mut(c), accumulate, 1.0) }
    } else if TypeId::of::<A>() == TypeId::of::<f64>() {
        // SAFETY: A is f64.
        unsafe { faer_gemm::<f64>(cast(a), cast(b), cast_mut(c), accumulate, 1.0) }
    } else {
        let beta = if accumulate { A::one() } else { A::zero() };
        ndarray::linalg::general_mat_mul(A::one(), &a, &b, beta, &mut c);
    }
}

/// Clears the upper halves of the AVX registers (`vzeroupper`).
///
/// faer's x86 kernels (generated assembly) return with them dirty, and while they are, every
/// legacy-SSE instruction after them (most of this crate and libm's `expf`, compiled for plain
/// x86-64) pays a state-transition stall. Measured on W2: softmax with its 1,000 `exp` calls
/// took 25% of a training step before this call, about 1% after.
fn clear_upper_registers() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        unsafe { zero_upper() }
    }
}

/// `vzeroupper`, for [`clear_upper_registers`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper();
}

/// Reinterprets a view's element type.
///
/// # Safety
/// `A` and `T` must be the same type.
unsafe fn cast<'a, A: 'static, T: 'static>(a: ArrayView2<'a, A>) -> ArrayView2<'a, T> {
    debug_assert_eq!(TypeId::of::<A>(), TypeId::of::<T>());
    // SAFETY: A and T are the same type, so the two view types are the same type.
    unsafe { std::mem::transmute_copy(&a) }
}

/// [`cast`] for mutable views.
///
/// # Safety
/// `A` and `T` must be the same type.
unsafe fn cast_mut<'a, A: 'static, T: 'static>(a: ArrayViewMut2<'a, A>) -> ArrayViewMut2<'a, T> {
    debug_assert_eq!(TypeId::of::<A>(), TypeId::of::<T>());
    let a = std::mem::ManuallyDrop::new(a);
    // SAFETY: as for `cast`; the original is not used (nor dropped) again.
    unsafe { std::mem::transmute_copy(&*a) }
}

/// faer's GEMM on ndarray views (any strides, including transposed ones).
///
/// # Safety
/// The views must be valid (they are, coming from ndarray) and `c` must not alias `a` or `b`
/// (guaranteed by the borrow rules).
unsafe fn faer_gemm<T: faer::traits::ComplexField>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    one: T,
) {
    let view = |x: &ArrayView2<'_, T>| {
        let s = x.strides();
        // SAFETY: pointer, shape and strides describe a live ndarray view.
        unsafe { faer::MatRef::from_raw_parts(x.as_ptr(), x.nrows(), x.ncols(), s[0], s[1]) }
    };
    let (fa, fb) = (view(&a), view(&b));
    let (row_stride, col_stride) = (c.strides()[0], c.strides()[1]);
    // SAFETY: as above, and `c` is borrowed mutably for the duration.
    let fc = unsafe {
        faer::MatMut::from_raw_parts_mut(
            c.as_mut_ptr(),
            c.nrows(),
            c.ncols(),
            row_stride,
            col_stride,
        )
    };
    let accum = if accumulate {
        faer::Accum::Add
    } else {
        faer::Accum::Replace
    };
    faer::linalg::matmul::matmul(fc, accum, fa, fb, one, faer::Par::Seq);
    clear_upper_registers();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient::standard_normal;
    use crate::machinery::parallel::{on_thread_pool, set_threads};
    use ndarray::{Array2, s};

    fn random(shape: (usize, usize), seed: u64, zeros: f64) -> Array2<f64> {
        let a: Array2<f64> = standard_normal(&[shape.0, shape.1], seed)
            .into_dimensionality()
            .unwrap();
        let cut = standard_normal::<f64>(&[shape.0, shape.1], seed + 1);
        let mut a = a;
        a.zip_mut_with(
            &cut.into_dimensionality::<ndarray::Ix2>().unwrap(),
            |v, &c| {
                if c < zeros {
                    *v = 0.0;
                }
            },
        );
        a
    }

    #[test]
    fn products_match_ndarray() {
        let x = random((37, 53), 1, 0.3); // ~62% zeros
        let w = random((53, 19), 2, -10.0);
        let expected = x.dot(&w);
        let mut c = Array2::zeros((37, 19));
        matmul(x.view(), w.view(), c.view_mut(), false);
        assert!((&c - &expected).iter().all(|d| d.abs() < 1e-12));
        matmul(x.view(), w.view(), c.view_mut(), true);
        assert!((&c - &(&expected * 2.0)).iter().all(|d| d.abs() < 1e-12));
        // transposed operands are strided views, not copies
        let mut ct = Array2::zeros((19, 37));
        matmul(w.t(), x.t(), ct.view_mut(), false);
        assert!((&ct - &expected.t()).iter().all(|d| d.abs() < 1e-12));

        let mut part = Array2::zeros((10, 19));
        matmul(x.slice(s![..10, ..]), w.view(), part.view_mut(), false);
        assert!(
            (&part - &expected.slice(s![..10, ..]))
                .iter()
                .all(|d| d.abs() < 1e-12)
        );
    }

    /// An Affine layer's three products: `X·W`, `Xᵀ·dY`, `dY·Wᵀ` (transposes as views).
    fn affine_products(x: &Array2<f32>, w: &Array2<f32>, dy: &Array2<f32>) -> [Array2<f32>; 3] {
        let mut y = Array2::ones((x.nrows(), w.ncols()));
        matmul(x.view(), w.view(), y.view_mut(), true);
        let mut dw = Array2::zeros(w.raw_dim());
        matmul(x.t(), dy.view(), dw.view_mut(), false);
        let mut dx = Array2::zeros(x.raw_dim());
        matmul(dy.view(), w.t(), dx.view_mut(), false);
        [y, dw, dx]
    }

    #[test]
    fn results_are_the_same_bits_on_one_thread_and_many() {
        // Odd sizes, and the two hidden layers of W3 (784-1000-1000-10, batch 128), all large
        // enough to be split; on 2, 3 and 4 threads, inside the pool and outside.
        let f32s = |shape, seed| random(shape, seed, -10.0).mapv(|v| v as f32);
        // X (N, D), W (D, M), dY (N, M)
        let layer = |(n, d, m), seed| {
            (
                f32s((n, d), seed),
                f32s((d, m), seed + 1),
                f32s((n, m), seed + 2),
            )
        };
        let layers = [
            layer((600, 257, 131), 4),
            layer((128, 784, 1000), 7),
            layer((128, 1000, 1000), 10),
        ];
        // Other tests in this process may run meanwhile: they only get another speed.
        let run = |threads: usize| {
            set_threads(threads);
            layers
                .iter()
                .map(|(x, w, dy)| affine_products(x, w, dy))
                .collect::<Vec<_>>()
        };
        let one = run(1);
        for threads in [2, 3, 4] {
            assert!(run(threads) == one, "{threads} threads");
            let pooled = on_thread_pool(|| run(threads));
            assert!(pooled == one, "{threads} threads, on the pool");
        }
    }

    /// Every way of cutting a product gives the bits of the whole, whatever the cost model
    /// decides on this machine: odd shapes (rows or columns cut, remainders in the kernels'
    /// edge paths), `k` over faer's chunk of 512, transposed operands, `f32` and `f64`,
    /// replacing and accumulating.
    #[test]
    fn every_split_gives_the_bits_of_the_whole_product() {
        fn check<A: NdFloat>(a: ArrayView2<'_, A>, b: ArrayView2<'_, A>, c0: &Array2<A>) {
            for accumulate in [false, true] {
                let mut whole = c0.clone();
                split_product(a, b, whole.view_mut(), accumulate, 1);
                for parts in 2..=7 {
                    let mut split = c0.clone();
                    on_thread_pool(|| {
                        split_product(a, b, split.view_mut(), accumulate, parts);
                    });
                    assert!(
                        split == whole,
                        "{:?}·{:?} in {parts} parts",
                        a.shape(),
                        b.shape()
                    );
                }
            }
        }
        for (i, &(m, k, n)) in [
            (100, 784, 50),
            (50, 100, 784),
            (37, 1031, 213),
            (213, 1031, 37),
            (129, 17, 300),
            (64, 300, 100),
            (16, 144, 784),
        ]
        .iter()
        .enumerate()
        {
            let seed = 20 + 3 * i as u64;
            let (a, b, c0) = (
                random((m, k), seed, 0.0),
                random((k, n), seed + 1, -10.0),
                random((m, n), seed + 2, -10.0),
            );
            check(a.view(), b.view(), &c0);
            let (at, bt) = (a.t().to_owned(), b.t().to_owned());
            check(at.t(), bt.t(), &c0);
            let f = |x: &Array2<f64>| x.mapv(|v| v as f32);
            check(f(&a).view(), f(&b).view(), &f(&c0));
            check(f(&at).t(), f(&bt).t(), &f(&c0));
        }
    }
}
