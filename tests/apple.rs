//! `backprop apple`: the book's numbers for both computational graphs (§5.4).

mod common;
use common::{backprop, stdout};

#[test]
fn prints_the_books_forward_and_backward_values() {
    let out = backprop(&["apple"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "# buy 2 apples at 100 with 10% tax\nprice: 220\ndApple: 2.2\ndApple_num: 110\ndTax: 200\n\n\
         # buy 2 apples at 100 and 3 oranges at 150 with 10% tax\n\
         price: 715\ndApple: 2.2\ndApple_num: 110\ndOrange: 3.3\ndOrange_num: 165\ndTax: 650\n"
    );
}

#[test]
fn graph_shows_every_edge_forward_and_backward() {
    let text = stdout(&backprop(&["apple", "--graph", "--example", "apple"]));
    let edges: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.contains(" → ") && l.contains('←'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    // from → to, forward value, ←, derivative
    let expected = [
        ["apple", "→", "mul_apple_layer", "100", "←", "2.2"],
        ["apple_num", "→", "mul_apple_layer", "2", "←", "110"],
        ["mul_apple_layer", "→", "mul_tax_layer", "200", "←", "1.1"],
        ["tax", "→", "mul_tax_layer", "1.1", "←", "200"],
        ["mul_tax_layer", "→", "price", "220", "←", "1"],
    ];
    assert_eq!(edges, expected);
}

#[test]
fn dot_output_is_one_digraph_per_example() {
    let dot = stdout(&backprop(&["apple", "--format", "dot"]));
    assert_eq!(dot.matches("digraph backprop {").count(), 2);
    assert!(dot.contains(
        "\"orange_num\" -> \"mul_orange_layer\" [label=<3<br/><font color=\"red\">165</font>>];"
    ));
    assert!(dot.contains(
        "\"tax\" -> \"mul_tax_layer\" [label=<1.1<br/><font color=\"red\">650</font>>];"
    ));
}
