//! `backprop apple`: the computational graphs of §5.4.

use std::process::ExitCode;

use backprop::graph::Graph;

/// Flags of `backprop apple`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which example: `apple` (§5.4.1), `apple-orange` (§5.4.2) or `both`.
    #[arg(long, value_enum, default_value_t = Example::Both)]
    example: Example,
    /// Draw each graph: every node with its forward output, every edge with the value that
    /// flows forward and the derivative that flows back.
    #[arg(long)]
    graph: bool,
    /// How to draw the graph: `text` or Graphviz `dot` (implies --graph).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Example {
    Apple,
    AppleOrange,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Dot,
}

pub fn run(args: &Args) -> super::Outcome {
    let graphs = match args.example {
        Example::Apple => vec![Graph::buy_apple()],
        Example::AppleOrange => vec![Graph::buy_apple_orange()],
        Example::Both => vec![Graph::buy_apple(), Graph::buy_apple_orange()],
    };
    for (i, graph) in graphs.iter().enumerate() {
        if args.format == Format::Dot {
            print!("{}", graph.to_dot());
            continue;
        }
        if i > 0 {
            println!();
        }
        if args.graph {
            println!("{}", graph.to_text());
            print!("{}", graph.results_text());
        } else {
            println!("# {}", graph.title());
            print!("{}", graph.results_text());
        }
    }
    Ok(ExitCode::SUCCESS)
}
