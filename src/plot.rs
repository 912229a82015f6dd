//! Figures as PNG files, drawn with plotters: the training curves of §4.5 and §5.7.4.
//!
//! Text uses DejaVu Sans compiled into the binary, so plots render the same on any machine,
//! with or without system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::train::Record;

/// DejaVu Sans (licence in `assets/fonts/DejaVu-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; if it were not, text would be missing, not the plot.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws into an RGB buffer of `size`, then writes it as PNG to `path` atomically.
///
/// # Errors
/// When drawing fails or the file cannot be written.
pub fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<()> {
    register_font();
    let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    let image = image::RgbImage::from_raw(size.0, size.1, rgb).expect("buffer matches the size");
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| plot_error(path, e))?;
    write_atomically(path, png.get_ref())
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!(
        "{}: could not draw the figure: {e}",
        path.display()
    ))
}

/// The book's two figures side by side: the mini-batch loss against iterations (with a
/// moving average over 100 iterations) and train/test accuracy at each evaluation.
///
/// # Errors
/// When the file cannot be written.
pub fn training_curves(path: &Path, losses: &[f64], history: &[Record]) -> Result<()> {
    render_png(path, (1200, 480), |root| {
        let (left, right) = root.split_horizontally(600);
        let err = |e: &dyn std::fmt::Display| e.to_string();

        let iters = losses.len().max(1) as f64;
        let finite = losses.iter().copied().filter(|l| l.is_finite());
        let max_loss = finite.fold(0.0f64, f64::max).max(1e-3) * 1.05;
        let mut chart = axes(&left, "loss", iters, max_loss, "mini-batch loss")?;
        let raw = losses.iter().enumerate().map(|(i, &l)| (i as f64, l));
        chart
            .draw_series(LineSeries::new(raw, BLUE.mix(0.25)))
            .map_err(|e| err(&e))?
            .label("per iteration")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.mix(0.25)));
        chart
            .draw_series(LineSeries::new(
                moving_average(losses, 100),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label("mean of 100")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| err(&e))?;

        let last_iter = history.last().map_or(0.0, |r| r.iter as f64);
        let mut chart = axes(
            &right,
            "accuracy",
            iters.max(last_iter + 1.0),
            1.0,
            "accuracy",
        )?;
        for (name, color, pick) in [
            (
                "train",
                BLUE,
                (|r: &Record| r.train_acc) as fn(&Record) -> f64,
            ),
            ("test", RED, |r: &Record| r.test_acc),
        ] {
            let points: Vec<(f64, f64)> =
                history.iter().map(|r| (r.iter as f64, pick(r))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| err(&e))?;
        Ok(())
    })
}

/// Axes from 0 to `x_max` iterations and 0 to `y_max`, with a caption and tick labels.
fn axes<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    x_max: f64,
    y_max: f64,
    y_desc: &str,
) -> Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String>
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("iterations")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// The mean of each run of `window` values, placed at the run's centre `(i − (window − 1)/2)`;
/// runs whose sum is not finite are left out.
fn moving_average(values: &[f64], window: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut sum = 0.0;
    for (i, &v) in values.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= values[i - window];
        }
        if i + 1 >= window && sum.is_finite() {
            out.push((i as f64 - (window - 1) as f64 / 2.0, sum / window as f64));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_of_a_ramp() {
        // mean of (0, 1, 2) = 1 at index 1, of (1, 2, 3) = 2 at index 2
        assert_eq!(
            moving_average(&[0.0, 1.0, 2.0, 3.0], 3),
            vec![(1.0, 1.0), (2.0, 2.0)]
        );
    }
}
