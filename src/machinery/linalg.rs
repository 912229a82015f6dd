//! Matrix products for the layers.
//!
//! [`matmul`]: `C ← A·B` (or `C ← C + A·B`) by faer's GEMM, the fastest option measured on
//! this project's shapes (63 GFLOP/s single-threaded on 100×784·784×50 against 37 for
//! ndarray's matrixmultiply, on the Skylake-SP machine of BENCHMARKS.md's GEMM ceilings).
//! `A` and `B` may be transposed views: no copy is made.
//!
//! Results do not depend on the thread count: every output element is computed by one thread
//! with its additions in the same order whatever the thread count (faer splits `C`, never
//! the sum over `k`), so `--threads 1` and `--threads 2` give the same bits.
//!
//! After every faer product the upper halves of the AVX registers are cleared
//! (`vzeroupper`): left dirty, they made every legacy-SSE instruction that
//! followed stall (softmax right after a product ran up to 25× slower than on its own).

use std::any::TypeId;

use ndarray::{ArrayView2, ArrayViewMut2, NdFloat};

use super::parallel::threads;

/// Below this many multiply-adds (16 M) a product runs on one thread. Measured on the pool:
/// W3's 128×1000·1000×10 products (1.3 M) took up to three times longer on two threads; the
/// book's 100×784·784×50 (3.9 M) gained nothing that outlasted the machine's noise (W2 with a
/// 2 M threshold: 0.98 × the time over 11 alternating runs), and split products allocate
/// rayon's job records, which a W2 step otherwise does without (`tests/allocations.rs`).
const PARALLEL_MIN_WORK: usize = 1 << 24;

/// `C ← A·B`, or `C ← C + A·B` when `accumulate`; `A (m, k)`, `B (k, n)`, `C (m, n)`.
///
/// Products of at least 16 M multiply-adds run on [`threads`] threads by
/// faer's parallel GEMM on rayon's pool: it splits `C` into tiles, each computed by one
/// thread with the additions in the same order as on one thread, so the bits do not depend on
/// the thread count (tested below).
///
/// # Panics
/// When the shapes do not chain.
#[track_caller]
pub fn matmul<A: NdFloat>(
    a: ArrayView2<'_, A>,
    b: ArrayView2<'_, A>,
    mut c: ArrayViewMut2<'_, A>,
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
    if a.is_empty() || b.is_empty() || c.is_empty() {
        if !accumulate {
            c.fill(A::zero());
        }
        return;
    }
    let par = match threads() {
        threads if threads > 1 && m * k * n >= PARALLEL_MIN_WORK => faer::Par::rayon(threads),
        _ => faer::Par::Seq,
    };
    if TypeId::of::<A>() == TypeId::of::<f32>() {
        // SAFETY: A is f32, so the views have the element type they are cast to.
        unsafe { faer_gemm::<f32>(cast(a), cast(b), cast_mut(c), accumulate, 1.0, par) }
    } else if TypeId::of::<A>() == TypeId::of::<f64>() {
        // SAFETY: A is f64.
        unsafe { faer_gemm::<f64>(cast(a), cast(b), cast_mut(c), accumulate, 1.0, par) }
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
    par: faer::Par,
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
    faer::linalg::matmul::matmul(fc, accum, fa, fb, one, par);
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
        // Odd sizes, and the two hidden layers of W3 (784-1000-1000-10, batch 128), all above
        // the parallel threshold; on 2, 3 and 4 threads, inside the pool and outside.
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
}
