//! Figures as PNG files, drawn with plotters: the training curves of §4.5 and §5.7.4, and
//! the line charts and histograms of chapter 6's experiments.
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
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

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
    write_atomically(path, &png_bytes(path, size, draw)?)
}

/// The PNG file that [`render_png`] writes, in memory; `path` names the figure in errors.
///
/// # Errors
/// When the figure cannot be drawn.
pub fn png_bytes(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<Vec<u8>> {
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
    Ok(png.into_inner())
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!(
        "{}: could not draw the figure: {e}",
        path.display()
    ))
}

/// The book's two figures side by side: the mini-batch loss against iterations (with a
/// moving average over 100 iterations) and train/test accuracy at each evaluation, as PNG
/// bytes for the file `path` (named in errors), so they can be written with other results.
///
/// # Errors
/// When the figure cannot be drawn.
pub fn training_curves(path: &Path, losses: &[f64], history: &[Record]) -> Result<Vec<u8>> {
    png_bytes(path, (1200, 480), |root| {
        let (left, right) = root.split_horizontally(600);
        let err = |e: &dyn std::fmt::Display| e.to_string();

        let iters = losses.len().max(1) as f64;
        let finite = losses.iter().copied().filter(|l| l.is_finite());
        let max_loss = finite.fold(0.0f64, f64::max).max(1e-3) * 1.05;
        let mut chart = axes(
            &left,
            "loss",
            (0.0..iters, 0.0..max_loss),
            ("iterations", "mini-batch loss"),
        )?;
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
            (0.0..iters.max(last_iter + 1.0), 0.0..1.0),
            ("iterations", "accuracy"),
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

/// Axes over `ranges` (x, y) with a caption, axis descriptions `labels` (x, y) and ticks.
fn axes<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    ranges: (std::ops::Range<f64>, std::ops::Range<f64>),
    labels: (&str, &str),
) -> Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String>
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(ranges.0, ranges.1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(labels.0)
        .x_label_formatter(&|x| format_tick(*x))
        .y_desc(labels.1)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// A tick label: whole numbers without decimals, others with up to three.
fn format_tick(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').to_string()
    }
}

/// Distinct line colours, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a [`Chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry; empty for none.
    pub name: String,
    /// `(x, y)` points; non-finite ones are left out.
    pub points: Vec<(f64, f64)>,
    /// Index into a fixed palette, so the same variant has the same colour in every chart.
    pub color: usize,
    /// Dashed (the book's training curves next to solid validation curves).
    pub dashed: bool,
}

/// One chart of a figure: a title, axes and lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The caption.
    pub title: String,
    /// `(x, y)` axis descriptions.
    pub labels: (String, String),
    /// The y range; the x range spans the points.
    pub y_range: (f64, f64),
    /// The lines.
    pub series: Vec<Series>,
}

/// Line charts in a grid of `columns` columns, each `cell` pixels, saved as PNG.
///
/// # Errors
/// When the file cannot be written.
pub fn line_charts(path: &Path, charts: &[Chart], columns: usize, cell: (u32, u32)) -> Result<()> {
    let columns = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(columns).max(1);
    let size = (cell.0 * columns as u32, cell.1 * rows as u32);
    render_png(path, size, |root| {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            let finite = || {
                chart
                    .series
                    .iter()
                    .flat_map(|s| &s.points)
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
            };
            let x_min = finite().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let x_max = finite().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let (x_min, x_max) = if x_min < x_max {
                (x_min, x_max)
            } else {
                (0.0, 1.0)
            };
            let mut ctx = axes(
                area,
                &chart.title,
                (x_min..x_max, chart.y_range.0..chart.y_range.1),
                (&chart.labels.0, &chart.labels.1),
            )?;
            let clip = |&(x, y): &(f64, f64)| {
                (x.is_finite() && y.is_finite())
                    .then_some((x, y.clamp(chart.y_range.0, chart.y_range.1)))
            };
            for series in &chart.series {
                let color = PALETTE[series.color % PALETTE.len()];
                let points: Vec<(f64, f64)> = series.points.iter().filter_map(clip).collect();
                let style = color.stroke_width(2);
                let drawn = if series.dashed {
                    ctx.draw_series(DashedLineSeries::new(points, 6, 4, style))
                } else {
                    ctx.draw_series(LineSeries::new(points, style))
                }
                .map_err(|e| err(&e))?;
                if !series.name.is_empty() {
                    drawn.label(series.name.as_str()).legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
            }
            if chart.series.iter().any(|s| !s.name.is_empty()) {
                ctx.configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .border_style(BLACK)
                    .background_style(WHITE.mix(0.8))
                    .draw()
                    .map_err(|e| err(&e))?;
            }
        }
        Ok(())
    })
}

/// Histograms side by side, one per `(title, values)`, each of `bins` equal bins over
/// `range` (values outside are left out), as the book's activation histograms (§6.2.2).
///
/// # Errors
/// When the file cannot be written.
pub fn histograms(
    path: &Path,
    panels: &[(String, Vec<f64>)],
    bins: usize,
    range: (f64, f64),
) -> Result<()> {
    let width = 300 * panels.len().max(1) as u32;
    render_png(path, (width, 320), |root| {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let counts: Vec<Vec<usize>> = panels
            .iter()
            .map(|(_, values)| bin_counts(values, bins, range))
            .collect();
        let y_max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
        for ((area, (title, _)), counts) in root
            .split_evenly((1, panels.len().max(1)))
            .iter()
            .zip(panels)
            .zip(&counts)
        {
            let mut ctx = axes(area, title, (range.0..range.1, 0.0..y_max), ("", ""))?;
            let step = (range.1 - range.0) / bins.max(1) as f64;
            ctx.draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = range.0 + i as f64 * step;
                Rectangle::new([(x0, 0.0), (x0 + step, c as f64)], PALETTE[0].filled())
            }))
            .map_err(|e| err(&e))?;
        }
        Ok(())
    })
}

/// How many of `values` fall into each of `bins` equal bins over `range` (the last bin
/// includes its right edge, as numpy's `hist`).
pub fn bin_counts(values: &[f64], bins: usize, range: (f64, f64)) -> Vec<usize> {
    let mut counts = vec![0; bins];
    if bins == 0 {
        return counts;
    }
    let width = (range.1 - range.0) / bins as f64;
    for &v in values {
        if v >= range.0 && v <= range.1 {
            let i = (((v - range.0) / width) as usize).min(bins - 1);
            counts[i] += 1;
        }
    }
    counts
}

/// One picture of an [`image_grid`] with a caption under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Text under the picture (may be empty).
    pub caption: String,
    /// Grey levels `(rows, cols)` from 0 (white) to 1 (black), as matplotlib's `gray_r`.
    pub pixels: ndarray::Array2<f64>,
}

impl Tile {
    /// A tile whose values are stretched so that their minimum is white and their maximum
    /// black, as `imshow` scales each filter in the book's `visualize_filter.py`.
    pub fn stretched(caption: String, values: ndarray::ArrayView2<'_, f64>) -> Tile {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        Tile {
            caption,
            pixels: values.mapv(|v| if v.is_finite() { (v - lo) / span } else { 0.0 }),
        }
    }
}

/// The first layer's weights as pictures: for a convolution `W (FN, C, FH, FW)` one tile per
/// filter (its first channel), for an Affine layer `W (D, M)` one tile per unit, its `D`
/// input weights laid out as the `image` `(rows, cols)` they multiply. At most `limit` tiles.
///
/// # Errors
/// When `w` is neither, or an Affine layer's `D` is not `rows · cols`.
pub fn first_layer_tiles(
    w: ndarray::ArrayViewD<'_, f32>,
    image: (usize, usize),
    limit: usize,
) -> Result<Vec<Tile>> {
    let w = w.mapv(f64::from);
    match *w.shape() {
        [filters, _, _, _] => Ok((0..filters.min(limit))
            .map(|f| {
                let plane = w.slice(ndarray::s![f, 0, .., ..]);
                Tile::stretched(String::new(), plane)
            })
            .collect()),
        [d, units] if d == image.0 * image.1 => Ok((0..units.min(limit))
            .map(|u| {
                let column = w.slice(ndarray::s![.., u]);
                let picture = column
                    .to_shape(image)
                    .expect("D = rows · cols")
                    .into_owned();
                Tile::stretched(String::new(), picture.view())
            })
            .collect()),
        _ => Err(Error::Invalid(format!(
            "the first weights have shape {:?}: neither convolution filters (FN, C, FH, FW) nor an Affine layer over {}×{} images",
            w.shape(),
            image.0,
            image.1
        ))),
    }
}

/// `tiles` side by side, `columns` a row, each pixel a `scale × scale` square, one pixel of
/// white between them, as a grey PNG in memory; with its `(width, height)`. Unlike
/// [`image_grid`] it draws no text, so it needs no font.
///
/// # Errors
/// When there are no tiles or the PNG cannot be encoded.
pub fn grey_mosaic_png(
    tiles: &[Tile],
    columns: usize,
    scale: u32,
) -> Result<(Vec<u8>, (u32, u32))> {
    let (rows, cols) = tiles.iter().fold((0, 0), |(r, c), t| {
        (r.max(t.pixels.nrows()), c.max(t.pixels.ncols()))
    });
    if rows == 0 || cols == 0 {
        return Err(Error::Invalid("no pictures to draw".into()));
    }
    let columns = columns.clamp(1, tiles.len());
    let cell = |n: usize| n as u32 * scale + 1;
    let width = columns as u32 * cell(cols) + 1;
    let height = tiles.len().div_ceil(columns) as u32 * cell(rows) + 1;
    let mut picture = image::GrayImage::from_pixel(width, height, image::Luma([255]));
    for (i, t) in tiles.iter().enumerate() {
        let (x0, y0) = (
            1 + (i % columns) as u32 * cell(cols),
            1 + (i / columns) as u32 * cell(rows),
        );
        for ((r, c), &v) in t.pixels.indexed_iter() {
            let grey = image::Luma([(255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8]);
            for (dy, dx) in (0..scale).flat_map(|dy| (0..scale).map(move |dx| (dy, dx))) {
                picture.put_pixel(x0 + c as u32 * scale + dx, y0 + r as u32 * scale + dy, grey);
            }
        }
    }
    let mut png = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("could not encode a PNG: {e}")))?;
    Ok((png.into_inner(), (width, height)))
}

/// Groups of pictures, each group under a heading, `columns` pictures a row, every pixel
/// drawn as a `scale × scale` square, saved as PNG.
///
/// # Errors
/// When the file cannot be written.
pub fn image_grid(
    path: &Path,
    groups: &[(String, Vec<Tile>)],
    columns: usize,
    scale: u32,
) -> Result<()> {
    const PAD: u32 = 10;
    const HEADING: u32 = 30;
    let columns = columns.max(1);
    let tile = |t: &Tile| {
        (
            t.pixels.ncols() as u32 * scale,
            t.pixels.nrows() as u32 * scale,
        )
    };
    let cell_w = groups
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| tile(t).0))
        .max()
        .unwrap_or(0)
        .max(60);
    let cell_h = groups
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| tile(t).1))
        .max()
        .unwrap_or(0);
    let captioned = groups
        .iter()
        .flat_map(|(_, t)| t)
        .any(|t| !t.caption.is_empty());
    let row_h = cell_h + PAD + if captioned { 18 } else { 0 };
    let group_h = |tiles: &[Tile]| HEADING + row_h * tiles.len().div_ceil(columns) as u32;
    let width = PAD + columns as u32 * (cell_w + PAD);
    let height = PAD + groups.iter().map(|(_, t)| group_h(t) + PAD).sum::<u32>();
    render_png(path, (width, height.max(1)), |root| {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let mut top = PAD as i32;
        for (heading, tiles) in groups {
            root.draw(&Text::new(
                heading.as_str(),
                (PAD as i32, top + 4),
                ("sans-serif", 20).into_font(),
            ))
            .map_err(|e| err(&e))?;
            for (i, t) in tiles.iter().enumerate() {
                let x0 = (PAD + (i % columns) as u32 * (cell_w + PAD)) as i32;
                let y0 = top + (HEADING + (i / columns) as u32 * row_h) as i32;
                let s = scale as i32;
                for ((r, c), &v) in t.pixels.indexed_iter() {
                    let g = (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8;
                    let (x, y) = (x0 + c as i32 * s, y0 + r as i32 * s);
                    root.draw(&Rectangle::new(
                        [(x, y), (x + s, y + s)],
                        RGBColor(g, g, g).filled(),
                    ))
                    .map_err(|e| err(&e))?;
                }
                if !t.caption.is_empty() {
                    root.draw(&Text::new(
                        t.caption.as_str(),
                        (x0, y0 + tile(t).1 as i32 + 3),
                        ("sans-serif", 14).into_font(),
                    ))
                    .map_err(|e| err(&e))?;
                }
            }
            top += (group_h(tiles) + PAD) as i32;
        }
        Ok(())
    })
}

/// The mean of each run of `window` values, placed at the run's centre `(i − (window − 1)/2)`;
/// runs whose sum is not finite are left out.
pub fn moving_average(values: &[f64], window: usize) -> Vec<(f64, f64)> {
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
    fn bins_like_numpy_hist() {
        // np.histogram([0, 0.1, 0.5, 0.99, 1.0, 1.5], bins=2, range=(0, 1)) → [2, 3]
        assert_eq!(
            bin_counts(&[0.0, 0.1, 0.5, 0.99, 1.0, 1.5], 2, (0.0, 1.0)),
            vec![2, 3]
        );
    }

    #[test]
    fn moving_average_of_a_ramp() {
        // mean of (0, 1, 2) = 1 at index 1, of (1, 2, 3) = 2 at index 2
        assert_eq!(
            moving_average(&[0.0, 1.0, 2.0, 3.0], 3),
            vec![(1.0, 1.0), (2.0, 2.0)]
        );
    }
}
