//! Rasterises one scene into a binary 64 × 64 [`Bitmap`], as the frames of the original were measured to be made
//! (see [`super::shapes`] for the outlines):
//!
//! - image coordinates are continuous, x to the right and y down; pixel (column i, row j) covers
//!   [i, i+1) × [j, j+1) and is on when its centre (i + ½, j + ½) lies inside the sprite (boundary included);
//! - the sprite's position is (16 + 32·posX, 16 + 32·posY) for posX, posY ∈ [0, 1]: the middle half of the
//!   image, so posY = 0 is near the top; a square at scale 1 at posX = 0 covers columns 6..=25;
//! - the outline is scaled by `scale` about the position and turned by `orientation` about it,
//!   counter-clockwise on screen: a sprite-coordinate point (x, y) lands at
//!   position + scale · (x cos θ + y sin θ, −x sin θ + y cos θ).
//!
//! Polygons (square, heart) are filled row by row from their edges' crossings of the row's centre line; the
//! ellipse's row spans solve its quadratic. A scene takes about a microsecond.

use super::grid::{orientation_value, position_value, scale_value, Scene};
use super::shapes::{heart_polygon, square_polygon, Shape, ELLIPSE_SEMI_AXES};
use crate::error::{Error, Result};

/// Side of the image in pixels.
pub const IMAGE_SIZE: usize = 64;
/// Pixels per image.
pub const PIXELS: usize = IMAGE_SIZE * IMAGE_SIZE;
/// Image coordinate of position 0 (posX or posY).
pub const POSITION_OFFSET: f64 = 16.0;
/// Image distance from position 0 to position 1.
pub const POSITION_RANGE: f64 = 32.0;

/// Image coordinate (x or y) of a posX or posY value in [0, 1].
pub fn position_to_pixels(pos: f64) -> f64 {
    POSITION_OFFSET + POSITION_RANGE * pos
}

/// A binary 64 × 64 image: one `u64` per row, bit i = column i.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bitmap(pub [u64; IMAGE_SIZE]);

impl std::fmt::Debug for Bitmap {
    /// One line per non-empty row, `#` for on pixels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Bitmap ({} pixels on)", self.count())?;
        for (y, &row) in self.0.iter().enumerate() {
            if row != 0 {
                let line: String = (0..IMAGE_SIZE)
                    .map(|x| if row >> x & 1 == 1 { '#' } else { '.' })
                    .collect();
                writeln!(f, "{y:2} {line}")?;
            }
        }
        Ok(())
    }
}

impl Default for Bitmap {
    fn default() -> Self {
        Self([0; IMAGE_SIZE])
    }
}

impl Bitmap {
    /// From 4,096 row-major pixel values, each 0 or 1 (anything else is an error naming the pixel).
    pub fn from_pixels(pixels: &[u8]) -> Result<Self> {
        if pixels.len() != PIXELS {
            return Err(Error::Shape {
                context: "Dsprites image".into(),
                expected: format!("{PIXELS} pixels (64 × 64)"),
                got: pixels.len().to_string(),
            });
        }
        let mut out = Self::default();
        for (i, &p) in pixels.iter().enumerate() {
            match p {
                0 => {}
                1 => out.0[i / IMAGE_SIZE] |= 1 << (i % IMAGE_SIZE),
                v => {
                    return Err(Error::Data(format!(
                        "Dsprites image: pixel (row {}, column {}) is {v}; dSprites images are binary 0/1",
                        i / IMAGE_SIZE,
                        i % IMAGE_SIZE
                    )))
                }
            }
        }
        Ok(out)
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        self.0[y] >> x & 1 == 1
    }

    /// Turns on columns `x0..=x1` of row `y`.
    fn fill(&mut self, y: usize, x0: usize, x1: usize) {
        let width = x1 - x0 + 1;
        let mask = if width == IMAGE_SIZE {
            u64::MAX
        } else {
            ((1u64 << width) - 1) << x0
        };
        self.0[y] |= mask;
    }

    /// Pixels on.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|r| r.count_ones()).sum()
    }

    /// Intersection over union with `other` (1 when both are empty).
    pub fn iou(&self, other: &Bitmap) -> f64 {
        let (mut inter, mut union) = (0u32, 0u32);
        for (a, b) in self.0.iter().zip(&other.0) {
            inter += (a & b).count_ones();
            union += (a | b).count_ones();
        }
        if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        }
    }

    /// Mean (x, y) of the on pixels' centres; `None` when none is on.
    pub fn centroid(&self) -> Option<(f64, f64)> {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0u32);
        for (y, &row) in self.0.iter().enumerate() {
            let mut bits = row;
            while bits != 0 {
                let x = bits.trailing_zeros();
                sx += x as f64 + 0.5;
                sy += y as f64 + 0.5;
                n += 1;
                bits &= bits - 1;
            }
        }
        (n > 0).then(|| (sx / n as f64, sy / n as f64))
    }

    /// Writes the pixels (0.0 or 1.0, row-major) into `out[..4096]`.
    pub fn write_f32(&self, out: &mut [f32]) {
        for (y, &row) in self.0.iter().enumerate() {
            for (x, o) in out[y * IMAGE_SIZE..(y + 1) * IMAGE_SIZE]
                .iter_mut()
                .enumerate()
            {
                *o = (row >> x & 1) as f32;
            }
        }
    }

    /// The pixels as 0/1 bytes, row-major.
    pub fn to_u8(&self) -> Vec<u8> {
        (0..PIXELS)
            .map(|i| (self.0[i / IMAGE_SIZE] >> (i % IMAGE_SIZE) & 1) as u8)
            .collect()
    }
}

/// Columns whose centres lie in [x0, x1], clipped to the image.
fn columns(x0: f64, x1: f64) -> Option<(usize, usize)> {
    let a = (x0 - 0.5).ceil().max(0.0);
    let b = (x1 - 0.5).floor().min((IMAGE_SIZE - 1) as f64);
    (a <= b).then_some((a as usize, b as usize))
}

/// Rows whose centres lie in [y0, y1], clipped to the image.
fn rows(y0: f64, y1: f64) -> std::ops::Range<usize> {
    match columns(y0, y1) {
        Some((a, b)) => a..b + 1,
        None => 0..0,
    }
}

/// Fills the polygon with image-space vertices `v` (even–odd rule, pixel centres on an edge included).
fn fill_polygon(v: &[(f64, f64)], out: &mut Bitmap) {
    let (y0, y1) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let mut xs = [0.0f64; 64];
    for row in rows(y0, y1) {
        let yc = row as f64 + 0.5;
        let mut n = 0;
        for (k, &a) in v.iter().enumerate() {
            let b = v[(k + 1) % v.len()];
            if (a.1 <= yc) != (b.1 <= yc) && n < xs.len() {
                xs[n] = a.0 + (yc - a.1) * (b.0 - a.0) / (b.1 - a.1);
                n += 1;
            }
        }
        let xs = &mut xs[..n];
        xs.sort_unstable_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            if let Some((a, b)) = columns(pair[0], pair[1]) {
                out.fill(row, a, b);
            }
        }
    }
}

/// Renders `shape` at `scale`, turned by `angle` radians (counter-clockwise on screen), centred at image point
/// (`cx`, `cy`): the continuous form of [`render_scene`], for any values.
pub fn render_sprite(shape: Shape, scale: f64, angle: f64, cx: f64, cy: f64) -> Bitmap {
    let (sin, cos) = angle.sin_cos();
    let place = |(x, y): (f64, f64)| {
        (
            cx + scale * (x * cos + y * sin),
            cy + scale * (-x * sin + y * cos),
        )
    };
    let mut out = Bitmap::default();
    match shape {
        Shape::Square => fill_polygon(&square_polygon().map(place), &mut out),
        Shape::Heart => fill_polygon(&heart_polygon().map(place), &mut out),
        Shape::Ellipse => {
            // (u cos − w sin)²/A² + (u sin + w cos)²/B² ≤ s² for offsets (u, w) from the centre.
            let (a, b) = ELLIPSE_SEMI_AXES;
            let (ia, ib) = (1.0 / (a * a), 1.0 / (b * b));
            let a2 = cos * cos * ia + sin * sin * ib;
            let half_height = scale * (a * a * sin * sin + b * b * cos * cos).sqrt();
            for row in rows(cy - half_height, cy + half_height) {
                let w = row as f64 + 0.5 - cy;
                let a1 = 2.0 * w * sin * cos * (ib - ia);
                let a0 = w * w * (sin * sin * ia + cos * cos * ib) - scale * scale;
                let disc = a1 * a1 - 4.0 * a2 * a0;
                if disc < 0.0 {
                    continue;
                }
                let root = disc.sqrt();
                let (u0, u1) = ((-a1 - root) / (2.0 * a2), (-a1 + root) / (2.0 * a2));
                if let Some((x0, x1)) = columns(cx + u0, cx + u1) {
                    out.fill(row, x0, x1);
                }
            }
        }
    }
    out
}

/// The image of one grid scene.
pub fn render_scene(scene: &Scene) -> Bitmap {
    let shape = Shape::from_index(scene.shape as usize).expect("a Scene holds a valid shape index");
    render_sprite(
        shape,
        scale_value(scene.scale as usize),
        orientation_value(scene.orientation as usize),
        position_to_pixels(position_value(scene.pos_x as usize)),
        position_to_pixels(position_value(scene.pos_y as usize)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dsprites::grid::N_SCENES;

    fn scene(i: [usize; 5]) -> Scene {
        Scene::new(i).unwrap()
    }

    #[test]
    fn squares_cover_the_measured_pixels() {
        // Side 19.2·scale centred at 16: 10, 12, …, 20 pixels wide at orientation 0.
        for (k, side) in [10u32, 12, 14, 16, 18, 20].into_iter().enumerate() {
            let b = render_scene(&scene([0, k, 0, 0, 0]));
            assert_eq!(b.count(), side * side, "scale index {k}");
            let first = 16 - side as usize / 2;
            assert!(b.get(first, first) && b.get(first + side as usize - 1, first));
            assert!(!b.get(first - 1, first));
        }
        // Orientation 39 is 2π: the same image as orientation 0.
        assert_eq!(
            render_scene(&scene([0, 5, 39, 7, 9])),
            render_scene(&scene([0, 5, 0, 7, 9]))
        );
    }

    #[test]
    fn renders_are_deterministic_with_known_pixel_counts() {
        // Pixel counts of the original frames at position (0, 0), orientation 0, scales 0.5 … 1 (from the
        // frames of the dSprites animation).
        let expect = [
            [100, 144, 196, 256, 324, 400],
            [76, 104, 144, 184, 228, 288],
            [58, 84, 108, 140, 182, 222],
        ];
        for (shape, counts) in expect.iter().enumerate() {
            for (k, &n) in counts.iter().enumerate() {
                let s = scene([shape, k, 0, 0, 0]);
                let a = render_scene(&s);
                // Squares and ellipses match the original exactly here; the fitted heart outline is within
                // 2 pixels of it (one of these six frames differs).
                let tolerance = if shape == 2 { 2 } else { 0 };
                assert!(
                    a.count().abs_diff(n) <= tolerance,
                    "shape {shape} scale {k}: {} pixels, not {n}",
                    a.count()
                );
                assert_eq!(a, render_scene(&s));
            }
        }
        // Symmetric shapes at position (0, 0) are centred on pixel corner (16, 16).
        let (x, y) = render_scene(&scene([1, 5, 0, 0, 0])).centroid().unwrap();
        assert_eq!((x, y), (16.0, 16.0));
        let (x, _) = render_scene(&scene([2, 5, 0, 0, 0])).centroid().unwrap();
        assert_eq!(x, 16.0);
    }

    /// FNV-1a over the rows of `images`.
    fn fingerprint(images: &[Bitmap]) -> u64 {
        images
            .iter()
            .flat_map(|b| b.0)
            .fold(0xcbf2_9ce4_8422_2325, |h, row| {
                (h ^ row).wrapping_mul(0x100_0000_01b3)
            })
    }

    #[test]
    fn renders_are_deterministic_across_calls_threads_and_order() {
        use rayon::prelude::*;
        // Every 13th scene: all shapes, scales, orientations and positions occur.
        let sample: Vec<usize> = (0..N_SCENES).step_by(13).collect();
        let render = |&i: &usize| render_scene(&Scene::from_index(i).unwrap());
        let first: Vec<Bitmap> = sample.iter().map(render).collect();
        let parallel: Vec<Bitmap> = sample.par_iter().map(render).collect();
        let mut backwards: Vec<Bitmap> = sample.iter().rev().map(render).collect();
        backwards.reverse();
        assert!(first == parallel && first == backwards);
        // The renders themselves are pinned: a change of geometry shows here (and in the matching tests).
        let on: u64 = first.iter().map(|b| b.count() as u64).sum();
        assert_eq!((first.len(), on), (56_714, 9_871_462));
        assert_eq!(fingerprint(&first), 0x7b5c_9913_6a82_0539);
    }

    #[test]
    fn rotation_is_counter_clockwise_on_screen() {
        // The heart's centroid sits above its position; a quarter turn (10 of 39 steps ≈ 92°) takes it left.
        let up = render_scene(&scene([2, 5, 0, 15, 15])).centroid().unwrap();
        let left = render_scene(&scene([2, 5, 10, 15, 15])).centroid().unwrap();
        let c = position_to_pixels(position_value(15));
        assert!(up.1 < c - 1.5 && (up.0 - c).abs() < 0.1, "{up:?}");
        assert!(left.0 < c - 1.5 && (left.1 - c).abs() < 0.5, "{left:?}");
    }

    #[test]
    fn every_shape_stays_inside_the_image_at_the_extreme_positions() {
        for shape in 0..3 {
            for orientation in 0..40 {
                for (px, py) in [(0, 0), (0, 31), (31, 0), (31, 31)] {
                    let b = render_scene(&scene([shape, 5, orientation, px, py]));
                    // No pixel on the image border: the sprite is wholly inside.
                    let border =
                        b.0[0] | b.0[63] | b.0.iter().fold(0, |m, r| m | (r & (1 | 1 << 63)));
                    assert_eq!(
                        border, 0,
                        "shape {shape} orientation {orientation} at ({px}, {py})"
                    );
                    let cont = render_sprite(
                        Shape::from_index(shape).unwrap(),
                        1.0,
                        orientation_value(orientation),
                        position_to_pixels(px as f64 / 31.0),
                        position_to_pixels(py as f64 / 31.0),
                    );
                    assert_eq!(b, cont);
                }
            }
        }
    }

    #[test]
    fn bitmaps_convert_and_compare() {
        let b = render_scene(&scene([2, 3, 7, 4, 20]));
        let bytes = b.to_u8();
        assert_eq!(Bitmap::from_pixels(&bytes).unwrap(), b);
        let mut f = vec![0.5f32; PIXELS];
        b.write_f32(&mut f);
        assert!(f.iter().zip(&bytes).all(|(&x, &y)| x == y as f32));
        assert_eq!(b.iou(&b), 1.0);
        assert_eq!(Bitmap::default().iou(&b), 0.0);
        let mut bad = bytes.clone();
        bad[130] = 255;
        let e = Bitmap::from_pixels(&bad).unwrap_err().to_string();
        assert!(e.contains("row 2, column 2") && e.contains("255"), "{e}");
        assert!(Bitmap::from_pixels(&bytes[1..]).is_err());
        let full = render_sprite(Shape::Square, 10.0, 0.0, 32.0, 32.0);
        assert_eq!(full.count(), PIXELS as u32);
        assert!(format!("{b:?}").contains('#'));
    }

    #[test]
    #[ignore = "timing; run with --release --ignored --nocapture"]
    fn render_speed() {
        let t = std::time::Instant::now();
        let mut on = 0u64;
        for i in (0..N_SCENES).step_by(7) {
            on += render_scene(&Scene::from_index(i).unwrap()).count() as u64;
        }
        let n = N_SCENES.div_ceil(7);
        println!(
            "{n} scenes in {:?}: {:.2} µs per scene ({on} pixels)",
            t.elapsed(),
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
