//! TensorBoard event files: what `backprop train --tensorboard DIR` writes, read by
//! TensorBoard (`tensorboard --logdir DIR`) and its Python event reader.
//!
//! An event file (`events.out.tfevents.SECONDS.backprop`) is a sequence of TFRecords, each an
//! `Event` protocol buffer (TensorFlow's `event.proto` and `summary.proto`, the fields
//! written here declared below with their field numbers):
//!
//! ```text
//! record   u64 length (little-endian) · u32 masked CRC-32C of the length · data · u32 masked CRC-32C of data
//! masked   ((crc >> 15) | (crc << 17)) + 0xa282ead8
//! ```
//!
//! Each record is written whole with one `write` and flushed, so a run that is killed leaves a
//! file TensorBoard reads up to its last whole record. Every run opens a new file in its
//! folder, named to sort after the others, that starts with a `SessionLog START` at the first
//! step it will write (0, or a resumed run's checkpoint): TensorBoard's event reader drops
//! what earlier files hold from that step on, so a killed run and its resumption read as one
//! run, and a new run into an old folder replaces the old one (the TensorBoard server, which
//! ignores `START`, shows each series restarting from that step).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The protocol buffer messages written (the subset of TensorFlow's that is used).
mod proto {
    /// `tensorboard.Event`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        /// Seconds since the Unix epoch.
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        /// The training step (here: the iteration).
        #[prost(int64, tag = "2")]
        pub step: i64,
        /// `brain.Event:2` in the first event of a file.
        #[prost(string, optional, tag = "3")]
        pub file_version: Option<String>,
        /// The values of this step.
        #[prost(message, optional, tag = "5")]
        pub summary: Option<Summary>,
        /// A (re)start of the run.
        #[prost(message, optional, tag = "7")]
        pub session_log: Option<SessionLog>,
    }

    /// `tensorboard.SessionLog`; status 1 is `START`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SessionLog {
        /// `SessionStatus`: 1 = `START`.
        #[prost(int32, tag = "1")]
        pub status: i32,
    }

    /// `tensorboard.Summary`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        /// One value per tag.
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<Value>,
    }

    /// `tensorboard.Summary.Value`: a tag and one of its kinds of value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        /// The series it belongs to, such as `accuracy/test`.
        #[prost(string, tag = "1")]
        pub tag: String,
        /// A scalar.
        #[prost(float, optional, tag = "2")]
        pub simple_value: Option<f32>,
        /// An image.
        #[prost(message, optional, tag = "4")]
        pub image: Option<Image>,
        /// A histogram.
        #[prost(message, optional, tag = "5")]
        pub histo: Option<Histogram>,
    }

    /// `tensorboard.Summary.Image`: an encoded (PNG) picture.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        /// Rows.
        #[prost(int32, tag = "1")]
        pub height: i32,
        /// Columns.
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 = grey, 3 = RGB.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        /// The PNG file.
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    /// `tensorboard.HistogramProto`: counts of values in buckets, each bucket ending at its
    /// limit and starting at the previous one (the first at `min`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        /// The smallest value.
        #[prost(double, tag = "1")]
        pub min: f64,
        /// The largest value.
        #[prost(double, tag = "2")]
        pub max: f64,
        /// How many values.
        #[prost(double, tag = "3")]
        pub num: f64,
        /// Their sum.
        #[prost(double, tag = "4")]
        pub sum: f64,
        /// The sum of their squares.
        #[prost(double, tag = "5")]
        pub sum_squares: f64,
        /// Each bucket's upper edge.
        #[prost(double, repeated, tag = "6")]
        pub bucket_limit: Vec<f64>,
        /// Each bucket's count.
        #[prost(double, repeated, tag = "7")]
        pub bucket: Vec<f64>,
    }
}

/// Buckets of a histogram: equal widths from the smallest value to the largest.
const HISTOGRAM_BUCKETS: usize = 30;

/// CRC-32C (Castagnoli), the checksum of TFRecords.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A TFRecord's checksum: CRC-32C, rotated and offset so that a CRC of CRCs is not trivial.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = CRC32C.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord holding `data`.
fn record(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A value of an [`EventWriter::write`]: a tag and what it records.
#[derive(Debug, Clone, PartialEq)]
pub enum Summary<'a> {
    /// A scalar series (loss, accuracy), stored as `f32`.
    Scalar(&'a str, f32),
    /// The distribution of some values.
    Histogram(&'a str, &'a Histogram),
    /// A grey PNG picture of `(width, height)` pixels.
    GreyPng(&'a str, &'a [u8], (u32, u32)),
}

impl Summary<'_> {
    fn to_proto(&self) -> proto::Value {
        let mut value = proto::Value::default();
        match *self {
            Summary::Scalar(tag, v) => {
                value.tag = tag.to_string();
                value.simple_value = Some(v);
            }
            Summary::Histogram(tag, histogram) => {
                value.tag = tag.to_string();
                value.histo = Some(histogram.0.clone());
            }
            Summary::GreyPng(tag, png, (width, height)) => {
                value.tag = tag.to_string();
                value.image = Some(proto::Image {
                    height: i32::try_from(height).unwrap_or(i32::MAX),
                    width: i32::try_from(width).unwrap_or(i32::MAX),
                    colorspace: 1,
                    encoded_image_string: png.to_vec(),
                });
            }
        }
        value
    }
}

/// A histogram of values, ready to write: 30 buckets of equal width from the
/// smallest finite value to the largest.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram(proto::Histogram);

impl Histogram {
    /// The histogram of the finite ones of `values` (NaN and infinities are left out), in two
    /// passes: one for the range, one for the buckets and sums.
    pub fn of<'v>(values: impl Iterator<Item = &'v f32> + Clone) -> Self {
        let finite = values.map(|&v| f64::from(v)).filter(|v| v.is_finite());
        let (min, max) = finite
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if min > max {
            return Histogram(proto::Histogram::default());
        }
        let width = (max - min) / HISTOGRAM_BUCKETS as f64;
        let mut h = proto::Histogram {
            min,
            max,
            bucket: vec![0.0; HISTOGRAM_BUCKETS],
            bucket_limit: (1..=HISTOGRAM_BUCKETS)
                .map(|i| min + width * i as f64)
                .collect(),
            ..Default::default()
        };
        h.bucket_limit[HISTOGRAM_BUCKETS - 1] = max;
        for v in finite {
            let i = if width > 0.0 {
                ((v - min) / width) as usize
            } else {
                0
            };
            h.bucket[i.min(HISTOGRAM_BUCKETS - 1)] += 1.0;
            (h.num, h.sum, h.sum_squares) = (h.num + 1.0, h.sum + v, h.sum_squares + v * v);
        }
        Histogram(h)
    }
}

/// Writes one event file of a TensorBoard run folder.
#[derive(Debug)]
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Opens a new event file in `dir` (created if missing), named to sort after any event
    /// file already there, for a run whose first step is `first_step` (0, or where a resumed
    /// run continues): the file starts with a `SessionLog START` there.
    ///
    /// # Errors
    /// When the folder or file cannot be created or written.
    pub fn create(dir: &Path, first_step: u64) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: not a folder; TensorBoard's event files go into a folder (one per run)",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let latest = latest_event_seconds(dir)?;
        let seconds = (now() as u64).max(latest.map_or(0, |s| s + 1));
        let path = dir.join(format!("events.out.tfevents.{seconds:010}.backprop"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut writer = EventWriter { file, path };
        writer.write_event(proto::Event {
            wall_time: now(),
            file_version: Some("brain.Event:2".to_string()),
            ..Default::default()
        })?;
        writer.write_event(proto::Event {
            wall_time: now(),
            step: i64::try_from(first_step).unwrap_or(i64::MAX),
            session_log: Some(proto::SessionLog { status: 1 }),
            ..Default::default()
        })?;
        Ok(writer)
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `values` as the summary of `step`, one record, flushed.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&mut self, step: u64, values: &[Summary<'_>]) -> Result<()> {
        self.write_event(proto::Event {
            wall_time: now(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            summary: Some(proto::Summary {
                value: values.iter().map(Summary::to_proto).collect(),
            }),
            ..Default::default()
        })
    }

    fn write_event(&mut self, event: proto::Event) -> Result<()> {
        let bytes = record(&prost::Message::encode_to_vec(&event));
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// One event of a file, as [`read_events`] gives it back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Its step.
    pub step: i64,
    /// A `SessionLog START`: the run was resumed at this step.
    pub restart: bool,
    /// Its scalars, `(tag, value)`.
    pub scalars: Vec<(String, f32)>,
    /// Its histograms, `(tag, number of values)`.
    pub histograms: Vec<(String, f64)>,
    /// The tags of its images.
    pub images: Vec<String>,
}

/// The events of an event file, every record's checksums checked; a last record cut short
/// (by a kill during its write) ends the list, as it ends TensorBoard's reading.
///
/// # Errors
/// When the file cannot be read, or a whole record is corrupt.
pub fn read_events(path: &Path) -> Result<Vec<RecordedEvent>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let corrupt =
        |at: usize, what: &str| Error::Invalid(format!("{}: {what} at byte {at}", path.display()));
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 12) {
        let (length, length_crc) = head.split_at(8);
        if length_crc != masked_crc(length).to_le_bytes() {
            return Err(corrupt(at, "a record's length fails its checksum"));
        }
        let len = u64::from_le_bytes(length.try_into().map_err(|_| corrupt(at, "short"))?);
        let Some(data) = usize::try_from(len)
            .ok()
            .and_then(|n| bytes.get(at + 12..at + 12 + n))
        else {
            break;
        };
        let Some(data_crc) = bytes.get(at + 12 + data.len()..at + 16 + data.len()) else {
            break;
        };
        if data_crc != masked_crc(data).to_le_bytes() {
            return Err(corrupt(at, "a record's data fails its checksum"));
        }
        let event: proto::Event =
            prost::Message::decode(data).map_err(|e| corrupt(at, &format!("not an event: {e}")))?;
        let values = event.summary.map(|s| s.value).unwrap_or_default();
        events.push(RecordedEvent {
            step: event.step,
            restart: event.session_log.is_some_and(|l| l.status == 1),
            scalars: values
                .iter()
                .filter_map(|v| Some((v.tag.clone(), v.simple_value?)))
                .collect(),
            histograms: values
                .iter()
                .filter_map(|v| Some((v.tag.clone(), v.histo.as_ref()?.num)))
                .collect(),
            images: values
                .iter()
                .filter(|v| v.image.is_some())
                .map(|v| v.tag.clone())
                .collect(),
        });
        at += 16 + data.len();
    }
    Ok(events)
}

/// The largest `SECONDS` of the event files in `dir`, if it has any.
fn latest_event_seconds(dir: &Path) -> Result<Option<u64>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let rest = name.strip_prefix("events.out.tfevents.")?;
            rest.split('.').next()?.parse::<u64>().ok()
        })
        .max())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksum of TFRecords as TensorFlow computes it: CRC-32C of "123456789" is the
    /// catalogued 0xe3069283, and the mask of 0 is the offset alone.
    #[test]
    fn records_carry_tensorflows_masked_crc32c() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        let framed = record(b"abc");
        assert_eq!(framed.len(), 8 + 4 + 3 + 4);
        assert_eq!(&framed[..8], &3u64.to_le_bytes());
        assert_eq!(&framed[12..15], b"abc");
        assert_eq!(&framed[15..], &masked_crc(b"abc").to_le_bytes());
    }

    /// Every finite value is counted once, in the bucket its value falls in; NaN is left out.
    #[test]
    fn histograms_count_each_finite_value_in_its_bucket() {
        let Histogram(h) = Histogram::of([0.0, 1.0, 2.0, 3.0, f32::NAN, 3.0].iter());
        assert_eq!(
            (h.min, h.max, h.num, h.sum, h.sum_squares),
            (0.0, 3.0, 5.0, 9.0, 23.0)
        );
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        assert_eq!(
            (h.bucket[0], h.bucket[10], h.bucket[20], h.bucket[29]),
            (1.0, 1.0, 1.0, 2.0)
        );
        assert_eq!(h.bucket_limit[29], 3.0);
        let Histogram(same) = Histogram::of([2.5; 4].iter());
        assert_eq!((same.bucket[0], same.num), (4.0, 4.0));
    }

    /// A second writer in the same folder sorts after the first and says where it resumed.
    #[test]
    fn a_resumed_run_writes_a_later_file_that_starts_with_its_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = EventWriter::create(dir.path(), 0).unwrap();
        let second = EventWriter::create(dir.path(), 2000).unwrap();
        assert!(
            second.path() > first.path(),
            "{:?} {:?}",
            first.path(),
            second.path()
        );
        let bytes = std::fs::read(second.path()).unwrap();
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let after_first = 12 + len + 4;
        let len2 = u64::from_le_bytes(bytes[after_first..after_first + 8].try_into().unwrap());
        let start = &bytes[after_first + 12..after_first + 12 + len2 as usize];
        let event: proto::Event = prost::Message::decode(start).unwrap();
        assert_eq!(
            (event.step, event.session_log),
            (2000, Some(proto::SessionLog { status: 1 }))
        );
        let events = read_events(second.path()).unwrap();
        assert_eq!(
            (events.len(), events[1].restart, events[1].step),
            (2, true, 2000)
        );
    }

    /// What is written reads back; a record cut short ends the reading, a flipped byte in a
    /// whole one is an error.
    #[test]
    fn events_read_back_and_a_torn_record_ends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path(), 0).unwrap();
        writer
            .write(
                7,
                &[
                    Summary::Scalar("loss/batch", 0.25),
                    Summary::Histogram("weights/W1", &Histogram::of([1.0, 2.0].iter())),
                ],
            )
            .unwrap();
        let events = read_events(writer.path()).unwrap();
        assert_eq!((events[1].restart, events[1].step), (true, 0));
        assert_eq!(events[2].scalars, vec![("loss/batch".to_string(), 0.25)]);
        assert_eq!(events[2].histograms, vec![("weights/W1".to_string(), 2.0)]);
        let bytes = std::fs::read(writer.path()).unwrap();
        std::fs::write(writer.path(), &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(read_events(writer.path()).unwrap().len(), 2);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 6;
        flipped[last] ^= 1;
        std::fs::write(writer.path(), &flipped).unwrap();
        assert!(read_events(writer.path()).is_err());
    }
}
