//! Training curves: every logged term of `metrics.jsonl` against the step, one titled panel per term (terms
//! differ by orders of magnitude, so each gets its own y axis), logarithmic where a term is positive and spans
//! two decades or more. Each panel shows the logged values and, for long logs, their moving average; one
//! legend above the panels says which line is which.

use super::canvas::{drawing_error, Area, Canvas};
use super::text::{self, FAMILY, LABEL, SMALL, TITLE};
use crate::error::{Error, IoContext, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

const MARGIN: u32 = 16;
const PANEL_W: u32 = 440;
const PANEL_H: u32 = 300;
const PER_ROW: usize = 3;
/// Columns of a log that are not training terms.
const NOT_TERMS: [&str; 2] = ["step", "samples_per_sec"];
/// Logs of at most this many values get a dot per value.
const MARKED_POINTS: usize = 50;
const RAW: RGBColor = RGBColor(150, 180, 230);
const SMOOTH: RGBColor = RGBColor(20, 60, 160);

/// One logged term: `(step, value)` for each line where it is a finite number.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// The terms of a `metrics.jsonl` text (one JSON object per line with a `step`): the total `loss` first, the
/// others in the order they first appear. Non-finite values (logged as `null`) are left out; a line that is not such an object is an error
/// naming `source` and the line.
pub fn series_from_log(text: &str, source: &Path) -> Result<Vec<Series>> {
    let mut series: Vec<Series> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| Error::Data(format!("{}:{}: {why}", source.display(), i + 1));
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        let step = object
            .get("step")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| bad("no numeric `step`"))?;
        for (name, v) in object {
            if NOT_TERMS.contains(&name.as_str()) {
                continue;
            }
            let Some(v) = v.as_f64().filter(|v| v.is_finite()) else {
                continue;
            };
            let at = match series.iter().position(|s| &s.name == name) {
                Some(at) => at,
                None => {
                    series.push(Series {
                        name: name.clone(),
                        points: Vec::new(),
                    });
                    series.len() - 1
                }
            };
            series[at].points.push((step, v));
        }
    }
    series.sort_by_key(|s| s.name != "loss");
    Ok(series)
}

/// Reads `path` (a run's `metrics.jsonl`) and draws its terms into `out`; `Ok(false)` without writing when
/// the log has no terms yet.
pub fn save_training_curves(log: &Path, out: &Path, title: &str) -> Result<bool> {
    let text = std::fs::read_to_string(log).at(log)?;
    let series = series_from_log(&text, log)?;
    if series.is_empty() {
        return Ok(false);
    }
    render(&series, title)?.save(out)?;
    Ok(true)
}

/// One panel per series in rows of [`PER_ROW`], under `title` and one legend for all panels.
pub fn render(series: &[Series], title: &str) -> Result<Canvas> {
    let per_row = series.len().clamp(1, PER_ROW);
    let rows = series.len().div_ceil(per_row).max(1);
    let legend_y = MARGIN + TITLE as u32 + 8;
    let top = legend_y + SMALL as u32 + 10;
    let width = 2 * MARGIN + per_row as u32 * PANEL_W;
    let width = width.max(text::width(title, TITLE)? + 2 * MARGIN);
    let height = top + rows as u32 * PANEL_H + MARGIN;
    let window = series.iter().map(|s| s.points.len()).max().unwrap_or(0) / 20;
    let mut entries = vec![("logged value".to_string(), RAW.stroke_width(1))];
    if window >= 2 {
        let label = format!("moving average of {window} logged values");
        entries.push((label, SMOOTH.stroke_width(2)));
    }
    let mut canvas = Canvas::new(width, height)?;
    canvas.draw(|area| {
        let at = (width as i32 / 2, MARGIN as i32);
        text::draw(area, title, TITLE, at, (HPos::Center, VPos::Top), BLACK)?;
        draw_legend(area, &entries, (width as i32 / 2, legend_y as i32))?;
        for (k, s) in series.iter().enumerate() {
            let (r, c) = ((k / per_row) as u32, (k % per_row) as u32);
            let x = MARGIN + c * PANEL_W;
            let y = top + r * PANEL_H;
            let panel = area.clone().shrink((x, y), (PANEL_W, PANEL_H));
            draw_panel(&panel, s, window)?;
        }
        Ok(())
    })?;
    Ok(canvas)
}

/// A line sample and a label per entry, in one row centred on `(x, y)`'s x with its top at y.
fn draw_legend(area: &Area, entries: &[(String, ShapeStyle)], (x, y): (i32, i32)) -> Result<()> {
    const SAMPLE: i32 = 26;
    const SPACE: i32 = 24;
    let widths = entries
        .iter()
        .map(|(label, _)| Ok(text::width(label, SMALL)? as i32))
        .collect::<Result<Vec<_>>>()?;
    let total: i32 =
        widths.iter().map(|w| SAMPLE + 6 + w).sum::<i32>() + SPACE * (entries.len() as i32 - 1);
    let mut at = x - total / 2;
    let mid = y + SMALL as i32 / 2;
    for ((label, style), w) in entries.iter().zip(widths) {
        area.draw(&PathElement::new([(at, mid), (at + SAMPLE, mid)], *style))
            .map_err(drawing_error)?;
        let pos = (at + SAMPLE + 6, mid);
        text::draw(area, label, SMALL, pos, (HPos::Left, VPos::Center), BLACK)?;
        at += SAMPLE + 6 + w + SPACE;
    }
    Ok(())
}

/// Whether a term's values are drawn on a log axis: all positive, spanning a factor of 100 or more.
pub fn wants_log(points: &[(f64, f64)]) -> bool {
    let (lo, hi) = value_range(points);
    lo > 0.0 && hi / lo >= 100.0
}

fn value_range(points: &[(f64, f64)]) -> (f64, f64) {
    points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        })
}

/// The trailing moving average over `window` points.
pub fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, v))| {
            sum += v;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

fn draw_panel(area: &Area, s: &Series, window: usize) -> Result<()> {
    let (x_lo, x_hi) = s
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| {
            (lo.min(x), hi.max(x))
        });
    let x_range = if x_hi > x_lo {
        x_lo..x_hi
    } else {
        x_lo - 1.0..x_lo + 1.0
    };
    let (lo, hi) = value_range(&s.points);
    if wants_log(&s.points) {
        let y = (lo / 1.2..hi * 1.2).log_scale();
        chart(area, s, (x_range, y), "(log scale)", None, window)
    } else {
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            lo.abs().max(1.0) * 0.1
        };
        let decimals = text::axis_decimals(lo - pad, hi + pad);
        let y: RangedCoordf64 = (lo - pad..hi + pad).into();
        chart(area, s, (x_range, y), "", Some(decimals), window)
    }
}

/// A panel on axes `(x, y)`; y labels with `y_decimals` digits after the point, or short numbers (log axes).
fn chart<Y>(
    area: &Area,
    s: &Series,
    (x, y): (std::ops::Range<f64>, Y),
    note: &str,
    y_decimals: Option<usize>,
    window: usize,
) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let caption = if note.is_empty() {
        s.name.clone()
    } else {
        format!("{} {note}", s.name)
    };
    let x_decimals = text::axis_decimals(x.start, x.end);
    let x_label = |v: &f64| text::fixed(*v, x_decimals);
    let y_label = |v: &f64| match y_decimals {
        Some(d) if v.abs() < 1e5 => text::fixed(*v, d),
        _ => text::short_number(*v),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, LABEL))
        .margin(8)
        .x_label_area_size(42)
        .y_label_area_size(68)
        .build_cartesian_2d(x, y)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(s.name.as_str())
        .x_labels(5)
        .y_labels(6)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .light_line_style(WHITE)
        .draw()
        .map_err(drawing_error)?;
    chart
        .draw_series(LineSeries::new(s.points.iter().copied(), RAW))
        .map_err(drawing_error)?;
    if s.points.len() <= MARKED_POINTS {
        // A short log (a single line, even) stays visible as dots.
        let dots = s.points.iter().map(|&p| Circle::new(p, 3, RAW.filled()));
        chart.draw_series(dots).map_err(drawing_error)?;
    }
    if window >= 2 {
        let smooth = moving_average(&s.points, window);
        chart
            .draw_series(LineSeries::new(smooth, SMOOTH.stroke_width(2)))
            .map_err(drawing_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"step":1,"loss":100.0,"kl":1.0,"samples_per_sec":5.0}
{"step":2,"loss":10.0,"kl":null,"samples_per_sec":5.0}

{"step":3,"loss":1.0,"kl":-0.5,"edges_a":4}
"#;

    #[test]
    fn a_log_gives_one_series_per_term_without_gaps_or_speed() {
        let s = series_from_log(LOG, Path::new("m.jsonl")).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["loss", "kl", "edges_a"]);
        assert_eq!(s[1].points, [(1.0, 1.0), (3.0, -0.5)]);
        assert_eq!(s[0].points.len(), 3);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = series_from_log("{\"step\":1}\n{\"loss\":1}\n", Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.jsonl:2") && err.contains("step"), "{err}");
        let err = series_from_log("[1]\n", Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.jsonl:1"), "{err}");
    }

    #[test]
    fn log_axes_only_for_positive_values_spanning_decades() {
        assert!(wants_log(&[(1.0, 100.0), (2.0, 0.5)]));
        assert!(!wants_log(&[(1.0, 10.0), (2.0, 0.5)]));
        assert!(!wants_log(&[(1.0, 100.0), (2.0, -0.5)]));
    }

    #[test]
    fn the_moving_average_trails_the_values() {
        let p = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)];
        assert_eq!(moving_average(&p, 2), [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]);
    }

    #[test]
    fn panels_are_laid_out_in_rows_and_drawn() {
        let series = series_from_log(LOG, Path::new("m.jsonl")).unwrap();
        let mut many = series.clone();
        many.push(Series {
            name: "recon".into(),
            points: (0..100)
                .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
                .collect(),
        });
        let c = render(&many, "Training").unwrap();
        assert_eq!(c.width(), 2 * MARGIN + 3 * PANEL_W);
        assert!(c.height() > 2 * PANEL_H);
        // The second row's panel (recon) has ink: axes, labels, curves.
        let y0 = MARGIN + TITLE as u32 + 8 + SMALL as u32 + 10 + PANEL_H;
        let inked = (y0..y0 + PANEL_H)
            .flat_map(|y| (MARGIN..MARGIN + PANEL_W).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) != [255; 3])
            .count();
        assert!(inked > 2000, "{inked}");
    }
}
