//! KL per latent unit of a hierarchical VAE, one bar chart per stochastic layer (bottom layer first): each
//! unit's mean KL in nats, units sorted from the largest KL, on a log axis shared by all layers, so one sees
//! how many units each layer uses and how the layers compare.
//!
//! plotters draws the frame and the log y axis; the bars and the rank labels under them are drawn in pixels
//! from its coordinate mapping, so every label sits under its bar.

use super::canvas::{drawing_error, Area, Canvas};
use super::text::{self, FAMILY, LABEL, SMALL, TITLE};
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

const MARGIN: i32 = 16;
const MIN_WIDTH: i32 = 960;
const MAX_PLOT_W: i32 = 1400;
/// Pixels per unit the plot would like, up to [`MAX_PLOT_W`].
const UNIT_W: i32 = 14;
const PLOT_H: i32 = 170;
const Y_LABEL_AREA: i32 = 78;
const TICKS_H: i32 = 26;
const TICK_FONT: f64 = 13.0;
const AXIS_TITLE: f64 = LABEL - 2.0;
const PANEL_GAP: i32 = 22;
const MAX_BAR_W: i32 = 48;
/// KL values below this many nats are drawn at it: an empty bar on the log axis rather than a missing one.
const FLOOR: f64 = 1e-4;
const BAR: RGBColor = RGBColor(76, 114, 176);
const INK: RGBColor = RGBColor(40, 40, 40);
const GRAY: RGBColor = RGBColor(90, 90, 90);

/// One latent layer's units for the figure.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerKl {
    /// The layer's name, e.g. "z1".
    pub name: String,
    /// Mean KL of each unit in nats, in unit order.
    pub unit_kl: Vec<f64>,
    /// Active units of the layer, as counted by the caller; printed in the panel's title.
    pub active: usize,
}

/// Draws `layers` (bottom layer first) into a PNG at `path`.
pub fn save_unit_kl(layers: &[LayerKl], title: &str, path: &Path) -> Result<()> {
    render_unit_kl(layers, title)?.save(path)
}

/// One panel per layer, stacked top to bottom in the order given, under `title`.
pub fn render_unit_kl(layers: &[LayerKl], title: &str) -> Result<Canvas> {
    check(layers)?;
    let sorted: Vec<Vec<f64>> = layers
        .iter()
        .map(|l| {
            let mut v = l.unit_kl.clone();
            v.sort_by(|a, b| b.total_cmp(a));
            v
        })
        .collect();
    let y = (FLOOR, y_top(&sorted));
    let subtitle = format!(
        "bars: mean KL of each unit over the data, largest first; log axis shared by all layers, \
         KL below {} nats drawn as no bar",
        text::short_number(FLOOR)
    );
    let most_units = sorted.iter().map(Vec::len).max().unwrap_or(1) as i32;
    let plot_w = (most_units * UNIT_W).clamp(MIN_WIDTH - 2 * MARGIN, MAX_PLOT_W);
    let width = (plot_w + 2 * MARGIN)
        .max(text::width(title, TITLE)? as i32 + 2 * MARGIN)
        .max(text::width(&subtitle, SMALL)? as i32 + 2 * MARGIN);
    let plot_w = width - 2 * MARGIN;
    let top = MARGIN + TITLE as i32 + 6 + SMALL as i32 + 14;
    let chart_h = PLOT_H + TICKS_H;
    let panel_h = LABEL as i32 + 4 + chart_h + 2 + AXIS_TITLE as i32;
    let height = top + layers.len() as i32 * (panel_h + PANEL_GAP) - PANEL_GAP + MARGIN;

    let mut canvas = Canvas::new(width as u32, height as u32)?;
    canvas.draw(|area| {
        let centre = width / 2;
        let at = (centre, MARGIN);
        text::draw(area, title, TITLE, at, (HPos::Center, VPos::Top), BLACK)?;
        let at = (centre, MARGIN + TITLE as i32 + 6);
        text::draw(area, &subtitle, SMALL, at, (HPos::Center, VPos::Top), GRAY)?;
        for (k, (layer, values)) in layers.iter().zip(&sorted).enumerate() {
            let y0 = top + k as i32 * (panel_h + PANEL_GAP);
            let panel = area
                .clone()
                .shrink((MARGIN, y0), (plot_w as u32, panel_h as u32));
            draw_panel(&panel, layer, values, y)?;
        }
        Ok(())
    })?;
    Ok(canvas)
}

/// At least one layer, each with units, all of them finite.
fn check(layers: &[LayerKl]) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::msg(
            "a KL-per-unit figure needs at least one latent layer, got none",
        ));
    }
    for l in layers {
        if l.unit_kl.is_empty() {
            return Err(Error::msg(format!(
                "latent layer `{}` has no units to draw in a KL-per-unit figure",
                l.name
            )));
        }
        if let Some((i, v)) = l.unit_kl.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::msg(format!(
                "latent layer `{}`: unit {i} has KL {v}; expected a finite number of nats",
                l.name
            )));
        }
    }
    Ok(())
}

/// The top of the shared log axis: the decade above the largest KL with some headroom, at least one decade
/// above [`FLOOR`].
fn y_top(sorted: &[Vec<f64>]) -> f64 {
    let max = sorted
        .iter()
        .filter_map(|v| v.first().copied())
        .fold(FLOOR, f64::max);
    10f64.powf((max * 1.5).log10().ceil()).max(FLOOR * 10.0)
}

/// Distance between labelled ranks (1, 5, 10, 20, 50, 100, 200, …) so that fewer than `max_labels` fit; no 2,
/// as rank 1 is always labelled and "1 2 4 6" reads as a mistake.
fn rank_step(units: usize, max_labels: usize) -> usize {
    let max_labels = max_labels.max(2);
    if units < max_labels {
        return 1;
    }
    let mut decade = 1;
    loop {
        for step in [5 * decade, 10 * decade, 20 * decade] {
            if units.div_ceil(step) < max_labels {
                return step;
            }
        }
        decade *= 10;
    }
}

/// A layer's panel: its title, then bars of `values` (sorted, largest first) over the log range `y`.
fn draw_panel(area: &Area, layer: &LayerKl, values: &[f64], y: (f64, f64)) -> Result<()> {
    let n = values.len();
    let total: f64 = values.iter().sum();
    let units = if n == 1 { "unit" } else { "units" };
    let title = format!(
        "{}: {n} {units}, {} active, KL {total:.2} nats",
        layer.name, layer.active
    );
    let (w, _) = area.dim_in_pixel();
    let (ox, oy) = area.get_base_pixel();
    let chart_top = LABEL as i32 + 4;
    let plot = area
        .clone()
        .shrink((0, chart_top), (w, (PLOT_H + TICKS_H) as u32));
    let mut chart = ChartBuilder::on(&plot)
        .margin_left(8)
        .margin_right(24)
        .x_label_area_size(TICKS_H)
        .y_label_area_size(Y_LABEL_AREA)
        // Just below the floor, so that plotters labels the floor's decade despite rounding in its logarithm.
        .build_cartesian_2d(0.5..n as f64 + 0.5, (y.0 * (1.0 - 1e-9)..y.1).log_scale())
        .map_err(drawing_error)?;
    let y_label = |v: &f64| text::short_number(*v);
    chart
        .configure_mesh()
        .x_labels(0)
        .y_labels(8)
        .disable_x_mesh()
        .y_desc("KL (nats)")
        .label_style((FAMILY, TICK_FONT))
        .axis_desc_style((FAMILY, AXIS_TITLE))
        .y_label_formatter(&y_label)
        .light_line_style(WHITE)
        .draw()
        .map_err(drawing_error)?;
    let px = |rank: usize, v: f64| chart.backend_coord(&(rank as f64, v.max(y.0)));
    let (x0, axis_y) = chart.backend_coord(&(0.5, y.0));
    let (x1, _) = chart.backend_coord(&(n as f64 + 0.5, y.0));

    // The panel's coordinates are offsets from its own corner; the chart's are the canvas's.
    let local = |(x, y): (i32, i32)| (x - ox, y - oy);
    let at = local(((x0 + x1) / 2, oy));
    text::draw(area, &title, LABEL, at, (HPos::Center, VPos::Top), BLACK)?;

    let slot = (x1 - x0) as f64 / n as f64;
    let bar_w = ((slot * 0.75) as i32).clamp(1, MAX_BAR_W);
    for (r, &v) in values.iter().enumerate() {
        let (cx, top) = px(r + 1, v);
        if top < axis_y {
            let left = cx - bar_w / 2;
            let rect = [local((left, top)), local((left + bar_w, axis_y))];
            area.draw(&Rectangle::new(rect, BAR.filled()))
                .map_err(drawing_error)?;
        }
    }

    // Rank labels under the bars: 1 and every `step`-th rank, as many as fit side by side.
    let widest = text::width(&n.to_string(), TICK_FONT)? as i32 + 14;
    let step = rank_step(n, ((x1 - x0) / widest.max(1)) as usize);
    let ranks = std::iter::once(1).chain((step..=n).step_by(step).filter(|&r| r > 1));
    for r in ranks {
        let (cx, _) = px(r, y.0);
        let tick = vec![local((cx, axis_y)), local((cx, axis_y + 5))];
        area.draw(&PathElement::new(tick, INK))
            .map_err(drawing_error)?;
        let at = local((cx, axis_y + 8));
        let label = r.to_string();
        text::draw(area, &label, TICK_FONT, at, (HPos::Center, VPos::Top), INK)?;
    }
    let at = local(((x0 + x1) / 2, axis_y + TICKS_H + 2));
    let x_title = "unit (sorted by KL)";
    text::draw(
        area,
        x_title,
        AXIS_TITLE,
        at,
        (HPos::Center, VPos::Top),
        BLACK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, unit_kl: Vec<f64>, active: usize) -> LayerKl {
        LayerKl {
            name: name.into(),
            unit_kl,
            active,
        }
    }

    fn inked(c: &Canvas, rows: std::ops::Range<u32>) -> usize {
        rows.flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) != [255; 3])
            .count()
    }

    /// Sizes 64, 32, 16, 8, 4: the bottom layer uses about 20 units, higher layers fewer.
    fn ladder() -> Vec<LayerKl> {
        let sizes = [64usize, 32, 16, 8, 4];
        let used = [20usize, 9, 4, 2, 1];
        sizes
            .iter()
            .zip(used)
            .enumerate()
            .map(|(k, (&n, used))| {
                let kl: Vec<f64> = (0..n)
                    .map(|i| {
                        // Shuffled unit order, so the figure's sorting shows.
                        let j = (i * 7 + k) % n;
                        if j < used {
                            3.0 - 2.5 * j as f64 / used as f64
                        } else if j % 5 == 0 {
                            0.0
                        } else {
                            1e-3 * (1.0 + (j % 7) as f64) / 4.0
                        }
                    })
                    .collect();
                layer(&format!("z{}", k + 1), kl, used)
            })
            .collect()
    }

    #[test]
    fn three_layers_give_three_inked_panels() {
        let layers = vec![
            layer("z1", vec![1e-5, 10.0, 0.5, 2.0, 1e-3, 0.0, 3e-2, 1.0], 5),
            layer("z2", vec![1e-4, 0.2, 1e-5, 4.0], 2),
            layer("z3", vec![1e-5, 0.01], 1),
        ];
        let c = render_unit_kl(&layers, "KL per unit").unwrap();
        assert!(
            c.width() >= MIN_WIDTH as u32 && c.width() <= 2000,
            "{}",
            c.width()
        );
        assert!(
            c.height() > 3 * PLOT_H as u32 && c.height() < 1200,
            "{}",
            c.height()
        );
        let top = (MARGIN + TITLE as i32 + 6 + SMALL as i32 + 14) as u32;
        let panel = (c.height() - top) / 3;
        for k in 0..3 {
            let y0 = top + k * panel;
            let ink = inked(&c, y0..y0 + panel);
            assert!(ink > 3000, "panel {k}: {ink}");
        }
    }

    #[test]
    fn the_figure_is_written_as_png() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("unit_kl.png");
        save_unit_kl(&ladder(), "Ladder VAE: KL per unit", &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn missing_layers_units_and_non_finite_values_are_errors() {
        let err = render_unit_kl(&[], "t").err().unwrap().to_string();
        assert!(err.contains("at least one latent layer"), "{err}");
        let layers = [layer("z1", vec![1.0], 1), layer("z2", vec![], 0)];
        let err = render_unit_kl(&layers, "t").err().unwrap().to_string();
        assert!(err.contains("`z2`") && err.contains("no units"), "{err}");
        for bad in [f64::NAN, f64::INFINITY] {
            let layers = [layer("z1", vec![1.0], 1), layer("z3", vec![0.5, bad], 1)];
            let err = render_unit_kl(&layers, "t").err().unwrap().to_string();
            assert!(err.contains("`z3`") && err.contains("unit 1"), "{err}");
        }
    }

    #[test]
    fn the_shared_axis_reaches_a_decade_above_the_largest_kl() {
        assert_eq!(y_top(&[vec![3.0, 0.1], vec![0.5]]), 10.0);
        assert_eq!(y_top(&[vec![10.0]]), 100.0);
        assert_eq!(y_top(&[vec![0.0]]), FLOOR * 10.0);
    }

    #[test]
    fn rank_labels_thin_out_to_fit() {
        assert_eq!(rank_step(8, 40), 1);
        assert_eq!(rank_step(64, 40), 5);
        assert_eq!(rank_step(64, 10), 10);
        assert_eq!(rank_step(512, 30), 20);
        assert_eq!(rank_step(1, 0), 1);
    }

    /// Writes the example figure to the temporary folder, to look at.
    #[test]
    #[ignore]
    fn example_figure() {
        let path = std::env::temp_dir().join("unit_kl_example.png");
        save_unit_kl(&ladder(), "Ladder VAE on MNIST: KL per latent unit", &path).unwrap();
        eprintln!("wrote {}", path.display());
    }
}
