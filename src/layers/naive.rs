//! The two "simple layers" of §5.4: multiplication and addition nodes of a computational graph.
//!
//! - `MulLayer`: `z = x·y`; backward `∂L/∂x = ∂L/∂z · y`, `∂L/∂y = ∂L/∂z · x` (the inputs are
//!   swapped, so both are cached).
//! - `AddLayer`: `z = x + y`; backward `∂L/∂x = ∂L/∂y = ∂L/∂z` (passed through, nothing cached).
//!
//! ```
//! use backprop::layers::MulLayer;
//! // Buying 2 apples at 100 yen with 10% tax (§5.4.1)
//! let (mut mul_apple, mut mul_tax) = (MulLayer::new(), MulLayer::new());
//! let apple_price: f64 = mul_apple.forward(100.0, 2.0);
//! let price = mul_tax.forward(apple_price, 1.1);
//! let (dapple_price, dtax) = mul_tax.backward(1.0);
//! let (dapple, dapple_num) = mul_apple.backward(dapple_price);
//! assert!((price - 220.0).abs() < 1e-9 && (dapple - 2.2).abs() < 1e-9);
//! assert!((dapple_num - 110.0).abs() < 1e-9 && dtax == 200.0);
//! ```

use std::ops::{Add, Mul};

/// A multiplication node `z = x·y` (§5.4.1).
#[derive(Debug, Clone, Default)]
pub struct MulLayer<T> {
    /// `(x, y)` from the last forward pass.
    inputs: Option<(T, T)>,
}

impl<T: Copy + Mul<Output = T>> MulLayer<T> {
    /// A node with nothing cached yet.
    pub fn new() -> Self {
        MulLayer { inputs: None }
    }

    /// `z = x·y`, caching `x` and `y`.
    pub fn forward(&mut self, x: T, y: T) -> T {
        self.inputs = Some((x, y));
        x * y
    }

    /// `(∂L/∂x, ∂L/∂y) = (dout·y, dout·x)`.
    ///
    /// # Panics
    /// When called before [`forward`](Self::forward).
    #[track_caller]
    pub fn backward(&self, dout: T) -> (T, T) {
        let &(x, y) = super::cached(&self.inputs, "MulLayer");
        (dout * y, dout * x)
    }
}

/// An addition node `z = x + y` (§5.4.2).
#[derive(Debug, Clone, Copy, Default)]
pub struct AddLayer;

impl AddLayer {
    /// A node; addition needs no cache.
    pub fn new() -> Self {
        AddLayer
    }

    /// `z = x + y`.
    pub fn forward<T: Add<Output = T>>(&mut self, x: T, y: T) -> T {
        x + y
    }

    /// `(∂L/∂x, ∂L/∂y) = (dout, dout)`.
    pub fn backward<T: Copy>(&self, dout: T) -> (T, T) {
        (dout, dout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_swaps_inputs_and_add_passes_through() {
        // z = 3·4 = 12; ∂z/∂x = 4, ∂z/∂y = 3, times dout = 2
        let mut mul = MulLayer::new();
        assert_eq!(mul.forward(3.0, 4.0), 12.0);
        assert_eq!(mul.backward(2.0), (8.0, 6.0));
        let mut add = AddLayer::new();
        assert_eq!(add.forward(3.0, 4.0), 7.0);
        assert_eq!(add.backward(2.0), (2.0, 2.0));
    }

    #[test]
    #[should_panic(expected = "MulLayer::backward called before forward")]
    fn mul_backward_before_forward_panics() {
        MulLayer::<f64>::new().backward(1.0);
    }
}
