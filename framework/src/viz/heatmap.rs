//! A labelled matrix heatmap: named rows and columns with axis titles, the value printed in each cell, one or
//! more titled panels side by side (e.g. learned | true), and a colour bar with its scale.

use super::canvas::{drawing_error, Area, Canvas};
use super::text::{self, LABEL, SMALL, TITLE};
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

const MARGIN: i32 = 16;
const PANEL_GAP: i32 = 32;
const BAR_W: i32 = 18;
const MIN_CELL: i32 = 52;
const MIN_CELL_H: i32 = 40;
const GRID_LINE: RGBColor = RGBColor(210, 210, 210);
const MISSING: RGBColor = RGBColor(190, 190, 190);

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColourScale {
    /// Blue (−m) through white (0) to red (+m), m the largest |value| of all panels.
    Signed,
    /// White (0) to red (1), values clamped to [0, 1] (probabilities).
    Unit,
}

pub struct HeatmapPanel {
    /// Drawn over the panel; empty for none.
    pub title: String,
    /// `rows × cols`, row-major.
    pub values: Vec<f32>,
    /// The values are 0/1 edges: an edge prints `1`, a missing one nothing.
    pub edges: bool,
}

pub struct Heatmap {
    pub title: String,
    /// A second line under the title; empty for none.
    pub subtitle: String,
    pub row_names: Vec<String>,
    pub col_names: Vec<String>,
    /// What the rows and the columns are, e.g. "cause (parent)" and "effect (child)".
    pub row_axis: String,
    pub col_axis: String,
    pub panels: Vec<HeatmapPanel>,
    pub scale: ColourScale,
    /// The colour bar's title, e.g. "A[i][j]".
    pub bar_label: String,
}

impl ColourScale {
    /// The colour of `v` given the scale's extent `m` (see [`ColourScale::Signed`]); whether text over it
    /// should be white.
    fn colour(self, v: f32, m: f32) -> (RGBColor, bool) {
        if !v.is_finite() {
            return (MISSING, false);
        }
        let t = match self {
            ColourScale::Signed => (v / m).clamp(-1.0, 1.0),
            ColourScale::Unit => v.clamp(0.0, 1.0),
        };
        let fade = |t: f32| (255.0 * (1.0 - t.abs())).round() as u8;
        let c = if t >= 0.0 {
            RGBColor(255, fade(t), fade(t))
        } else {
            RGBColor(fade(t), fade(t), 255)
        };
        (c, t.abs() > 0.55)
    }

    /// The value shown at the top and bottom of the colour bar.
    fn range(self, m: f32) -> (f32, f32) {
        match self {
            ColourScale::Signed => (-m, m),
            ColourScale::Unit => (0.0, 1.0),
        }
    }
}

struct Layout {
    rows: usize,
    cols: usize,
    cell_w: i32,
    /// Tall enough that the rows span the vertical axis title.
    cell_h: i32,
    grid_x: i32,
    grid_y: i32,
    bar_x: i32,
    width: i32,
    height: i32,
}

impl Heatmap {
    pub fn save(&self, path: &Path) -> Result<()> {
        self.render()?.save(path)
    }

    /// The colour scale's extent: the largest finite |value| (1 where all are 0).
    fn extent(&self) -> f32 {
        let m = self
            .panels
            .iter()
            .flat_map(|p| &p.values)
            .filter(|v| v.is_finite())
            .fold(0f32, |m, v| m.max(v.abs()));
        if m > 0.0 {
            m
        } else {
            1.0
        }
    }

    /// A cell's or tick's number: two decimals (three when every |value| is below 0.1), scientific for
    /// scales below 0.01.
    fn value_text(&self, v: f32, extent: f32) -> String {
        let v = v as f64;
        match self.scale {
            _ if !v.is_finite() => format!("{v}"),
            ColourScale::Unit => text::fixed(v, 2),
            ColourScale::Signed if extent >= 0.1 => text::fixed(v, 2),
            ColourScale::Signed if extent >= 0.01 => text::fixed(v, 3),
            ColourScale::Signed => text::number(v),
        }
    }

    fn layout(&self) -> Result<Layout> {
        let (rows, cols) = (self.row_names.len(), self.col_names.len());
        if rows == 0 || cols == 0 || self.panels.is_empty() {
            return Err(Error::msg(format!(
                "heatmap `{}` needs rows, columns and a panel",
                self.title
            )));
        }
        for p in &self.panels {
            if p.values.len() != rows * cols {
                return Err(Error::Shape {
                    context: format!("heatmap `{}` panel `{}`", self.title, p.title),
                    expected: format!("{rows}×{cols} values"),
                    got: p.values.len().to_string(),
                });
            }
        }
        let values: Vec<String> = self
            .panels
            .iter()
            .flat_map(|p| &p.values)
            .map(|&v| self.value_text(v, self.extent()))
            .collect();
        let widest = text::max_width(&self.col_names, SMALL)?.max(text::max_width(&values, SMALL)?);
        let cell_w = MIN_CELL.max(widest as i32 + 10);
        let panels = self.panels.len() as i32;
        let panel_w = cols as i32 * cell_w;
        let titles: Vec<&String> = self.panels.iter().map(|p| &p.title).collect();
        let panel_title_w = text::max_width(&titles, LABEL)? as i32;
        let panel_w = panel_w.max(panel_title_w);
        let names_w = text::max_width(&self.row_names, SMALL)? as i32;
        let grid_x = MARGIN + LABEL as i32 + 8 + names_w + 8;
        let mut grid_y = MARGIN + TITLE as i32 + 12 + SMALL as i32 + 6 + SMALL as i32 + 8;
        if !self.subtitle.is_empty() {
            grid_y += SMALL as i32 + 4;
        }
        if titles.iter().any(|t| !t.is_empty()) {
            grid_y += LABEL as i32 + 6;
        }
        let bar_x = grid_x + panels * panel_w + (panels - 1) * PANEL_GAP + 28;
        let (lo, hi) = self.scale.range(self.extent());
        let ticks = [lo, (lo + hi) / 2.0, hi].map(|v| self.value_text(v, self.extent()));
        let ticks_w = text::max_width(&ticks, SMALL)? as i32;
        let bar_label_w = text::width(&self.bar_label, SMALL)? as i32;
        let right = (bar_x + BAR_W + 9 + ticks_w).max(bar_x + bar_label_w) + MARGIN;
        let title_w = text::width(&self.title, TITLE)?.max(text::width(&self.subtitle, SMALL)?)
            as i32
            + 2 * MARGIN;
        let axis_w = text::width(&self.row_axis, LABEL)? as i32;
        let cell_h = MIN_CELL_H.max((axis_w + 8 + rows as i32 - 1) / rows as i32);
        let grid_h = rows as i32 * cell_h;
        Ok(Layout {
            rows,
            cols,
            cell_w: panel_w.max(cols as i32 * cell_w) / cols as i32,
            cell_h,
            grid_x,
            grid_y,
            bar_x,
            width: right.max(title_w),
            height: grid_y + grid_h + MARGIN,
        })
    }

    pub fn render(&self) -> Result<Canvas> {
        let l = self.layout()?;
        let mut canvas = Canvas::new(l.width as u32, l.height as u32)?;
        let extent = self.extent();
        canvas.draw(|area| {
            let centre = (l.width / 2, MARGIN);
            text::draw(
                area,
                &self.title,
                TITLE,
                centre,
                (HPos::Center, VPos::Top),
                BLACK,
            )?;
            if !self.subtitle.is_empty() {
                let at = (l.width / 2, MARGIN + TITLE as i32 + 4);
                let grey = RGBColor(90, 90, 90);
                text::draw(
                    area,
                    &self.subtitle,
                    SMALL,
                    at,
                    (HPos::Center, VPos::Top),
                    grey,
                )?;
            }
            let grid_h = l.rows as i32 * l.cell_h;
            let axis_y = l.grid_y + grid_h / 2;
            text::draw_vertical(
                area,
                &self.row_axis,
                LABEL,
                (MARGIN + LABEL as i32 / 2, axis_y),
                BLACK,
            )?;
            for (r, name) in self.row_names.iter().enumerate() {
                let y = l.grid_y + r as i32 * l.cell_h + l.cell_h / 2;
                let at = (l.grid_x - 8, y);
                text::draw(area, name, SMALL, at, (HPos::Right, VPos::Center), BLACK)?;
            }
            let panel_w = l.cols as i32 * l.cell_w;
            for (p, panel) in self.panels.iter().enumerate() {
                let x0 = l.grid_x + p as i32 * (panel_w + PANEL_GAP);
                self.draw_panel(area, &l, panel, x0, extent)?;
            }
            self.draw_colour_bar(area, &l, extent)
        })?;
        Ok(canvas)
    }

    fn draw_panel(
        &self,
        area: &Area,
        l: &Layout,
        panel: &HeatmapPanel,
        x0: i32,
        extent: f32,
    ) -> Result<()> {
        let panel_w = l.cols as i32 * l.cell_w;
        let mid = x0 + panel_w / 2;
        let names_y = l.grid_y - 6;
        let axis_y = names_y - SMALL as i32 - 6;
        text::draw(
            area,
            &self.col_axis,
            SMALL,
            (mid, axis_y),
            (HPos::Center, VPos::Bottom),
            BLACK,
        )?;
        if !panel.title.is_empty() {
            let y = axis_y - SMALL as i32 - 8;
            text::draw(
                area,
                &panel.title,
                LABEL,
                (mid, y),
                (HPos::Center, VPos::Bottom),
                BLACK,
            )?;
        }
        for (c, name) in self.col_names.iter().enumerate() {
            let x = x0 + c as i32 * l.cell_w + l.cell_w / 2;
            text::draw(
                area,
                name,
                SMALL,
                (x, names_y),
                (HPos::Center, VPos::Bottom),
                BLACK,
            )?;
        }
        for (i, &v) in panel.values.iter().enumerate() {
            let (r, c) = ((i / l.cols) as i32, (i % l.cols) as i32);
            let (x, y) = (x0 + c * l.cell_w, l.grid_y + r * l.cell_h);
            let (fill, light_text) = self.scale.colour(v, extent);
            let corners = [(x, y), (x + l.cell_w, y + l.cell_h)];
            area.draw(&Rectangle::new(corners, fill.filled()))
                .map_err(drawing_error)?;
            area.draw(&Rectangle::new(corners, GRID_LINE))
                .map_err(drawing_error)?;
            let ink = if light_text { WHITE } else { BLACK };
            let centre = (x + l.cell_w / 2, y + l.cell_h / 2);
            let label = match panel.edges {
                true if v == 1.0 => "1".to_string(),
                true => String::new(),
                false => self.value_text(v, extent),
            };
            text::draw(
                area,
                &label,
                SMALL,
                centre,
                (HPos::Center, VPos::Center),
                ink,
            )?;
        }
        Ok(())
    }

    /// A vertical bar from the scale's top (red) to its bottom, ticks at both ends and the middle.
    fn draw_colour_bar(&self, area: &Area, l: &Layout, extent: f32) -> Result<()> {
        let h = l.rows as i32 * l.cell_h;
        let (lo, hi) = self.scale.range(extent);
        for y in 0..h {
            let v = hi - (hi - lo) * y as f32 / (h - 1).max(1) as f32;
            let (c, _) = self.scale.colour(v, extent);
            let row = [(l.bar_x, l.grid_y + y), (l.bar_x + BAR_W, l.grid_y + y + 1)];
            area.draw(&Rectangle::new(row, c.filled()))
                .map_err(drawing_error)?;
        }
        let frame = [(l.bar_x, l.grid_y), (l.bar_x + BAR_W, l.grid_y + h)];
        area.draw(&Rectangle::new(frame, BLACK))
            .map_err(drawing_error)?;
        let label_at = (l.bar_x, l.grid_y - 12);
        text::draw(
            area,
            &self.bar_label,
            SMALL,
            label_at,
            (HPos::Left, VPos::Bottom),
            BLACK,
        )?;
        for (k, v) in [(0, hi), (1, (lo + hi) / 2.0), (2, lo)] {
            let y = l.grid_y + (h - 1) * k / 2;
            let tick = [(l.bar_x + BAR_W, y), (l.bar_x + BAR_W + 5, y)];
            area.draw(&PathElement::new(tick, BLACK))
                .map_err(drawing_error)?;
            let at = (l.bar_x + BAR_W + 9, y);
            let label = self.value_text(v, extent);
            text::draw(area, &label, SMALL, at, (HPos::Left, VPos::Center), BLACK)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn heatmap(panels: Vec<Vec<f32>>, scale: ColourScale) -> Heatmap {
        Heatmap {
            title: "Learned graph".into(),
            subtitle: "rows cause, columns effect".into(),
            row_names: names("cause", 2),
            col_names: names("effect", 2),
            row_axis: "cause (parent)".into(),
            col_axis: "effect (child)".into(),
            panels: panels
                .into_iter()
                .enumerate()
                .map(|(i, values)| HeatmapPanel {
                    title: format!("panel {i}"),
                    values,
                    edges: false,
                })
                .collect(),
            scale,
            bar_label: "A[i][j]".into(),
        }
    }

    #[test]
    fn signed_values_are_red_positive_blue_negative_white_zero() {
        let s = ColourScale::Signed;
        assert_eq!(s.colour(2.0, 2.0).0, RGBColor(255, 0, 0));
        assert_eq!(s.colour(-1.0, 2.0).0, RGBColor(128, 128, 255));
        assert_eq!(s.colour(0.0, 2.0).0, RGBColor(255, 255, 255));
        assert!(s.colour(2.0, 2.0).1 && !s.colour(0.1, 2.0).1);
        assert_eq!(ColourScale::Unit.colour(1.5, 9.0).0, RGBColor(255, 0, 0));
        assert_eq!(s.colour(f32::NAN, 1.0).0, MISSING);
    }

    #[test]
    fn cells_take_their_colour_and_print_their_value() {
        let h = heatmap(vec![vec![0.0, 0.8, -0.4, 0.0]], ColourScale::Signed);
        let l = h.layout().unwrap();
        let c = h.render().unwrap();
        // Near the top-left corner of cell (0, 1): pure red (0.8 is the extent).
        let (x, y) = (l.grid_x + l.cell_w + 3, l.grid_y + 3);
        assert_eq!(c.pixel(x as u32, y as u32), [255, 0, 0]);
        // Its centre carries the printed value in white.
        let (cx, cy) = (l.grid_x + l.cell_w + l.cell_w / 2, l.grid_y + l.cell_h / 2);
        let text_pixels = (cx - 15..cx + 15)
            .flat_map(|x| (cy - 6..cy + 6).map(move |y| (x, y)))
            .filter(|&(x, y)| c.pixel(x as u32, y as u32)[1] > 128)
            .count();
        assert!(text_pixels > 10, "{text_pixels}");
        // A zero cell is white with dark text.
        let zx = l.grid_x + l.cell_w / 2;
        let dark = (zx - 10..zx + 10).any(|x| c.pixel(x as u32, cy as u32)[0] < 100);
        assert!(dark);
    }

    #[test]
    fn panels_sit_side_by_side_with_one_colour_bar() {
        let one = heatmap(vec![vec![0.5; 4]], ColourScale::Unit)
            .render()
            .unwrap();
        let two = heatmap(vec![vec![0.5; 4], vec![1.0; 4]], ColourScale::Unit);
        let l = two.layout().unwrap();
        let c = two.render().unwrap();
        assert!(c.width() > one.width() + 2 * MIN_CELL as u32);
        // The bar's top is the scale's maximum (red), its bottom white.
        let top = c.pixel((l.bar_x + 5) as u32, (l.grid_y + 2) as u32);
        assert!(top[0] == 255 && top[1] < 12, "{top:?}");
        let bottom = l.grid_y + 2 * l.cell_h - 2;
        assert!(c.pixel((l.bar_x + 5) as u32, bottom as u32)[1] > 240);
    }

    #[test]
    fn refuses_values_that_do_not_fill_the_matrix() {
        let err = heatmap(vec![vec![0.0; 3]], ColourScale::Signed)
            .render()
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("2×2 values"), "{err}");
        let mut empty = heatmap(vec![vec![]], ColourScale::Signed);
        empty.row_names.clear();
        assert!(empty.render().is_err());
    }
}
