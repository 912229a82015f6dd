//! `backprop data`: list, verify and download data sets.

use std::path::PathBuf;
use std::process::ExitCode;

use backprop::data::{Known, Source};

/// Flags of `backprop data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Show each data set, where it was found and whether its checksums match.
    List,
    /// Download a data set from public mirrors, verifying each file's SHA-256.
    #[cfg(feature = "download")]
    Fetch {
        /// mnist or fashion-mnist.
        dataset: Known,
        /// Where to put the files (default: the user cache, where training looks).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A mirror URL prefix to use instead of the built-in list (repeatable, tried in order).
        #[arg(long = "mirror")]
        mirrors: Vec<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

pub fn run(args: &Args) -> super::Outcome {
    match &args.action {
        Action::List => list(),
        #[cfg(feature = "download")]
        Action::Fetch {
            dataset,
            dir,
            mirrors,
            quiet,
        } => fetch(*dataset, dir.clone(), mirrors, *quiet),
    }
}

fn list() -> super::Outcome {
    for known in Known::ALL {
        match backprop::data::locate(known) {
            Ok(source) => {
                let checks = backprop::data::verify(known, &source)?;
                let bad: Vec<&str> = checks
                    .iter()
                    .filter(|(_, ok)| !ok)
                    .map(|(n, _)| n.as_str())
                    .collect();
                let verdict = if bad.is_empty() {
                    "checksums ok".to_string()
                } else {
                    format!("CHECKSUM MISMATCH: {}", bad.join(", "))
                };
                println!("{:<14} {source}  ({verdict})", known.name());
            }
            Err(_) => println!(
                "{:<14} not found (run `backprop data fetch {known}` or pass --data-dir DIR)",
                known.name()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "download")]
fn fetch(known: Known, dir: Option<PathBuf>, mirrors: &[String], quiet: bool) -> super::Outcome {
    let dir = match dir.or_else(|| backprop::data::cache_dir().map(|c| c.join(known.name()))) {
        Some(dir) => dir,
        None => {
            return Err(backprop::Error::Invalid(
                "no cache folder: set HOME or BACKPROP_CACHE_DIR, or pass --dir DIR".into(),
            ));
        }
    };
    let mirrors: Vec<String> = if mirrors.is_empty() {
        known.mirrors().iter().map(|m| m.to_string()).collect()
    } else {
        mirrors
            .iter()
            .map(|m| format!("{}/", m.trim_end_matches('/')))
            .collect()
    };
    let files = backprop::data::fetch(known, &dir, &mirrors, !quiet)?;
    for file in &files {
        println!("{}  (SHA-256 verified)", file.display());
    }
    let source = Source::Dir(dir);
    println!("{known}: {source}");
    Ok(ExitCode::SUCCESS)
}
