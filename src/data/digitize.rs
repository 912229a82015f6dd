//! Pictures of digits (PNG, JPEG) turned into MNIST-style images, the way MNIST was prepared:
//! light ink on a dark background, the digit scaled to fit a 20×20 box (keeping its aspect
//! ratio, anti-aliased) and placed in the 28×28 frame so that its centre of mass is at the
//! centre.

// The bytes parsed here come from users: nothing about them is unwrapped or expected.
#![cfg_attr(not(test), deny(clippy::expect_used))]

use std::path::Path;

use image::imageops::{FilterType, resize};
use image::{ImageBuffer, ImageDecoder, Luma};

use crate::error::{Error, Result};

type Gray = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Ink below this (on a 0–1 scale, after normalising) does not count for the bounding box.
const INK: f32 = 0.1;

/// The largest picture accepted, in pixels (a 24-megapixel photo): decoding it and its
/// grey copies stays within a few hundred MB. Under the fuzzer (`cfg(fuzzing)`) the limit is
/// 4,096 pixels (64×64, still larger than the frame, so scaling down is exercised), so that
/// each execution stays fast: a tiny file may claim a 20-megapixel picture, which is then
/// decoded in full; the code refusing and decoding is the same.
const MAX_PIXELS: u64 = if cfg!(fuzzing) { 1 << 12 } else { 24_000_000 };

/// The widest (and tallest) picture accepted, in pixels.
const MAX_SIDE: u32 = 16_384;

/// The most memory the decoder may allocate (a 24-megapixel RGBA picture at 16 bits).
const MAX_DECODE_BYTES: u64 = 8 * MAX_PIXELS;

/// Reads an image file and converts it with [`digitize_bytes`].
///
/// # Errors
/// When the file cannot be read, is not a PNG or JPEG image, is too large, or shows no digit;
/// the message starts with the file's name.
pub fn digitize_file(path: &Path, rows: usize, cols: usize) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    digitize_bytes(&bytes, rows, cols)
        .map_err(|why| Error::Invalid(format!("{}: {why}", path.display())))
}

/// Decodes a PNG or JPEG picture and converts it with [`digitize`] to `rows × cols` bytes.
///
/// The picture's size is checked from its header before its pixels are decoded, so a small
/// file that claims a giant picture is refused without allocating it.
///
/// # Errors
/// When the bytes are not a PNG or JPEG image, the picture is larger than 24 megapixels or
/// 16384 pixels on a side, or it shows no digit.
pub fn digitize_bytes(bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>, String> {
    let unreadable = |e: image::ImageError| format!("not a readable PNG or JPEG image ({e})");
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(e.into()))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    // The decoder has read the header only: the size is known before any pixel is decoded.
    let decoder = reader.into_decoder().map_err(unreadable)?;
    let (w, h) = decoder.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!(
            "the picture is {w}×{h} pixels, larger than this command reads \
             ({MAX_SIDE} on a side, {} megapixels in all); scale it down first",
            MAX_PIXELS as f64 / 1e6
        ));
    }
    let grey = image::DynamicImage::from_decoder(decoder)
        .map_err(unreadable)?
        .to_luma32f();
    digitize(&grey).map(|img| fit(&img, rows, cols))
}

/// Normalises a grey image: light-on-dark with the background at 0 and the brightest ink at 1,
/// cropped to the ink's bounding box.
///
/// Dark-on-light pictures (a pen on paper) are told apart from light-on-dark ones (MNIST) by
/// their border: the border is background.
///
/// # Errors
/// When the picture is one shade, so shows no digit.
pub fn digitize(image: &Gray) -> Result<Gray, String> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return Err("the image is empty".into());
    }
    let border: Vec<f32> = image
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1)
        .map(|(_, _, p)| p.0[0])
        .collect();
    let border_mean = border.iter().sum::<f32>() / border.len() as f32;
    let invert = border_mean > 0.5;
    let ink = |v: f32| if invert { 1.0 - v } else { v };
    let background = ink(border_mean);
    let brightest = image.pixels().map(|p| ink(p.0[0])).fold(0.0f32, f32::max);
    if brightest - background < 0.05 {
        return Err("no digit found: the picture is a single shade".into());
    }
    let scale = 1.0 / (brightest - background);
    let normalised = Gray::from_fn(w, h, |x, y| {
        Luma([((ink(image.get_pixel(x, y).0[0]) - background) * scale).clamp(0.0, 1.0)])
    });
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in normalised.enumerate_pixels() {
        if p.0[0] > INK {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    Ok(image::imageops::crop_imm(&normalised, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image())
}

/// Scales `digit` into a box of 20/28 of the frame (longer side), then places it in a
/// `rows × cols` frame with its centre of mass at the centre; pixels as bytes 0–255.
fn fit(digit: &Gray, rows: usize, cols: usize) -> Vec<u8> {
    let (w, h) = digit.dimensions();
    let box_side = (rows.min(cols) as f64 * 20.0 / 28.0).round().max(1.0);
    let scale = box_side / f64::from(w.max(h));
    let (nw, nh) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    let scaled = resize(digit, nw, nh, FilterType::Lanczos3);
    let (mut mass, mut cx, mut cy) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in scaled.enumerate_pixels() {
        let v = f64::from(p.0[0].clamp(0.0, 1.0));
        mass += v;
        cx += v * (f64::from(x) + 0.5);
        cy += v * (f64::from(y) + 0.5);
    }
    let (cx, cy) = if mass > 0.0 {
        (cx / mass, cy / mass)
    } else {
        (f64::from(nw) / 2.0, f64::from(nh) / 2.0)
    };
    let dx = (cols as f64 / 2.0 - cx).round() as i64;
    let dy = (rows as f64 / 2.0 - cy).round() as i64;
    let mut frame = vec![0u8; rows * cols];
    for (x, y, p) in scaled.enumerate_pixels() {
        let (fx, fy) = (i64::from(x) + dx, i64::from(y) + dy);
        if (0..cols as i64).contains(&fx) && (0..rows as i64).contains(&fy) {
            frame[fy as usize * cols + fx as usize] =
                (p.0[0].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 60×90 dark-on-light picture of a vertical bar 10 wide and 60 high, off-centre.
    fn bar_on_paper() -> Gray {
        Gray::from_fn(60, 90, |x, y| {
            Luma([if (5..15).contains(&x) && (20..80).contains(&y) {
                0.1
            } else {
                0.9
            }])
        })
    }

    #[test]
    fn a_dark_bar_on_paper_becomes_a_centred_white_bar_20_high() {
        let frame = fit(&digitize(&bar_on_paper()).unwrap(), 28, 28);
        let on: Vec<(usize, usize)> = (0..28 * 28)
            .filter(|i| frame[*i] > 128)
            .map(|i| (i / 28, i % 28))
            .collect();
        let rows: Vec<usize> = on.iter().map(|p| p.0).collect();
        let cols: Vec<usize> = on.iter().map(|p| p.1).collect();
        // 60 high scaled to 20; 10 wide scaled to 10/3 ≈ 3; centred at (14, 14).
        assert_eq!(
            (rows.iter().min(), rows.iter().max()),
            (Some(&4), Some(&23))
        );
        let (c0, c1) = (*cols.iter().min().unwrap(), *cols.iter().max().unwrap());
        assert!(
            (2..=4).contains(&(c1 - c0 + 1)) && c0 >= 12 && c1 <= 16,
            "{c0}..{c1}"
        );
        // corners stay background
        assert_eq!((frame[0], frame[27], frame[28 * 28 - 1]), (0, 0, 0));
    }

    #[test]
    fn a_blank_picture_is_refused() {
        let blank = Gray::from_pixel(10, 10, Luma([0.7]));
        assert_eq!(
            digitize(&blank).unwrap_err(),
            "no digit found: the picture is a single shade"
        );
    }
}
