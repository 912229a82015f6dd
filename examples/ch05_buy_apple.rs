//! The book's `ch05/buy_apple.py`: a computational graph of two multiplication layers,
//! run forward to get the price and backward to get each input's derivative (§5.4.1).
//!
//! `cargo run --example ch05_buy_apple` prints price 220, dApple 2.2, dApple_num 110, dTax 200.

use backprop::graph::format_number as n;
use backprop::layers::MulLayer;

fn main() {
    let apple = 100.0;
    let apple_num = 2.0;
    let tax = 1.1;

    let mut mul_apple_layer = MulLayer::new();
    let mut mul_tax_layer = MulLayer::new();

    // forward
    let apple_price = mul_apple_layer.forward(apple, apple_num);
    let price = mul_tax_layer.forward(apple_price, tax);

    // backward
    let dprice = 1.0;
    let (dapple_price, dtax) = mul_tax_layer.backward(dprice);
    let (dapple, dapple_num) = mul_apple_layer.backward(dapple_price);

    println!("price: {}", n(price));
    println!("dApple: {}", n(dapple));
    println!("dApple_num: {}", n(dapple_num));
    println!("dTax: {}", n(dtax));
}
