//! Computational graphs on scalars (§5.1–§5.4): nodes built from [`MulLayer`] and
//! [`AddLayer`], evaluated forward in the order they are added, and differentiated by
//! walking them in reverse, each node passing `∂out/∂node` to its inputs by the chain rule.
//!
//! ```
//! use backprop::graph::Graph;
//! // §5.4.1: 2 apples at 100, 10% tax
//! let mut g = Graph::new("buy 2 apples at 100 with 10% tax");
//! let (apple, apple_num, tax) = (g.input("apple", 100.0), g.input("apple_num", 2.0), g.input("tax", 1.1));
//! let apple_price = g.mul("mul_apple_layer", apple, apple_num);
//! let price = g.mul("mul_tax_layer", apple_price, tax);
//! g.backward(price, "price");
//! assert_eq!(g.results_text(), "price: 220\ndApple: 2.2\ndApple_num: 110\ndTax: 200\n");
//! ```

use std::fmt::Write;

use crate::layers::{AddLayer, MulLayer};

/// A node's index in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId(usize);

/// What a node computes.
#[derive(Debug, Clone)]
enum Op {
    Input,
    Mul(MulLayer<f64>, NodeId, NodeId),
    Add(AddLayer, NodeId, NodeId),
}

/// A node: an input value or an operation on two earlier nodes.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    op: Op,
    value: f64,
    /// `∂out/∂node`, accumulated over the edges leaving it; set by [`Graph::backward`].
    grad: f64,
}

/// An edge with the value that flows forward and the derivative that flows back along it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Source node name.
    pub from: String,
    /// Target node name (the output's name for the final edge).
    pub to: String,
    /// The value flowing forward.
    pub value: f64,
    /// The derivative of the output flowing backward.
    pub grad: f64,
}

/// A computational graph on scalars.
#[derive(Debug, Clone)]
pub struct Graph {
    title: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    output: Option<(NodeId, String)>,
}

/// Rounds away binary noise (`110.00000000000001` → `110`) for printing.
pub fn format_number(x: f64) -> String {
    let rounded = (x * 1e9).round() / 1e9;
    format!("{rounded}")
}

impl Graph {
    /// An empty graph; `title` says what it computes.
    pub fn new(title: &str) -> Self {
        Graph {
            title: title.to_string(),
            nodes: Vec::new(),
            edges: Vec::new(),
            output: None,
        }
    }

    /// What the graph computes.
    pub fn title(&self) -> &str {
        &self.title
    }

    fn push(&mut self, name: &str, op: Op, value: f64) -> NodeId {
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            value,
            grad: 0.0,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// An input variable.
    pub fn input(&mut self, name: &str, value: f64) -> NodeId {
        self.push(name, Op::Input, value)
    }

    /// A multiplication node `x·y`, computed now by a [`MulLayer`].
    pub fn mul(&mut self, name: &str, x: NodeId, y: NodeId) -> NodeId {
        let mut layer = MulLayer::new();
        let value = layer.forward(self.value(x), self.value(y));
        self.push(name, Op::Mul(layer, x, y), value)
    }

    /// An addition node `x + y`, computed now by an [`AddLayer`].
    pub fn add(&mut self, name: &str, x: NodeId, y: NodeId) -> NodeId {
        let mut layer = AddLayer::new();
        let value = layer.forward(self.value(x), self.value(y));
        self.push(name, Op::Add(layer, x, y), value)
    }

    /// The forward value of a node.
    pub fn value(&self, node: NodeId) -> f64 {
        self.nodes[node.0].value
    }

    /// `∂output/∂node` after [`backward`](Self::backward).
    pub fn grad(&self, node: NodeId) -> f64 {
        self.nodes[node.0].grad
    }

    /// Backpropagation from `output` (named `output_name`, e.g. `price`): `∂output/∂output = 1`,
    /// then every node in reverse order of creation hands each input its local derivative
    /// times the node's own.
    pub fn backward(&mut self, output: NodeId, output_name: &str) {
        for node in &mut self.nodes {
            node.grad = 0.0;
        }
        self.nodes[output.0].grad = 1.0;
        let mut edges = vec![Edge {
            from: self.nodes[output.0].name.clone(),
            to: output_name.to_string(),
            value: self.value(output),
            grad: 1.0,
        }];
        for i in (0..self.nodes.len()).rev() {
            let dout = self.nodes[i].grad;
            let (x, y, (dx, dy)) = match &self.nodes[i].op {
                Op::Input => continue,
                Op::Mul(layer, x, y) => (*x, *y, layer.backward(dout)),
                Op::Add(layer, x, y) => (*x, *y, layer.backward(dout)),
            };
            // y before x: the list is reversed at the end, so that x comes first.
            for (input, d) in [(y, dy), (x, dx)] {
                self.nodes[input.0].grad += d;
                edges.push(Edge {
                    from: self.nodes[input.0].name.clone(),
                    to: self.nodes[i].name.clone(),
                    value: self.value(input),
                    grad: d,
                });
            }
        }
        edges.reverse();
        self.edges = edges;
        self.output = Some((output, output_name.to_string()));
    }

    /// The edges from inputs towards the output, after [`backward`](Self::backward).
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// The book's printout: the output's value, then `d<Input>` for each input in the order
    /// they were added (`price: 220`, `dApple: 2.2`, …).
    pub fn results_text(&self) -> String {
        let Some((output, name)) = &self.output else {
            return String::new();
        };
        let mut out = format!("{name}: {}\n", format_number(self.value(*output)));
        for node in self.nodes.iter().filter(|n| matches!(n.op, Op::Input)) {
            let mut chars = node.name.chars();
            let capitalised: String = chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect();
            let _ = writeln!(out, "d{capitalised}: {}", format_number(node.grad));
        }
        out
    }

    /// Nodes with their forward outputs, then edges with the value flowing forward and the
    /// derivative of the output flowing back.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let name_width = self
            .nodes
            .iter()
            .map(|n| n.name.chars().count())
            .max()
            .unwrap_or(0);
        let _ = writeln!(out, "{}\n\nnodes (forward output)", self.title);
        for node in &self.nodes {
            let op = match node.op {
                Op::Input => " ",
                Op::Mul(..) => "×",
                Op::Add(..) => "+",
            };
            let _ = writeln!(
                out,
                "  {:<name_width$}  {op}  {}",
                node.name,
                format_number(node.value)
            );
        }
        let labels: Vec<String> = self
            .edges
            .iter()
            .map(|e| format!("{} → {}", e.from, e.to))
            .collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "\nedges (value flowing forward, ← derivative of the output flowing back)"
        );
        for (label, edge) in labels.iter().zip(&self.edges) {
            let _ = writeln!(
                out,
                "  {label:<width$}  {:>9}   ← {}",
                format_number(edge.value),
                format_number(edge.grad)
            );
        }
        out
    }

    /// Graphviz DOT: inputs as plain text, operations as circles, each edge labelled with its
    /// forward value (black) and backward derivative (red).
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph backprop {\n  rankdir=LR;\n");
        let _ = writeln!(out, "  label=\"{}\";\n  labelloc=t;", self.title);
        for node in &self.nodes {
            let _ = match node.op {
                Op::Input => writeln!(out, "  \"{}\" [shape=plaintext];", node.name),
                Op::Mul(..) => writeln!(
                    out,
                    "  \"{}\" [shape=circle, label=\"×\", xlabel=\"{0}\"];",
                    node.name
                ),
                Op::Add(..) => writeln!(
                    out,
                    "  \"{}\" [shape=circle, label=\"+\", xlabel=\"{0}\"];",
                    node.name
                ),
            };
        }
        if let Some((_, name)) = &self.output {
            let _ = writeln!(out, "  \"{name}\" [shape=plaintext];");
        }
        for edge in &self.edges {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=<{}<br/><font color=\"red\">{}</font>>];",
                edge.from,
                edge.to,
                format_number(edge.value),
                format_number(edge.grad)
            );
        }
        out.push_str("}\n");
        out
    }

    /// Every node in the order of the forward pass, as the lab's page draws them: name, kind
    /// (`input`, `mul`, `add`), input names, forward value, `∂output/∂node`, and for the
    /// operations their local backward rule with the numbers it was applied to; then the
    /// output's name and value. The backward pass visits the operations in reverse order.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|node| {
                let (kind, inputs) = match &node.op {
                    Op::Input => ("input", vec![]),
                    Op::Mul(_, x, y) => ("mul", vec![*x, *y]),
                    Op::Add(_, x, y) => ("add", vec![*x, *y]),
                };
                let names: Vec<&str> = inputs
                    .iter()
                    .map(|i| self.nodes[i.0].name.as_str())
                    .collect();
                let [x, y] = [0, 1].map(|k| inputs.get(k).map_or(0.0, |&i| self.value(i)));
                let (d, n) = (format_number(node.grad), format_number);
                let (forward, backward) = match node.op {
                    Op::Input => (String::new(), String::new()),
                    Op::Mul(..) => (
                        format!("{} × {} = {}", n(x), n(y), n(node.value)),
                        format!(
                            "Mul swaps its inputs: ∂/∂{} = {d} × {} = {}, ∂/∂{} = {d} × {} = {}",
                            names[0],
                            n(y),
                            n(node.grad * y),
                            names[1],
                            n(x),
                            n(node.grad * x)
                        ),
                    ),
                    Op::Add(..) => (
                        format!("{} + {} = {}", n(x), n(y), n(node.value)),
                        format!(
                            "Add passes the derivative through: ∂/∂{} = ∂/∂{} = {d}",
                            names[0], names[1]
                        ),
                    ),
                };
                serde_json::json!({
                    "name": node.name,
                    "kind": kind,
                    "inputs": names,
                    "value": node.value,
                    "grad": node.grad,
                    "forward": forward,
                    "backward": backward,
                })
            })
            .collect();
        let output = self.output.as_ref().map(|(id, name)| {
            serde_json::json!({ "name": name, "from": self.nodes[id.0].name, "value": self.value(*id) })
        });
        serde_json::json!({ "title": self.title, "nodes": nodes, "output": output })
    }

    /// §5.4.1: 2 apples at 100 each with 10% tax: price 220; ∂price/∂apple 2.2,
    /// ∂price/∂apple_num 110, ∂price/∂tax 200.
    pub fn buy_apple() -> Graph {
        let mut g = Graph::buy_apples(100.0, 2.0, 1.1);
        g.title = "buy 2 apples at 100 with 10% tax".into();
        g
    }

    /// §5.4.1 with other numbers: `apple_num` apples at `apple` each, `tax` the factor (1.1
    /// for 10%).
    pub fn buy_apples(apple: f64, apple_num: f64, tax: f64) -> Graph {
        let mut g = Graph::new(&format!(
            "buy {} apples at {} with tax × {}",
            format_number(apple_num),
            format_number(apple),
            format_number(tax)
        ));
        let apple = g.input("apple", apple);
        let apple_num = g.input("apple_num", apple_num);
        let tax = g.input("tax", tax);
        let apple_price = g.mul("mul_apple_layer", apple, apple_num);
        let price = g.mul("mul_tax_layer", apple_price, tax);
        g.backward(price, "price");
        g
    }

    /// §5.4.2: 2 apples at 100 and 3 oranges at 150 with 10% tax: price 715; ∂price/∂apple
    /// 2.2, ∂price/∂apple_num 110, ∂price/∂orange 3.3, ∂price/∂orange_num 165, ∂price/∂tax 650.
    pub fn buy_apple_orange() -> Graph {
        let mut g = Graph::buy_apples_and_oranges([100.0, 2.0], [150.0, 3.0], 1.1);
        g.title = "buy 2 apples at 100 and 3 oranges at 150 with 10% tax".into();
        g
    }

    /// §5.4.2 with other numbers: `[price, count]` of apples and of oranges, `tax` the factor.
    pub fn buy_apples_and_oranges(apples: [f64; 2], oranges: [f64; 2], tax: f64) -> Graph {
        let n = format_number;
        let mut g = Graph::new(&format!(
            "buy {} apples at {} and {} oranges at {} with tax × {}",
            n(apples[1]),
            n(apples[0]),
            n(oranges[1]),
            n(oranges[0]),
            n(tax)
        ));
        let apple = g.input("apple", apples[0]);
        let apple_num = g.input("apple_num", apples[1]);
        let orange = g.input("orange", oranges[0]);
        let orange_num = g.input("orange_num", oranges[1]);
        let tax = g.input("tax", tax);
        let apple_price = g.mul("mul_apple_layer", apple, apple_num);
        let orange_price = g.mul("mul_orange_layer", orange, orange_num);
        let all_price = g.add("add_apple_orange_layer", apple_price, orange_price);
        let price = g.mul("mul_tax_layer", all_price, tax);
        g.backward(price, "price");
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_apple_numbers() {
        assert_eq!(
            Graph::buy_apple().results_text(),
            "price: 220\ndApple: 2.2\ndApple_num: 110\ndTax: 200\n"
        );
        assert_eq!(
            Graph::buy_apple_orange().results_text(),
            "price: 715\ndApple: 2.2\ndApple_num: 110\ndOrange: 3.3\ndOrange_num: 165\ndTax: 650\n"
        );
    }

    #[test]
    fn a_node_used_twice_accumulates_both_derivatives() {
        // z = x·x + x at x = 3: dz/dx = 2x + 1 = 7
        let mut g = Graph::new("x² + x");
        let x = g.input("x", 3.0);
        let square = g.mul("square", x, x);
        let z = g.add("sum", square, x);
        g.backward(z, "z");
        assert_eq!((g.value(z), g.grad(x)), (12.0, 7.0));
    }

    #[test]
    fn text_and_dot_show_values_and_derivatives() {
        let g = Graph::buy_apple_orange();
        let dot = g.to_dot();
        assert!(
            dot.contains(
                "\"apple\" -> \"mul_apple_layer\" [label=<100<br/><font color=\"red\">2.2</font>>];"
            ),
            "{dot}"
        );
        let text = g.to_text();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("orange →"))
            .unwrap();
        assert!(
            line.contains("mul_orange_layer") && line.ends_with(" 150   ← 3.3"),
            "{line}"
        );
        assert!(text.contains("mul_tax_layer → price"), "{text}");
    }
}
