//! Buffers kept from one pass to the next, so that a training step allocates nothing after
//! its first: a layer hands back the array it no longer needs, and takes it again next pass.

use ndarray::{Array, ArrayBase, Data, Dimension, ShapeBuilder};

/// The array in `spare` when it has shape `dim` and is row-major (its old values still in
/// it), else a new row-major one filled with `blank`. Leaves `spare` empty.
pub fn reuse<T: Clone, D: Dimension>(
    spare: &mut Option<Array<T, D>>,
    dim: D,
    blank: T,
) -> Array<T, D> {
    reuse_in_order(spare, dim, false, blank)
}

/// [`reuse`] for a buffer of `like`'s shape and memory order (row- or column-major), so that
/// an element-wise pass over both runs through memory in one stream.
pub fn reuse_like<T: Clone, S: Data, D: Dimension>(
    spare: &mut Option<Array<T, D>>,
    like: &ArrayBase<S, D>,
    blank: T,
) -> Array<T, D> {
    reuse_in_order(spare, like.raw_dim(), column_major(like), blank)
}

/// The array in `spare` when it has shape `dim` and the memory order asked for, else a new
/// one in that order filled with `blank`.
fn reuse_in_order<T: Clone, D: Dimension>(
    spare: &mut Option<Array<T, D>>,
    dim: D,
    column_major_order: bool,
    blank: T,
) -> Array<T, D> {
    match spare.take() {
        Some(array) if array.raw_dim() == dim && in_order(&array, column_major_order) => array,
        _ => Array::from_elem(dim.set_f(column_major_order), blank),
    }
}

/// Whether `a` is laid out column-major (`column_major_order`) or row-major.
fn in_order<S: Data, D: Dimension>(a: &ArrayBase<S, D>, column_major_order: bool) -> bool {
    match column_major_order {
        true => column_major(a),
        false => a.is_standard_layout(),
    }
}

/// Whether `a` is column-major and not row-major too (as an array of one row or column is).
pub(crate) fn column_major<S: Data, D: Dimension>(a: &ArrayBase<S, D>) -> bool {
    !a.is_standard_layout() && a.t().is_standard_layout()
}

/// [`reuse`] for a buffer that is only right for the input it was made for (`key`), such as
/// im2col rows whose padding entries, never written, must stay 0.
pub fn reuse_for<T: Clone, D: Dimension, K: PartialEq>(
    spare: &mut Option<(Array<T, D>, K)>,
    key: &K,
    dim: D,
    blank: T,
) -> Array<T, D> {
    let mut same = spare
        .take()
        .and_then(|(array, k)| (k == *key).then_some(array));
    reuse(&mut same, dim, blank)
}

/// Copies `x` into the buffer in `kept` (or a new one in `x`'s memory order), as a cache of
/// `x` that allocates nothing from the second pass on.
pub fn keep_copy<T: Clone, D: Dimension>(kept: &mut Option<Array<T, D>>, x: &Array<T, D>) {
    match kept {
        Some(copy) if copy.shape() == x.shape() && in_order(copy, column_major(x)) => {
            copy.assign(x)
        }
        _ => *kept = Some(x.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Dim, array};

    /// `reuse` gives row-major buffers only, and `reuse_like` buffers in the order of the
    /// array they are for, taking them again pass after pass: so inference's column-major
    /// batches do not carry over into training's buffers, nor pay an allocation each pass.
    #[test]
    fn buffers_are_taken_again_only_in_their_arrays_order() {
        use ndarray::ShapeBuilder;
        let by_columns = Array2::<f32>::zeros((4, 3).f());
        let mut spare = Some(by_columns.clone());
        assert!(reuse(&mut spare, Dim([4, 3]), 0.0).is_standard_layout());
        for like in [by_columns, Array2::zeros((4, 3)), Array2::zeros((4, 1).f())] {
            let mut spare = Some(reuse_like(&mut None, &like, 0.0));
            let first = spare.as_ref().map(|a| a.as_ptr());
            let again = reuse_like(&mut spare, &like, 0.0);
            assert_eq!(Some(again.as_ptr()), first, "{:?}", like.strides());
            assert_eq!(column_major(&again), column_major(&like));
        }
        let mut kept = Some(Array2::<f32>::zeros((4, 3).f()));
        keep_copy(&mut kept, &Array2::ones((4, 3)));
        assert!(kept.is_some_and(|k| k.is_standard_layout() && k.sum() == 12.0));
    }

    #[test]
    fn a_buffer_of_the_same_shape_is_reused_and_another_is_not() {
        let mut spare = Some(array![[1.0, 2.0]]);
        let again = reuse(&mut spare, Dim([1, 2]), 0.0);
        assert_eq!(again, array![[1.0, 2.0]], "the same buffer, values kept");
        assert!(spare.is_none());
        let mut spare = Some(again);
        assert_eq!(
            reuse(&mut spare, Dim([2, 1]), 0.0),
            Array2::<f64>::zeros((2, 1))
        );
        let mut keyed = Some((array![[5.0]], 7));
        assert_eq!(reuse_for(&mut keyed, &8, Dim([1, 1]), 0.0), array![[0.0]]);
        let mut kept = None;
        keep_copy(&mut kept, &array![3.0]);
        keep_copy(&mut kept, &array![4.0]);
        assert_eq!(kept, Some(array![4.0]));
    }
}
