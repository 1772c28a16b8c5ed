//! Rasterises one pendulum scene the way matplotlib's Agg backend draws CausalVAE's figure, using tiny-skia.
//!
//! What the original figure does (matplotlib defaults, checked against matplotlib 3.11's Agg output):
//! - a 1 × 1 inch figure saved at `dpi` ⇒ a `dpi × dpi` canvas, opaque white, axis off;
//! - the default subplot box: left .125, right .9, bottom .11, top .88 of the canvas, with `xlim = (0, 20)`,
//!   `ylim = (-1, 21)` set exactly and a non-equal aspect (circles become ellipses);
//! - `add_artist` clips every patch to the axes box; Agg rounds that box to whole pixels
//!   (`floor(v + 0.5)`, rows counted from the top);
//! - draw order = insertion order (all four are patches with z-order 1): rod, bob, sun, shadow;
//! - circles (`plt.Circle`, `color=` sets face and edge) are the 8-segment cubic Bézier unit circle, filled and then
//!   stroked with the default patch line width of 1 pt;
//! - rod and shadow are 2-vertex closed `plt.Polygon`s: Agg strokes a closed path with fewer than 3 vertices as an
//!   open segment, so they are 3 pt wide segments with patch caps (`butt`) and no extension; their zero-area fill
//!   draws nothing;
//! - paths made only of horizontal/vertical segments (the shadow always, the rod when vertical) are snapped:
//!   every vertex goes to `floor(v + 0.5) + (0.5 if round(line width px) is odd else 0)`.
//!
//! Line widths are in points, so `px = pt · dpi / 72` (3 pt = 4 px at dpi 96).
//!
//! Against 100 official renders the mean absolute byte difference is 0.04/255 (max 0.05/255 per image); the
//! shadow is pixel-exact and the rest differs only in anti-aliased edge pixels (see `tests/pendulum_reference.rs`).
//! Native renders at dpi 64 differ from matplotlib's by 0.12/255 on average.

use super::PendulumScene;
use tiny_skia::{FillRule, LineCap, LineJoin, Paint, Path, PathBuilder, Pixmap, Stroke, Transform};

/// matplotlib's named colour `firebrick`.
pub const FIREBRICK: [u8; 3] = [178, 34, 34];
/// matplotlib's named colour `orange`.
pub const ORANGE: [u8; 3] = [255, 165, 0];
pub const BLACK: [u8; 3] = [0, 0, 0];
pub const WHITE: [u8; 3] = [255, 255, 255];

/// Subplot box in figure fractions (matplotlib's `figure.subplot.*` defaults).
const LEFT: f64 = 0.125;
const RIGHT: f64 = 0.9;
const BOTTOM: f64 = 0.11;
const TOP: f64 = 0.88;
/// Data limits set by the generator.
const XLIM: (f64, f64) = (0.0, 20.0);
const YLIM: (f64, f64) = (-1.0, 21.0);
/// Line widths in points: rod and shadow `linewidth=3`, circle edges the default `patch.linewidth` 1.0.
const THICK_PT: f64 = 3.0;
const EDGE_PT: f64 = 1.0;

/// matplotlib's `Path.unit_circle()` control points (8 cubic Bézier segments, starting at (0, −1)).
const MAGIC: f64 = 0.2652031;
const SQRTHALF: f64 = std::f64::consts::FRAC_1_SQRT_2;

fn unit_circle() -> [(f64, f64); 25] {
    let m45 = SQRTHALF * MAGIC;
    [
        (0.0, -1.0),
        (MAGIC, -1.0),
        (SQRTHALF - m45, -SQRTHALF - m45),
        (SQRTHALF, -SQRTHALF),
        (SQRTHALF + m45, -SQRTHALF + m45),
        (1.0, -MAGIC),
        (1.0, 0.0),
        (1.0, MAGIC),
        (SQRTHALF + m45, SQRTHALF - m45),
        (SQRTHALF, SQRTHALF),
        (SQRTHALF - m45, SQRTHALF + m45),
        (MAGIC, 1.0),
        (0.0, 1.0),
        (-MAGIC, 1.0),
        (-SQRTHALF + m45, SQRTHALF + m45),
        (-SQRTHALF, SQRTHALF),
        (-SQRTHALF - m45, SQRTHALF - m45),
        (-1.0, MAGIC),
        (-1.0, 0.0),
        (-1.0, -MAGIC),
        (-SQRTHALF - m45, -SQRTHALF + m45),
        (-SQRTHALF, -SQRTHALF),
        (-SQRTHALF + m45, -SQRTHALF - m45),
        (-MAGIC, -1.0),
        (0.0, -1.0),
    ]
}

/// Data → pixel mapping of the figure at a given dpi (pixel rows grow downwards, pixel centres at k + 0.5).
#[derive(Clone, Copy, Debug)]
pub struct Canvas {
    pub dpi: f64,
    x0: f64,
    sx: f64,
    y0: f64,
    sy: f64,
}

impl Canvas {
    pub fn new(dpi: u32) -> Self {
        let w = dpi as f64;
        let (ax0, ax1) = (LEFT * w, RIGHT * w);
        let (ay0, ay1) = (BOTTOM * w, TOP * w);
        Self {
            dpi: w,
            x0: ax0,
            sx: (ax1 - ax0) / (XLIM.1 - XLIM.0),
            y0: ay0,
            sy: (ay1 - ay0) / (YLIM.1 - YLIM.0),
        }
    }

    /// Pixel coordinates (x right, y down) of a data point.
    pub fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        let dx = self.x0 + (x - XLIM.0) * self.sx;
        let dy = self.y0 + (y - YLIM.0) * self.sy;
        (dx, self.dpi - dy)
    }

    /// Points → pixels.
    pub fn pt(&self, points: f64) -> f64 {
        points * self.dpi / 72.0
    }

    /// The axes clip box as Agg applies it: `[x0, x1) × [y0, y1)` in whole pixels.
    pub fn clip_box(&self) -> (u32, u32, u32, u32) {
        let w = self.dpi;
        let size = w as i64;
        let r = |v: f64| ((v + 0.5).floor() as i64).clamp(0, size) as u32;
        (r(LEFT * w), r(w - TOP * w), r(RIGHT * w), r(w - BOTTOM * w))
    }
}

/// matplotlib's snapping of rectilinear paths (see the module docs).
fn snap(points: &mut [(f64, f64)], width_px: f64) {
    let rectilinear = points
        .windows(2)
        .all(|w| (w[0].0 - w[1].0).abs() < 1e-4 || (w[0].1 - w[1].1).abs() < 1e-4);
    if !rectilinear {
        return;
    }
    let odd = ((width_px + 0.5).floor() as i64) % 2 != 0;
    let offset = if odd { 0.5 } else { 0.0 };
    for p in points {
        p.0 = (p.0 + 0.5).floor() + offset;
        p.1 = (p.1 + 0.5).floor() + offset;
    }
}

fn paint(rgb: [u8; 3]) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(rgb[0], rgb[1], rgb[2], 255);
    p.anti_alias = true;
    p
}

fn segment_path(a: (f64, f64), b: (f64, f64)) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(a.0 as f32, a.1 as f32);
    pb.line_to(b.0 as f32, b.1 as f32);
    pb.finish()
}

fn ellipse_path(p: &Painter, cx: f64, cy: f64, r: f64) -> Option<Path> {
    let pts = unit_circle().map(|(ux, uy)| p.up(p.canvas.to_px(cx + r * ux, cy + r * uy)));
    let f = |p: (f64, f64)| (p.0 as f32, p.1 as f32);
    let mut pb = PathBuilder::new();
    let (x, y) = f(pts[0]);
    pb.move_to(x, y);
    for k in 0..8 {
        let (x1, y1) = f(pts[3 * k + 1]);
        let (x2, y2) = f(pts[3 * k + 2]);
        let (x3, y3) = f(pts[3 * k + 3]);
        pb.cubic_to(x1, y1, x2, y2, x3, y3);
    }
    pb.close();
    pb.finish()
}

/// Supersampling factor: shapes are rasterised at `SS × size` and box-filtered down. tiny-skia's own anti-aliasing
/// (4 sub-scanlines, truncated partial coverage) under-covers edge pixels by up to ~0.1 compared with Agg's exact
/// area coverage; at 4× the residual bias is a few hundredths.
pub const SS: u32 = 4;

/// Draws at `SS ×` resolution onto a pixmap covering exactly the axes clip box: tiny-skia clips to the pixmap's
/// bounds, which are whole pixels, so this is Agg's integer clip box; everything outside it stays white.
struct Painter {
    pixmap: Pixmap,
    canvas: Canvas,
    size: u32,
    /// Clip box `[x0, x1) × [y0, y1)` in output pixels.
    clip: (u32, u32, u32, u32),
}

impl Painter {
    fn new(size: u32) -> Self {
        let canvas = Canvas::new(size);
        let clip = canvas.clip_box();
        let (w, h) = ((clip.2 - clip.0).max(1), (clip.3 - clip.1).max(1));
        let mut pixmap = Pixmap::new(w * SS, h * SS).expect("non-empty pixmap");
        pixmap.fill(tiny_skia::Color::WHITE);
        Self {
            pixmap,
            canvas,
            size,
            clip,
        }
    }

    /// Output-pixel coordinates → coordinates on the supersampled clip-box pixmap.
    fn up(&self, p: (f64, f64)) -> (f64, f64) {
        let ss = SS as f64;
        (
            (p.0 - self.clip.0 as f64) * ss,
            (p.1 - self.clip.1 as f64) * ss,
        )
    }

    /// Box-filters the supersampled clip box into a white `size × size` RGBA image.
    fn finish(self) -> Vec<u8> {
        let n = self.size as usize;
        let ss = SS as usize;
        let (x0, y0, x1, y1) = (
            self.clip.0 as usize,
            self.clip.1 as usize,
            self.clip.2 as usize,
            self.clip.3 as usize,
        );
        let mut out = vec![255u8; n * n * 4];
        let src = self.pixmap.data();
        let row_len = self.pixmap.width() as usize * 4;
        let mut acc = vec![0u16; row_len];
        let (area, half) = ((ss * ss) as u32, (ss * ss / 2) as u32);
        for y in 0..(y1 - y0) {
            acc.fill(0);
            for sy in 0..ss {
                let row = &src[(y * ss + sy) * row_len..(y * ss + sy + 1) * row_len];
                for (a, &b) in acc.iter_mut().zip(row) {
                    *a += b as u16;
                }
            }
            let dst = &mut out[((y0 + y) * n + x0) * 4..((y0 + y) * n + x1) * 4];
            for (px, block) in dst.chunks_exact_mut(4).zip(acc.chunks_exact(4 * ss)) {
                for c in 0..4 {
                    let sum: u32 = (0..ss).map(|k| block[4 * k + c] as u32).sum();
                    px[c] = ((sum + half) / area) as u8;
                }
            }
        }
        out
    }

    /// A 3 pt segment with butt caps, snapped when horizontal or vertical.
    fn thick_segment(&mut self, a: (f64, f64), b: (f64, f64), rgb: [u8; 3]) {
        let width = self.canvas.pt(THICK_PT);
        let mut pts = [self.canvas.to_px(a.0, a.1), self.canvas.to_px(b.0, b.1)];
        snap(&mut pts, width);
        if let Some(path) = segment_path(self.up(pts[0]), self.up(pts[1])) {
            let stroke = Stroke {
                width: (width * SS as f64) as f32,
                line_cap: LineCap::Butt,
                line_join: LineJoin::Miter,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &paint(rgb), &stroke, Transform::identity(), None);
        }
    }

    /// A filled circle (an ellipse on screen) with a 1 pt edge of the same colour.
    fn disc(&mut self, cx: f64, cy: f64, r: f64, rgb: [u8; 3]) {
        if let Some(path) = ellipse_path(self, cx, cy, r) {
            let p = paint(rgb);
            self.pixmap
                .fill_path(&path, &p, FillRule::Winding, Transform::identity(), None);
            let stroke = Stroke {
                width: (self.canvas.pt(EDGE_PT) * SS as f64) as f32,
                line_cap: LineCap::Butt,
                line_join: LineJoin::Miter,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &p, &stroke, Transform::identity(), None);
        }
    }
}

/// Renders a scene to row-major RGBA bytes (`size × size × 4`, alpha 255).
pub fn render_scene_rgba(scene: &PendulumScene, size: u32) -> Vec<u8> {
    let mut p = Painter::new(size);
    p.thick_segment(scene.pivot, scene.bob, BLACK);
    p.disc(scene.bob.0, scene.bob.1, scene.bob_radius, FIREBRICK);
    p.disc(scene.sun_x, scene.sun_y, scene.sun_radius, ORANGE);
    let half = scene.shadow_len / 2.0;
    p.thick_segment(
        (scene.shadow_mid - half, scene.ground_y),
        (scene.shadow_mid + half, scene.ground_y),
        BLACK,
    );
    // Every colour is opaque over an opaque background, so premultiplied bytes are the straight bytes.
    p.finish()
}

/// Writes row-major RGBA bytes into `out` as channels-first bytes with `channels` ∈ {3, 4} (RGB or RGBA).
pub fn rgba_to_chw(rgba: &[u8], size: u32, channels: usize, out: &mut [u8]) {
    let hw = (size * size) as usize;
    debug_assert_eq!(rgba.len(), hw * 4);
    debug_assert_eq!(out.len(), hw * channels);
    for (c, plane) in out.chunks_exact_mut(hw).enumerate() {
        for (dst, px) in plane.iter_mut().zip(rgba.chunks_exact(4)) {
            *dst = px[c];
        }
    }
}
