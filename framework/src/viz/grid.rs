//! A labelled grid of images: a title and subtitle, one label per row (left), optional labels over the columns
//! and a caption under each image. Small images are enlarged by a whole factor (nearest neighbour) so that a
//! 32-pixel render is drawn at least [`MIN_CELL_SIDE`] pixels high.

use super::canvas::{drawing_error, Canvas, MAX_PIXELS};
use super::image::Image;
use super::text::{self, LABEL, SMALL, TITLE};
use crate::error::{Error, Result};
use plotters::element::Rectangle;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{RGBColor, BLACK};
use std::path::Path;

/// Images are enlarged until their shorter side reaches this many pixels (when the figure stays within
/// [`MAX_PIXELS`]).
pub const MIN_CELL_SIDE: usize = 96;
const MAX_SCALE: usize = 16;
const MARGIN: usize = 16;
const GAP: usize = 8;
const ROW_GAP: usize = 10;
/// Height of the caption band under a row's images.
const CAPTION_H: usize = SMALL as usize + 6;
const GRAY: RGBColor = RGBColor(90, 90, 90);
const FRAME: RGBColor = RGBColor(200, 200, 200);

/// One row of the grid.
pub struct GridRow {
    pub label: String,
    pub images: Vec<Image>,
    /// One caption per image, drawn under it; empty for none.
    pub captions: Vec<String>,
}

pub struct LabelledGrid {
    pub title: String,
    /// A second line under the title (units, what the rows and columns are); empty for none.
    pub subtitle: String,
    /// One label per column, drawn above the first row; empty for none.
    pub column_labels: Vec<String>,
    pub rows: Vec<GridRow>,
}

/// Where everything goes, computed before the canvas is allocated.
struct Layout {
    scale: usize,
    image: (usize, usize),
    cell_w: usize,
    label_w: usize,
    top: usize,
    row_h: usize,
    width: usize,
    height: usize,
}

/// The enlargement that brings an `h × w` image's shorter side to [`MIN_CELL_SIDE`].
pub fn upscale(h: usize, w: usize) -> usize {
    MIN_CELL_SIDE.div_ceil(h.min(w).max(1)).clamp(1, MAX_SCALE)
}

impl LabelledGrid {
    /// Writes the grid as a PNG.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.render()?.save(path)
    }

    pub fn render(&self) -> Result<Canvas> {
        let layout = self.layout()?;
        let mut canvas = Canvas::new(layout.width as u32, layout.height as u32)?;
        let (ih, iw) = layout.image;
        for (r, row) in self.rows.iter().enumerate() {
            let y = layout.top + r * layout.row_h;
            for (c, image) in row.images.iter().enumerate() {
                let x = self.cell_x(&layout, c) + (layout.cell_w - iw * layout.scale) / 2;
                canvas.blit(image, layout.scale, (x, y));
            }
        }
        canvas.draw(|area| {
            let centre = layout.width as i32 / 2;
            text::draw(
                area,
                &self.title,
                TITLE,
                (centre, MARGIN as i32),
                (HPos::Center, VPos::Top),
                BLACK,
            )?;
            if !self.subtitle.is_empty() {
                let y = (MARGIN as f64 + TITLE + 4.0) as i32;
                let at = (centre, y);
                text::draw(
                    area,
                    &self.subtitle,
                    SMALL,
                    at,
                    (HPos::Center, VPos::Top),
                    GRAY,
                )?;
            }
            for (c, label) in self.column_labels.iter().enumerate() {
                let x = (self.cell_x(&layout, c) + layout.cell_w / 2) as i32;
                let y = (layout.top - 6) as i32;
                text::draw(
                    area,
                    label,
                    SMALL,
                    (x, y),
                    (HPos::Center, VPos::Bottom),
                    BLACK,
                )?;
            }
            for (r, row) in self.rows.iter().enumerate() {
                let y = layout.top + r * layout.row_h;
                for c in 0..row.images.len() {
                    // A thin frame shows where an image with a white background ends.
                    let x = self.cell_x(&layout, c) + (layout.cell_w - iw * layout.scale) / 2;
                    let (x0, y0) = (x as i32 - 1, y as i32 - 1);
                    let (x1, y1) = (
                        x0 + (iw * layout.scale) as i32 + 1,
                        y0 + (ih * layout.scale) as i32 + 1,
                    );
                    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], FRAME))
                        .map_err(drawing_error)?;
                }
                let mid = (y + ih * layout.scale / 2) as i32;
                let x = (MARGIN + layout.label_w) as i32;
                text::draw(
                    area,
                    &row.label,
                    LABEL,
                    (x, mid),
                    (HPos::Right, VPos::Center),
                    BLACK,
                )?;
                for (c, caption) in row.captions.iter().enumerate() {
                    let x = (self.cell_x(&layout, c) + layout.cell_w / 2) as i32;
                    let y = (y + ih * layout.scale + 3) as i32;
                    text::draw(
                        area,
                        caption,
                        SMALL,
                        (x, y),
                        (HPos::Center, VPos::Top),
                        BLACK,
                    )?;
                }
            }
            Ok(())
        })?;
        Ok(canvas)
    }

    fn cell_x(&self, layout: &Layout, column: usize) -> usize {
        MARGIN + layout.label_w + GAP + column * (layout.cell_w + GAP)
    }

    fn layout(&self) -> Result<Layout> {
        let first = self
            .rows
            .iter()
            .flat_map(|r| &r.images)
            .next()
            .ok_or_else(|| Error::msg(format!("figure `{}` has no images", self.title)))?;
        let (ih, iw) = (first.height, first.width);
        if let Some(other) = self
            .rows
            .iter()
            .flat_map(|r| &r.images)
            .find(|i| (i.height, i.width) != (ih, iw))
        {
            return Err(Error::Shape {
                context: format!("figure `{}`", self.title),
                expected: format!("images of one size, {ih}×{iw}"),
                got: format!("{}×{}", other.height, other.width),
            });
        }
        let columns = self.rows.iter().map(|r| r.images.len()).max().unwrap_or(0);
        let captions: Vec<&String> = self.rows.iter().flat_map(|r| &r.captions).collect();
        let caption_h = if captions.is_empty() { 0 } else { CAPTION_H };
        let text_w =
            text::max_width(&captions, SMALL)?.max(text::max_width(&self.column_labels, SMALL)?);
        let labels: Vec<&String> = self.rows.iter().map(|r| &r.label).collect();
        let label_w = text::max_width(&labels, LABEL)? as usize;
        let title_w =
            text::width(&self.title, TITLE)?.max(text::width(&self.subtitle, SMALL)?) as usize;
        let mut top = MARGIN + TITLE as usize + 10;
        if !self.subtitle.is_empty() {
            top += SMALL as usize + 4;
        }
        if !self.column_labels.is_empty() {
            top += SMALL as usize + 8;
        }
        let mut scale = upscale(ih, iw);
        loop {
            let cell_w = (iw * scale).max(text_w as usize + 6);
            let row_h = ih * scale + caption_h + ROW_GAP;
            let grid_w = MARGIN + label_w + GAP + columns * (cell_w + GAP) + MARGIN;
            let width = grid_w.max(title_w + 2 * MARGIN);
            let height = top + self.rows.len() * row_h + MARGIN;
            if (width * height) as u64 <= MAX_PIXELS || scale == 1 {
                return Ok(Layout {
                    scale,
                    image: (ih, iw),
                    cell_w,
                    label_w,
                    top,
                    row_h,
                    width,
                    height,
                });
            }
            scale -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn black(h: usize, w: usize) -> Image {
        Image::new(1, h, w, vec![0.0; h * w]).unwrap()
    }

    fn grid(rows: usize, cols: usize, captions: bool) -> LabelledGrid {
        LabelledGrid {
            title: "Latent traversal".into(),
            subtitle: "values in the model's units".into(),
            column_labels: (0..cols).map(|c| format!("{c}")).collect(),
            rows: (0..rows)
                .map(|r| GridRow {
                    label: format!("z{r}"),
                    images: vec![black(32, 32); cols],
                    captions: if captions {
                        (0..cols).map(|c| format!("{c}.5")).collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }

    /// Whether any pixel in the rectangle is not white.
    fn inked(c: &Canvas, x0: u32, y0: u32, x1: u32, y1: u32) -> bool {
        (y0..y1).any(|y| (x0..x1).any(|x| c.pixel(x, y) != [255; 3]))
    }

    #[test]
    fn small_images_are_enlarged_to_the_minimum_cell() {
        assert_eq!(upscale(32, 32), 3);
        assert_eq!(upscale(64, 128), 2);
        assert_eq!(upscale(200, 200), 1);
        assert_eq!(upscale(1, 1), MAX_SCALE);
    }

    #[test]
    fn a_grid_has_room_for_every_enlarged_image_and_its_labels() {
        let g = grid(2, 3, true);
        let layout = g.layout().unwrap();
        let c = g.render().unwrap();
        assert_eq!(layout.scale, 3);
        assert!(c.width() as usize >= 3 * 96 + layout.label_w);
        assert!(c.height() as usize >= 2 * (96 + CAPTION_H));
        assert_eq!(
            (c.width(), c.height()),
            (layout.width as u32, layout.height as u32)
        );
        // The image of row 1, column 2 is black at its centre.
        let x = g.cell_x(&layout, 2) + layout.cell_w / 2;
        let y = layout.top + layout.row_h + 48;
        assert_eq!(c.pixel(x as u32, y as u32), [0; 3]);
    }

    #[test]
    fn labels_are_drawn_where_the_layout_puts_them() {
        let g = grid(2, 3, true);
        let layout = g.layout().unwrap();
        let c = g.render().unwrap();
        let (m, top) = (MARGIN as u32, layout.top as u32);
        // Row label left of the first row, title above the grid, caption under the first image.
        assert!(inked(&c, m, top, m + layout.label_w as u32, top + 96));
        assert!(inked(&c, 0, 0, c.width(), m + TITLE as u32));
        let x0 = g.cell_x(&layout, 0) as u32;
        let caption_y = top + 96;
        assert!(inked(
            &c,
            x0,
            caption_y,
            x0 + layout.cell_w as u32,
            caption_y + CAPTION_H as u32
        ));
        // Without captions the same band is white.
        let bare = grid(2, 3, false);
        let (bl, bc) = (bare.layout().unwrap(), bare.render().unwrap());
        let bx = bare.cell_x(&bl, 0) as u32;
        assert!(!inked(
            &bc,
            bx,
            caption_y + 2,
            bx + bl.cell_w as u32,
            caption_y + 8
        ));
    }

    #[test]
    fn long_captions_widen_the_cells() {
        let mut g = grid(1, 2, true);
        g.rows[0].captions = vec!["a much longer caption than a cell".into(), "x".into()];
        let layout = g.layout().unwrap();
        assert!(layout.cell_w > 96 + 40, "{}", layout.cell_w);
    }

    #[test]
    fn huge_grids_shrink_the_enlargement_or_are_refused() {
        let g = grid(40, 100, false);
        let layout = g.layout().unwrap();
        assert!(layout.scale < 3, "{}", layout.scale);
        let mut wide = grid(1, 0, false);
        wide.rows[0].images = vec![black(1, 1); 200_000];
        let err = wide.render().err().unwrap().to_string();
        assert!(err.contains("draw fewer images"), "{err}");
    }

    #[test]
    fn refuses_empty_and_mixed_sizes() {
        assert!(grid(0, 0, false).render().is_err());
        let mut g = grid(1, 2, false);
        g.rows[0].images[1] = black(16, 16);
        assert!(g.render().err().unwrap().to_string().contains("16×16"));
    }
}
