//! One figure per metric of a report. When exactly one configuration column is a number (a β sweep), the
//! metric is drawn over it as lines, one per combination of the other columns, with dots at the swept values
//! and whiskers of ± sd; on a log axis when the values are positive and span a factor of 10 or more. Otherwise
//! it is a bar chart, one bar per configuration named under it. The run count n of every point or bar is on
//! the figure, as a small sample deserves to be read as one.
//!
//! plotters draws the frame, y axis and grid; the x axis labels, bars, lines and whiskers are drawn in pixels
//! from its coordinate mapping, so labels sit exactly at the swept values and dodged whiskers stay readable.

use super::metrics::lower_is_better;
use super::table::{self, Row, Table};
use crate::error::Result;
use crate::viz::canvas::{drawing_error, Area, Canvas};
use crate::viz::text::{self, FAMILY, LABEL, SMALL, TITLE};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

const MARGIN: i32 = 16;
const MIN_WIDTH: i32 = 720;
const PLOT_H: i32 = 400;
const Y_LABEL_AREA: i32 = 78;
/// Room under the plot for tick labels (bars: computed from the labels).
const TICKS_H: i32 = 26;
const TICK_FONT: f64 = 13.0;
const AXIS_TITLE: f64 = LABEL - 2.0;
/// Bar charts wider than this turn their labels to read bottom to top.
const MAX_FLAT_WIDTH: i32 = 1500;
/// Longest configuration label line under a bar, in characters.
const MAX_LABEL: usize = 40;
const BAR: RGBColor = RGBColor(76, 114, 176);
const INK: RGBColor = RGBColor(40, 40, 40);
const GRAY: RGBColor = RGBColor(90, 90, 90);
/// Line colours (matplotlib's tab10), reused in order past ten lines.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws metric `m` of `table` into a PNG at `path`.
pub fn save(table: &Table, m: usize, path: &Path) -> Result<()> {
    render(table, m)?.save(path)
}

pub fn render(table: &Table, m: usize) -> Result<Canvas> {
    match sweep_column(table) {
        Some(c) => lines(table, m, c),
        None => bars(table, m),
    }
}

/// The column a line plot runs along: the only one whose values are all numbers, with two values or more.
pub fn sweep_column(table: &Table) -> Option<usize> {
    let numeric: Vec<usize> = (0..table.columns.len())
        .filter(|&c| {
            let xs: Option<Vec<f64>> = table
                .rows
                .iter()
                .map(|r| r.values[c].as_ref().and_then(|l| l.number))
                .collect();
            xs.is_some_and(|xs| xs.iter().any(|&x| x != xs[0]))
        })
        .collect();
    match numeric[..] {
        [c] => Some(c),
        _ => None,
    }
}

/// The shortest trailing part of each path that still tells the paths apart (`encoder.hidden` and
/// `generator.hidden` for `model.encoder.hidden` and `model.generator.hidden`): labels under bars stay short.
pub fn short_names(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            let parts: Vec<&str> = p.split('.').collect();
            (1..=parts.len())
                .map(|k| parts[parts.len() - k..].join("."))
                .find(|s| {
                    paths
                        .iter()
                        .filter(|q| *q == s || q.ends_with(&format!(".{s}")))
                        .count()
                        == 1
                })
                .unwrap_or_else(|| p.clone())
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// `n = 2`, or `n = 1–3` when the points of a line differ.
fn n_range(ns: impl Iterator<Item = usize>) -> String {
    let (lo, hi) = ns.fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
    if lo > hi {
        "n = 0".into()
    } else if lo == hi {
        format!("n = {lo}")
    } else {
        format!("n = {lo}–{hi}")
    }
}

/// The y axis title: the metric and which way is better, so a reader need not know each metric; the metric
/// alone where both would not fit along the axis.
fn y_title(metric: &str) -> Result<String> {
    let way = if lower_is_better(metric) {
        "lower"
    } else {
        "higher"
    };
    let both = format!("{metric} ({way} is better)");
    if text::width(&both, AXIS_TITLE)? as i32 <= PLOT_H - 60 {
        Ok(both)
    } else {
        Ok(metric.to_string())
    }
}

/// Title and subtitle, centred; returns the y where the plot may start.
fn heading(area: &Area, width: i32, title: &str, subtitle: &str) -> Result<i32> {
    let centre = |y| (width / 2, y);
    text::draw(
        area,
        title,
        TITLE,
        centre(MARGIN),
        (HPos::Center, VPos::Top),
        BLACK,
    )?;
    let y = MARGIN + TITLE as i32 + 6;
    text::draw(
        area,
        subtitle,
        SMALL,
        centre(y),
        (HPos::Center, VPos::Top),
        GRAY,
    )?;
    Ok(y + SMALL as i32 + 10)
}

/// The y range of a plot over `(mean, sd)` values: padded around them, or from zero for bars, with `headroom`
/// of the span left above for labels.
fn y_range(points: &[(f64, Option<f64>)], from_zero: bool, headroom: f64) -> (f64, f64) {
    let (mut lo, mut hi) =
        points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(m, sd)| {
                let sd = sd.unwrap_or(0.0);
                (lo.min(m - sd), hi.max(m + sd))
            });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let span = if hi > lo {
        hi - lo
    } else {
        lo.abs().max(1.0) * 0.1
    };
    let below = if from_zero && lo == 0.0 {
        0.0
    } else {
        0.06 * span
    };
    (lo - below, hi + headroom.max(0.06) * span)
}

/// Frame, y axis (ticks, grid, title) and an unlabelled x axis over `x × y`, in `area`.
fn axes<'a>(
    area: &Area<'a>,
    x: std::ops::Range<f64>,
    y: (f64, f64),
    y_desc: &str,
    x_label_h: i32,
) -> Result<ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(x_label_h)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x, y.0..y.1)
        .map_err(drawing_error)?;
    let decimals = text::axis_decimals(y.0, y.1);
    let y_label = |v: &f64| {
        if v.abs() < 1e5 {
            text::fixed(*v, decimals)
        } else {
            text::short_number(*v)
        }
    };
    chart
        .configure_mesh()
        .x_labels(0)
        .y_labels(6)
        .disable_x_mesh()
        .y_desc(y_desc)
        .label_style((FAMILY, TICK_FONT))
        .axis_desc_style((FAMILY, AXIS_TITLE))
        .y_label_formatter(&y_label)
        .light_line_style(WHITE)
        .draw()
        .map_err(drawing_error)?;
    Ok(chart)
}

/// A whisker from `top` to `bottom` (pixels) at `x` with caps.
fn whisker(area: &Area, x: i32, (top, bottom): (i32, i32), colour: RGBColor) -> Result<()> {
    let style = colour.stroke_width(2);
    for path in [
        vec![(x, top), (x, bottom)],
        vec![(x - 5, top), (x + 5, top)],
        vec![(x - 5, bottom), (x + 5, bottom)],
    ] {
        area.draw(&PathElement::new(path, style))
            .map_err(drawing_error)?;
    }
    Ok(())
}

/// A point of a line in pixels, with its whisker's top and bottom.
struct Dot {
    x: i32,
    y: i32,
    whisker: Option<(i32, i32)>,
}

/// One line per combination of the columns other than `sweep`, over the sweep's values.
fn lines(table: &Table, m: usize, sweep: usize) -> Result<Canvas> {
    let metric = &table.metrics[m];
    let key = &table.columns[sweep];
    let others: Vec<usize> = (0..table.columns.len()).filter(|&c| c != sweep).collect();
    let short = short_names(&table.columns);
    // Series in the order of their first row (rows are sorted by the columns).
    let mut series: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in &table.rows {
        let label = others
            .iter()
            .map(|&c| format!("{}={}", short[c], table::cell(&row.values[c])))
            .collect::<Vec<_>>()
            .join(", ");
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, rows)) => rows.push(row),
            None => series.push((label, vec![row])),
        }
    }
    let x_of = |row: &Row| {
        row.values[sweep]
            .as_ref()
            .and_then(|l| l.number)
            .unwrap_or(0.0)
    };
    let xs: Vec<f64> = table.rows.iter().map(x_of).collect();
    let log = xs.iter().all(|&x| x > 0.0)
        && xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            / xs.iter().cloned().fold(f64::INFINITY, f64::min)
            >= 10.0;
    let to_axis = |x: f64| if log { x.log10() } else { x };
    let mut ticks: Vec<f64> = xs.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let (a, b) = (to_axis(ticks[0]), to_axis(ticks[ticks.len() - 1]));
    let pad = 0.06 * (b - a);
    let stats: Vec<(f64, Option<f64>)> = table
        .rows
        .iter()
        .filter_map(|r| Some((r.stats[m].mean?, r.stats[m].sd)))
        .collect();
    let y = y_range(&stats, false, 0.06);

    let legend: Vec<(String, RGBColor)> = series
        .iter()
        .enumerate()
        .map(|(k, (label, rows))| {
            let name = if label.is_empty() {
                metric.clone()
            } else {
                truncate(label, 80)
            };
            let n = n_range(rows.iter().map(|r| r.stats[m].n).filter(|&n| n > 0));
            (format!("{name} ({n})"), PALETTE[k % PALETTE.len()])
        })
        .collect();
    const SAMPLE: i32 = 30;
    const LEGEND_ROW: i32 = SMALL as i32 + 8;
    let legend_w = text::max_width(
        &legend.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        SMALL,
    )? as i32;
    let title = format!("{metric} over {key}");
    let subtitle = "dots: mean over seeds; whiskers: ± sd (sample); n: runs per point";
    let width = (2 * MARGIN + SAMPLE + 8 + legend_w)
        .max(text::width(&title, TITLE)? as i32 + 2 * MARGIN)
        .max(900);
    let top = MARGIN + TITLE as i32 + 6 + SMALL as i32 + 10;
    let x_title_y = top + PLOT_H + 4;
    let legend_y = x_title_y + LABEL as i32 + 14;
    let height = legend_y + legend.len() as i32 * LEGEND_ROW + MARGIN;

    let mut canvas = Canvas::new(width as u32, height as u32)?;
    canvas.draw(|area| {
        heading(area, width, &title, subtitle)?;
        let plot = area
            .clone()
            .shrink((MARGIN, top), ((width - 2 * MARGIN) as u32, PLOT_H as u32));
        let chart = axes(&plot, a - pad..b + pad, y, &y_title(metric)?, TICKS_H)?;
        let px = |x: f64, v: f64| chart.backend_coord(&(to_axis(x), v));
        // Tick labels at the swept values, skipping one that would touch its left neighbour.
        let (_, axis_y) = px(ticks[0], y.0);
        let mut right = i32::MIN;
        for &t in &ticks {
            let (x, _) = px(t, y.0);
            area.draw(&PathElement::new(vec![(x, axis_y), (x, axis_y + 5)], INK))
                .map_err(drawing_error)?;
            let label = text::short_number(t);
            let w = text::width(&label, TICK_FONT)? as i32;
            if x - w / 2 > right + 6 {
                let at = (x, axis_y + 8);
                text::draw(area, &label, TICK_FONT, at, (HPos::Center, VPos::Top), INK)?;
                right = x + w / 2;
            }
        }
        let (x0, _) = chart.backend_coord(&(a - pad, y.0));
        let (x1, _) = chart.backend_coord(&(b + pad, y.0));
        let x_title = if log {
            format!("{key} (log scale)")
        } else {
            key.clone()
        };
        let at = ((x0 + x1) / 2, x_title_y);
        text::draw(
            area,
            &x_title,
            AXIS_TITLE,
            at,
            (HPos::Center, VPos::Top),
            BLACK,
        )?;

        // Lines, whiskers and dots; lines sharing a value are dodged apart by a few pixels.
        let k_all = series.len() as i32;
        for (k, (_, rows)) in series.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let dodge = if k_all > 1 {
                (2 * k as i32 - (k_all - 1)) * 3
            } else {
                0
            };
            let points: Vec<Dot> = rows
                .iter()
                .filter_map(|r| {
                    let s = &r.stats[m];
                    let mean = s.mean?;
                    let (x, yp) = px(x_of(r), mean);
                    let bar =
                        s.sd.map(|sd| (px(x_of(r), mean + sd).1, px(x_of(r), mean - sd).1));
                    Some(Dot {
                        x: x + dodge,
                        y: yp,
                        whisker: bar,
                    })
                })
                .collect();
            let path: Vec<(i32, i32)> = points.iter().map(|d| (d.x, d.y)).collect();
            area.draw(&PathElement::new(path, colour.stroke_width(2)))
                .map_err(drawing_error)?;
            for d in &points {
                if let Some(span) = d.whisker {
                    whisker(area, d.x, span, colour)?;
                }
                area.draw(&Circle::new((d.x, d.y), 4, colour.filled()))
                    .map_err(drawing_error)?;
            }
        }

        // Legend: one row per line, under the x axis title.
        for (k, (label, colour)) in legend.iter().enumerate() {
            let mid = legend_y + k as i32 * LEGEND_ROW + SMALL as i32 / 2;
            let x = MARGIN + Y_LABEL_AREA / 2;
            area.draw(&PathElement::new(
                vec![(x, mid), (x + SAMPLE, mid)],
                colour.stroke_width(2),
            ))
            .map_err(drawing_error)?;
            area.draw(&Circle::new((x + SAMPLE / 2, mid), 4, colour.filled()))
                .map_err(drawing_error)?;
            let at = (x + SAMPLE + 8, mid);
            text::draw(area, label, SMALL, at, (HPos::Left, VPos::Center), BLACK)?;
        }
        Ok(())
    })?;
    Ok(canvas)
}

/// One bar per configuration, its label under it (turned to read upwards when the labels would not fit side
/// by side), its mean and n over it.
fn bars(table: &Table, m: usize) -> Result<Canvas> {
    let metric = &table.metrics[m];
    let short = short_names(&table.columns);
    let labels: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| match table.columns.len() {
            0 => vec!["all".to_string()],
            1 => vec![truncate(table::cell(&row.values[0]), MAX_LABEL)],
            _ => short
                .iter()
                .zip(&row.values)
                .map(|(c, v)| truncate(&format!("{c}={}", table::cell(v)), MAX_LABEL))
                .collect(),
        })
        .collect();
    let x_title = match &table.columns[..] {
        [one] => one.clone(),
        _ => "configuration".to_string(),
    };
    let n = table.rows.len() as i32;
    let values: Vec<String> = table
        .rows
        .iter()
        .map(|r| r.stats[m].mean.map_or("n/a".into(), table::mean_text))
        .collect();
    let line_w = text::max_width(&labels.iter().flatten().collect::<Vec<_>>(), SMALL)? as i32;
    let value_w = text::max_width(&values, SMALL)? as i32;
    let flat_slot = (line_w.max(value_w) + 16).max(64);
    let flat = n * flat_slot + Y_LABEL_AREA + 2 * MARGIN + 40 <= MAX_FLAT_WIDTH;
    let lines_per_label = labels.iter().map(Vec::len).max().unwrap_or(1) as i32;
    let turned: Vec<String> = labels.iter().map(|l| l.join(", ")).collect();
    let (slot, label_h) = if flat {
        (flat_slot, lines_per_label * (SMALL as i32 + 4) + 10)
    } else {
        let n_w = text::width("n=99", SMALL)? as i32;
        (
            (n_w + 10).max(34),
            text::max_width(&turned, SMALL)? as i32 + 16,
        )
    };
    let plot_w = n * slot + Y_LABEL_AREA + 40;
    let title = metric.clone();
    let subtitle = if flat {
        "bars: mean over seeds; whiskers: ± sd (sample); over each bar: mean and n (runs)"
    } else {
        "bars: mean over seeds; whiskers: ± sd (sample); over each bar: n (runs)"
    };
    let width = (plot_w + 2 * MARGIN)
        .max(text::width(subtitle, SMALL)? as i32 + 2 * MARGIN)
        .max(MIN_WIDTH);
    // Few bars spread over the width rather than huddle in its middle.
    let plot_w = width - 2 * MARGIN;
    let slot = (plot_w - Y_LABEL_AREA - 40) / n.max(1);
    let top = MARGIN + TITLE as i32 + 6 + SMALL as i32 + 10;
    let chart_h = PLOT_H + label_h;
    let x_title_y = top + chart_h + 2;
    let height = x_title_y + LABEL as i32 + MARGIN;
    let stats: Vec<(f64, Option<f64>)> = table
        .rows
        .iter()
        .filter_map(|r| Some((r.stats[m].mean?, r.stats[m].sd)))
        .collect();
    let headroom = if flat { 0.2 } else { 0.1 };
    let y = y_range(&stats, true, headroom);

    let mut canvas = Canvas::new(width as u32, height as u32)?;
    canvas.draw(|area| {
        heading(area, width, &title, subtitle)?;
        let plot = area
            .clone()
            .shrink((MARGIN, top), (plot_w as u32, chart_h as u32));
        let chart = axes(&plot, -0.5..n as f64 - 0.5, y, &y_title(metric)?, label_h)?;
        let px = |i: usize, v: f64| chart.backend_coord(&(i as f64, v));
        let (_, zero) = px(0, 0.0);
        let (_, axis_y) = px(0, y.0);
        let bar_w = ((slot as f64 * 0.6) as i32).min(90);
        for (i, row) in table.rows.iter().enumerate() {
            let s = &row.stats[m];
            let (cx, _) = px(i, 0.0);
            let mut above = zero;
            if let Some(mean) = s.mean {
                let (_, ym) = px(i, mean);
                let rect = [
                    (cx - bar_w / 2, ym.min(zero)),
                    (cx + bar_w / 2, ym.max(zero)),
                ];
                area.draw(&Rectangle::new(rect, BAR.filled()))
                    .map_err(drawing_error)?;
                above = above.min(ym);
                if let Some(sd) = s.sd {
                    let (t, b) = (px(i, mean + sd).1, px(i, mean - sd).1);
                    whisker(area, cx, (t, b), INK)?;
                    above = above.min(t);
                }
            }
            // Over the bar: its mean (when there is room) and n.
            let n_text = format!("n={}", s.n);
            let mut y_text = above - 4;
            text::draw(
                area,
                &n_text,
                SMALL,
                (cx, y_text),
                (HPos::Center, VPos::Bottom),
                GRAY,
            )?;
            y_text -= SMALL as i32 + 2;
            if flat {
                text::draw(
                    area,
                    &values[i],
                    SMALL,
                    (cx, y_text),
                    (HPos::Center, VPos::Bottom),
                    BLACK,
                )?;
            }
            // Under the axis: the configuration.
            area.draw(&PathElement::new(vec![(cx, axis_y), (cx, axis_y + 5)], INK))
                .map_err(drawing_error)?;
            if flat {
                for (l, line) in labels[i].iter().enumerate() {
                    let at = (cx, axis_y + 8 + l as i32 * (SMALL as i32 + 4));
                    text::draw(area, line, SMALL, at, (HPos::Center, VPos::Top), INK)?;
                }
            } else {
                // Turned, reading upwards, its end just under the axis.
                let w = text::width(&turned[i], SMALL)? as i32;
                text::draw_vertical(area, &turned[i], SMALL, (cx, axis_y + 8 + w / 2), INK)?;
            }
        }
        if y.0 < 0.0 {
            let (x0, _) = chart.backend_coord(&(-0.5, 0.0));
            let (x1, _) = chart.backend_coord(&(n as f64 - 0.5, 0.0));
            area.draw(&PathElement::new(vec![(x0, zero), (x1, zero)], INK))
                .map_err(drawing_error)?;
        }
        let (x0, _) = chart.backend_coord(&(-0.5, 0.0));
        let (x1, _) = chart.backend_coord(&(n as f64 - 0.5, 0.0));
        let at = ((x0 + x1) / 2, x_title_y);
        text::draw(
            area,
            &x_title,
            AXIS_TITLE,
            at,
            (HPos::Center, VPos::Top),
            BLACK,
        )?;
        Ok(())
    })?;
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::super::flatten::Leaf;
    use super::super::table::Stat;
    use super::*;

    fn leaf(text: &str, number: Option<f64>) -> Option<Leaf> {
        Some(Leaf {
            text: text.into(),
            number,
        })
    }

    fn row(values: Vec<Option<Leaf>>, mean: f64) -> Row {
        Row {
            values,
            runs: 2,
            stats: vec![Stat {
                n: 2,
                mean: Some(mean),
                sd: Some(0.05),
            }],
        }
    }

    fn inked(c: &Canvas) -> usize {
        (0..c.height())
            .flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) != [255; 3])
            .count()
    }

    #[test]
    fn a_numeric_column_gives_lines_and_others_give_bars() {
        let sweep = Table {
            columns: vec!["model.beta".into(), "model.prior".into()],
            metrics: vec!["mcc".into()],
            rows: [1.0, 4.0, 16.0]
                .iter()
                .flat_map(|&b| {
                    ["Additive", "StdNormal"].map(|p| {
                        row(
                            vec![leaf(&b.to_string(), Some(b)), leaf(p, None)],
                            0.5 + b / 40.0,
                        )
                    })
                })
                .collect(),
        };
        assert_eq!(sweep_column(&sweep), Some(0));
        let c = render(&sweep, 0).unwrap();
        assert!(inked(&c) > 5000);
        let swapped = Table {
            columns: vec!["model.causal".into()],
            metrics: vec!["mcc".into()],
            rows: vec![
                row(vec![leaf("Scm", None)], 0.9),
                row(vec![leaf("Independent", None)], 0.7),
            ],
        };
        assert_eq!(sweep_column(&swapped), None);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("plot_mcc.png");
        save(&swapped, 0, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn many_bars_turn_their_labels() {
        let t = Table {
            columns: vec![
                "model.encoder.hidden".into(),
                "model.generator.hidden".into(),
            ],
            metrics: vec!["mae".into()],
            rows: (0..60)
                .map(|i| {
                    row(
                        vec![leaf(&format!("[{i},{i}]"), None), leaf("[512]", None)],
                        -0.1 * i as f64,
                    )
                })
                .collect(),
        };
        let c = render(&t, 0).unwrap();
        assert!(c.width() > MAX_FLAT_WIDTH as u32 && inked(&c) > 5000);
    }

    #[test]
    fn n_ranges_say_how_many_runs() {
        assert_eq!(n_range([2, 2].into_iter()), "n = 2");
        assert_eq!(n_range([3, 1].into_iter()), "n = 1–3");
        assert_eq!(n_range(std::iter::empty()), "n = 0");
    }

    #[test]
    fn short_names_keep_paths_apart() {
        let paths = [
            "model.encoder.hidden",
            "model.generator.hidden",
            "model.beta",
        ]
        .map(String::from);
        assert_eq!(
            short_names(&paths),
            ["encoder.hidden", "generator.hidden", "beta"]
        );
    }
}
