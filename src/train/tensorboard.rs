//! What `backprop train --tensorboard DIR` records, and at which step (the iteration, as in
//! `metrics.csv`):
//!
//! | tag | when | value |
//! |---|---|---|
//! | `loss/batch` | every iteration | the mini-batch loss |
//! | `time/step_ms` | every iteration | milliseconds since the previous iteration (or evaluation) ended |
//! | `loss/mean`, `accuracy/train`, `accuracy/test` | every evaluation | the columns `loss`, `train_acc`, `test_acc` of `metrics.csv` |
//! | `learning_rate` | every evaluation | the optimizer's `η` |
//! | `weights/NAME`, `gradients/NAME` | every evaluation | histograms of each parameter (`W1`, `b1`, …) and of its last gradient |
//! | `filters/first_layer` | every evaluation | the first layer's weights as pictures, as `backprop visualize filters` draws them |
//!
//! Scalars are stored as `f32`, as TensorBoard stores them.

use std::path::Path;
use std::time::Instant;

use super::Event;
use crate::error::{Error, Result};
use crate::io::tensorboard::{EventWriter, Histogram, Summary};
use crate::plot::{first_layer_tiles, grey_mosaic_png};

/// At most this many first-layer pictures go into `filters/first_layer`.
const FILTER_PICTURES: usize = 64;

/// Records a training run as TensorBoard events; see the module doc for what.
#[derive(Debug)]
pub struct TensorBoard {
    writer: EventWriter,
    learning_rate: f32,
    image: (usize, usize),
    since: Instant,
    failed: Option<Error>,
}

impl TensorBoard {
    /// Opens a new event file in `dir` for a run whose first iteration is `first_iter` (0, or
    /// where a resumed run continues), whose optimizer has learning rate `learning_rate`, on
    /// images of `image` `(rows, cols)`.
    ///
    /// # Errors
    /// When the folder or file cannot be created.
    pub fn create(
        dir: &Path,
        first_iter: usize,
        learning_rate: f64,
        image: (usize, usize),
    ) -> Result<Self> {
        Ok(TensorBoard {
            writer: EventWriter::create(dir, first_iter as u64)?,
            learning_rate: learning_rate as f32,
            image,
            since: Instant::now(),
            failed: None,
        })
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// Records what `event` reports. After a write fails nothing more is written; the error
    /// is returned (once) and kept for [`finish`](Self::finish).
    pub fn observe(&mut self, event: Event<'_, f32>) -> Option<&Error> {
        if self.failed.is_some() {
            return None;
        }
        let written = match event {
            Event::Step { iter, loss } => {
                let step_ms = self.since.elapsed().as_secs_f64() * 1e3;
                self.writer.write(
                    iter as u64,
                    &[
                        Summary::Scalar("loss/batch", loss as f32),
                        Summary::Scalar("time/step_ms", step_ms as f32),
                    ],
                )
            }
            Event::Evaluated(r) => self.writer.write(
                r.iter as u64,
                &[
                    Summary::Scalar("loss/mean", r.loss as f32),
                    Summary::Scalar("accuracy/train", r.train_acc as f32),
                    Summary::Scalar("accuracy/test", r.test_acc as f32),
                    Summary::Scalar("learning_rate", self.learning_rate),
                ],
            ),
            Event::Weights(mut weights) => {
                let mut histograms = Vec::new();
                let mut picture = None;
                weights.each(|name, value, grad| {
                    if histograms.is_empty() {
                        picture = first_layer_tiles(value.view(), self.image, FILTER_PICTURES)
                            .and_then(|tiles| grey_mosaic_png(&tiles, 8, 2))
                            .ok();
                    }
                    histograms.push((format!("weights/{name}"), Histogram::of(value.iter())));
                    histograms.push((format!("gradients/{name}"), Histogram::of(grad.iter())));
                });
                let mut values: Vec<Summary<'_>> = histograms
                    .iter()
                    .map(|(tag, h)| Summary::Histogram(tag, h))
                    .collect();
                if let Some((png, size)) = &picture {
                    values.push(Summary::GreyPng("filters/first_layer", png, *size));
                }
                self.writer.write(weights.iter as u64, &values)
            }
        };
        self.since = Instant::now();
        self.failed = written.err();
        self.failed.as_ref()
    }

    /// Ends the recording.
    ///
    /// # Errors
    /// The first write that failed.
    pub fn finish(self) -> Result<()> {
        self.failed.map_or(Ok(()), Err)
    }
}
