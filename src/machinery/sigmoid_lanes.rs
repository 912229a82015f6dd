//! The sigmoid of a whole `f32` array in SIMD lanes, for [`crate::layers::Sigmoid`].
//!
//! `σ(x)` per element calls the C library's `expf`, one value at a time, which cannot run in
//! SIMD lanes; numpy's `exp` does, and a 784-300-100-10 sigmoid net's step was slower than
//! numpy's on an AVX-512 machine. Here `e^(−|x|)` is computed with plain `f32` arithmetic the
//! compiler can put in lanes (compiled for AVX-512 and AVX2 as well, picked at run time):
//! Cephes' `expf` (range reduction by `ln 2`, a degree-6 polynomial, the power of two built
//! from its bits), within 2 ulp of the correctly rounded `eˣ` (tested against `f64`'s `exp`
//! over 1,000,000 arguments). Written by hand because the crates with a SIMD `exp` (`wide`'s
//! vector types, for one) choose their instructions when they are compiled, so a portable
//! binary would run them in SSE lanes; as plain arithmetic it gets the lanes `multiversion`
//! picks at run time. `f64` arrays take [`crate::functions::sigmoid`].

use std::any::Any;

use ndarray::{ArrayD, NdFloat};

use crate::functions::{sigmoid, sigmoid_from};

/// `x ← σ(x)` for every element: in SIMD lanes for `f32`, else element by element.
pub fn sigmoid_in_place<A: NdFloat>(x: &mut ArrayD<A>) {
    let any: &mut dyn Any = x;
    match any
        .downcast_mut::<ArrayD<f32>>()
        .and_then(|x| x.as_slice_memory_order_mut())
    {
        Some(x) => sigmoid_f32(x),
        None => x.mapv_inplace(sigmoid),
    }
}

/// [`sigmoid_from`] every element and its `e^(−|x|)`, by [`exp_nonpositive`].
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn sigmoid_f32(xs: &mut [f32]) {
    for x in xs {
        *x = sigmoid_from(*x, exp_nonpositive(-x.abs()));
    }
}

/// `eˣ` for `x ≤ 0` (a NaN passes through): `eˣ = 2ⁿ · e^r` with `n` the integer nearest
/// `x / ln 2` and `r = x − n·ln 2` in `[−ln 2 / 2, ln 2 / 2]`, `e^r` by Cephes' polynomial.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    // Below −104, eˣ rounds to 0 in f32; clamping keeps n in i32 range (and −∞ out).
    let v = x.max(-104.0);
    // v / ln 2 rounded to the nearest integer: adding 1.5 · 2²³ leaves no fraction bits.
    const ROUND: f32 = 12_582_912.0;
    let n = (v * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 in two parts, the first exact in few bits, so that n · ln 2 loses nothing.
    let r = (v - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2ⁿ as two factors 2^(n/2), each a normal number even where 2ⁿ is not (n ≥ −150).
    let n = n as i32;
    let power = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e_r * power(n >> 1) * power(n - (n >> 1));
    if x.is_nan() { x } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place between `y` and the correctly rounded `want`.
    fn ulps(y: f32, want: f32) -> u32 {
        y.to_bits().abs_diff(want.to_bits())
    }

    #[test]
    fn exp_is_within_2_ulp_of_the_correctly_rounded_value() {
        // 1,000,000 arguments spread over [−110, 0], the subnormal results included.
        let worst = (0..=1_000_000)
            .map(|i| -110.0 * i as f32 / 1e6)
            .map(|x| (x, ulps(exp_nonpositive(x), f64::from(x).exp() as f32)))
            .max_by_key(|&(_, u)| u)
            .unwrap();
        assert!(worst.1 <= 2, "{worst:?}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[test]
    fn the_lanes_give_the_books_sigmoid() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 20.0).collect();
        let mut x = ArrayD::from_shape_vec(vec![xs.len()], xs.clone()).unwrap();
        sigmoid_in_place(&mut x);
        for (&y, &x) in x.iter().zip(&xs) {
            let want = (1.0 / (1.0 + (-f64::from(x)).exp())) as f32;
            assert!(ulps(y, want) <= 4, "σ({x}) = {y:e}, not {want:e}");
        }
        let mut special = ArrayD::from_shape_vec(
            vec![4],
            vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0],
        )
        .unwrap();
        sigmoid_in_place(&mut special);
        assert!(special[0].is_nan());
        assert_eq!(special.as_slice().unwrap()[1..], [1.0, 0.0, 0.5]);
        // f64 keeps the scalar formula, bit for bit.
        let mut x64 = ArrayD::from_shape_vec(vec![3], vec![-3.0, 0.5, 40.0]).unwrap();
        sigmoid_in_place(&mut x64);
        assert_eq!(x64.as_slice().unwrap(), [-3.0, 0.5, 40.0].map(sigmoid));
    }
}
