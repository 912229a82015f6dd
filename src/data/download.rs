//! Checked downloads: each file from a list of mirrors, verified against its pinned SHA-256
//! before it is renamed into place.
//!
//! A file is streamed to a temporary file in the destination folder, its content checksum is
//! computed (decompressed, see [`Known::sha256`]), and only a file that matches is renamed to
//! its final name. A failed or corrupt download leaves nothing behind: the temporary file is
//! deleted, and the next mirror is tried.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::catalog::{FILE_NAMES, Known};
use super::content_sha256;
use crate::error::{Error, Result};

/// Downloads the four files of `known` into `dest` (created if missing) from `mirrors`
/// (each a URL prefix; `<mirror><file>.gz` is fetched), skipping files already there and
/// verified. Shows a progress bar on stderr when `progress` is set.
///
/// # Errors
/// When `dest` cannot be written, or some file could not be fetched with the right checksum
/// from any mirror; the message lists each mirror's failure.
pub fn fetch(
    known: Known,
    dest: &Path,
    mirrors: &[String],
    progress: bool,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut saved = Vec::with_capacity(FILE_NAMES.len());
    for (name, sha) in FILE_NAMES.iter().zip(known.sha256()) {
        let target = dest.join(format!("{name}.gz"));
        if target.is_file() && content_sha256(&target).is_ok_and(|d| d == sha) {
            saved.push(target);
            continue;
        }
        let mut failures = Vec::new();
        for mirror in mirrors {
            let url = format!("{mirror}{name}.gz");
            match fetch_one(&agent, &url, &target, sha, progress) {
                Ok(()) => break,
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if failures.len() == mirrors.len() {
            return Err(Error::Download(format!(
                "could not fetch {name}.gz for {known} from any mirror: {}",
                failures.join("; ")
            )));
        }
        saved.push(target);
    }
    Ok(saved)
}

/// Fetches `url` into a temporary file beside `target`, verifies it, renames it to `target`.
fn fetch_one(
    agent: &ureq::Agent,
    url: &str,
    target: &Path,
    sha: &str,
    progress: bool,
) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| Error::Download(e.to_string()))?;
    let length = response.body().content_length();
    let bar = if progress {
        ProgressBar::new(length.unwrap_or(0))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .expect("a valid template"),
    );
    bar.set_message(
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );

    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let mut body = bar.wrap_read(response.body_mut().with_config().limit(1 << 30).reader());
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = body.read(&mut buf).map_err(|e| {
            let of = length.map(|l| format!(" of {l}")).unwrap_or_default();
            Error::Download(format!("interrupted after {received}{of} bytes: {e}"))
        })?;
        if n == 0 {
            break;
        }
        tmp.write_all(&buf[..n])
            .map_err(|e| Error::io(tmp.path(), e))?;
        received += n as u64;
    }
    bar.finish_and_clear();
    if let Some(expected) = length.filter(|&l| l != received) {
        return Err(Error::Download(format!(
            "truncated: received {received} of {expected} bytes"
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    let found = content_sha256(tmp.path()).map_err(|e| match e {
        Error::Io { source, .. } => Error::Download(format!("corrupt download: {source}")),
        other => other,
    })?;
    if found != sha {
        return Err(Error::Checksum {
            file: target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            expected: sha.to_string(),
            found,
        });
    }
    tmp.persist(target)
        .map_err(|e| Error::io(target, e.error))?;
    Ok(())
}
