//! Element-wise passes over a batch `(N, D)` with per-feature vectors (batch norm's
//! `x̂ = (x − μ)·s` and `y = γ ⊙ x̂ + β`), through memory in order whichever way the batch is
//! laid out.
//!
//! ndarray's `Zip` with vectors broadcast along the rows runs as fast as this on a row-major
//! batch, but 3 × slower on a column-major one (which inference's products give, see
//! [`super::linalg::product_output`]): it walks such a batch across its rows, or with a
//! stride of 0 in its inner loop, which the compiler does not vectorise. Here each row (or
//! column) is a slice, so the inner loop is unit-stride either way.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Zip};

/// `f(&mut out[n, d], x[n, d], a[d], b[d])` for every element: `x` is `out`'s own old value
/// when `None`.
///
/// # Panics
/// When the shapes differ.
#[track_caller]
pub fn per_feature<A: Copy>(
    mut out: ArrayViewMut2<'_, A>,
    x: Option<ArrayView2<'_, A>>,
    (a, b): (ArrayView1<'_, A>, ArrayView1<'_, A>),
    f: impl Fn(&mut A, A, A, A),
) {
    let (rows, d) = out.dim();
    assert!(
        a.len() == d && b.len() == d && x.as_ref().is_none_or(|x| x.dim() == (rows, d)),
        "per_feature: a batch {:?} with vectors of {} and {} and an input {:?}",
        out.shape(),
        a.len(),
        b.len(),
        x.as_ref().map(|x| x.shape())
    );
    // The memory of `out` and `x` as slices, when both are row-major or both column-major.
    let column_major = !out.is_standard_layout();
    let in_order = |v: ArrayView2<'_, A>| match column_major {
        false => v.is_standard_layout(),
        true => v.t().is_standard_layout(),
    };
    let x_slice = match &x {
        Some(x) if !in_order(x.view()) => None,
        Some(x) => x.to_slice_memory_order().map(Some),
        None => Some(None),
    };
    if let (true, Some(x), Some(a), Some(b)) =
        (in_order(out.view()), x_slice, a.as_slice(), b.as_slice())
    {
        let out = out
            .as_slice_memory_order_mut()
            .expect("a batch in row- or column-major order");
        if column_major {
            // Along each column, the vectors' entries are constant.
            for (d, column) in out.chunks_exact_mut(rows.max(1)).enumerate() {
                let (a, b) = (a[d], b[d]);
                match x {
                    None => column.iter_mut().for_each(|o| f(o, *o, a, b)),
                    Some(x) => {
                        let x = &x[d * rows..(d + 1) * rows];
                        column.iter_mut().zip(x).for_each(|(o, &v)| f(o, v, a, b));
                    }
                }
            }
        } else {
            // Along each row, the vectors' entries are contiguous too.
            for (n, row) in out.chunks_exact_mut(d.max(1)).enumerate() {
                let ab = a.iter().zip(b);
                match x {
                    None => row
                        .iter_mut()
                        .zip(ab)
                        .for_each(|(o, (&a, &b))| f(o, *o, a, b)),
                    Some(x) => {
                        let x = &x[n * d..(n + 1) * d];
                        let o = row.iter_mut().zip(x).zip(ab);
                        o.for_each(|((o, &v), (&a, &b))| f(o, v, a, b));
                    }
                }
            }
        }
        return;
    }
    // Other layouts (strided views, or `out` and `x` in two orders): ndarray's `Zip`.
    let zip = Zip::from(&mut out).and_broadcast(&a).and_broadcast(&b);
    match x {
        None => zip.for_each(|o, &a, &b| f(o, *o, a, b)),
        Some(x) => zip.and(&x).for_each(|o, &a, &b, &v| f(o, v, a, b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, ShapeBuilder};

    /// The same values as ndarray's broadcasting `Zip`, for a batch row-major, column-major,
    /// or neither (a strided view), in place or from another batch.
    #[test]
    fn every_layout_gives_the_broadcast_values() {
        let (n, d) = (7, 5);
        let value = |(i, j): (usize, usize)| (i * 13 + j * 7) as f64 * 0.37 - 3.0;
        let a = Array1::from_shape_fn(d, |j| 1.5 - j as f64 * 0.2);
        let b = Array1::from_shape_fn(d, |j| j as f64 * 0.9);
        let f = |o: &mut f64, v: f64, a: f64, b: f64| *o = (v - a) * b + 0.5;
        let mut expected = Array2::from_shape_fn((n, d), value);
        Zip::from(&mut expected)
            .and_broadcast(&a)
            .and_broadcast(&b)
            .for_each(|o, &a, &b| f(o, *o, a, b));
        let batches = [
            Array2::from_shape_fn((n, d), value),
            Array2::from_shape_fn((n, d).f(), value),
        ];
        for x in &batches {
            let mut in_place = x.clone();
            per_feature(in_place.view_mut(), None, (a.view(), b.view()), f);
            assert_eq!(in_place, expected);
            for out in [Array2::zeros((n, d)), Array2::zeros((n, d).f())] {
                let mut out = out;
                per_feature(out.view_mut(), Some(x.view()), (a.view(), b.view()), f);
                assert_eq!(out, expected);
            }
        }
        for shape in [(0, d), (n, 0), (n, 1), (1, d)] {
            let x = Array2::from_shape_fn(shape, value);
            let (a, b) = (
                a.slice(ndarray::s![..shape.1]),
                b.slice(ndarray::s![..shape.1]),
            );
            let mut expected = x.clone();
            Zip::from(&mut expected)
                .and_broadcast(&a)
                .and_broadcast(&b)
                .for_each(|o, &a, &b| f(o, *o, a, b));
            let mut out = Array2::zeros(ShapeBuilder::f(shape));
            per_feature(out.view_mut(), Some(x.view()), (a, b), f);
            assert_eq!(out, expected, "{shape:?}");
        }
        let wide = Array2::from_shape_fn((n, 2 * d), |(i, j)| value((i, j / 2)));
        let strided = wide.slice(ndarray::s![.., ..;2]);
        let mut out = Array2::zeros((n, d));
        per_feature(out.view_mut(), Some(strided), (a.view(), b.view()), f);
        assert_eq!(out, expected);
    }
}
