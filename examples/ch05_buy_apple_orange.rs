//! The book's `ch05/buy_apple_orange.py`: apples and oranges, an addition node, and tax (§5.4.2).
//!
//! `cargo run --example ch05_buy_apple_orange` prints price 715, dApple 2.2, dApple_num 110,
//! dOrange 3.3, dOrange_num 165, dTax 650.

use backprop::graph::format_number as n;
use backprop::layers::{AddLayer, MulLayer};

fn main() {
    let apple = 100.0;
    let apple_num = 2.0;
    let orange = 150.0;
    let orange_num = 3.0;
    let tax = 1.1;

    // layers
    let mut mul_apple_layer = MulLayer::new();
    let mut mul_orange_layer = MulLayer::new();
    let mut add_apple_orange_layer = AddLayer::new();
    let mut mul_tax_layer = MulLayer::new();

    // forward
    let apple_price = mul_apple_layer.forward(apple, apple_num);
    let orange_price = mul_orange_layer.forward(orange, orange_num);
    let all_price = add_apple_orange_layer.forward(apple_price, orange_price);
    let price = mul_tax_layer.forward(all_price, tax);

    // backward
    let dprice = 1.0;
    let (dall_price, dtax) = mul_tax_layer.backward(dprice);
    let (dapple_price, dorange_price) = add_apple_orange_layer.backward(dall_price);
    let (dorange, dorange_num) = mul_orange_layer.backward(dorange_price);
    let (dapple, dapple_num) = mul_apple_layer.backward(dapple_price);

    println!("price: {}", n(price));
    println!("dApple: {}", n(dapple));
    println!("dApple_num: {}", n(dapple_num));
    println!("dOrange: {}", n(dorange));
    println!("dOrange_num: {}", n(dorange_num));
    println!("dTax: {}", n(dtax));
}
