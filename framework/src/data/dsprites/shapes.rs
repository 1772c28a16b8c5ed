//! The three sprites as outlines in sprite coordinates: pixels of the 64 × 64 image at scale 1, origin at the
//! sprite's position (its rotation centre), x to the right and y down at orientation 0.
//!
//! The geometry was measured on 160 frames of the original dataset (the frames of the dSprites animation:
//! scale sweeps, full turns and position sweeps of each shape; 7 of them are in `tests/data/dsprites/`) by
//! fitting each outline to the frames' pixels, a pixel being on when its centre lies inside the outline:
//!
//! - **square**: side 19.2 (0.3 of the image), centred on the position. 31 of the 32 square frames are
//!   reproduced pixel for pixel; the other (a turned square) differs in 4 of its 368 pixels.
//! - **ellipse**: semi-axes 12.765 × 7.2125 (the major axis horizontal at orientation 0), centred on the
//!   position: ≈ 1.33 × and 0.751 × the square's half side, an ellipse with the area of the square's
//!   inscribed circle. 2 of the 7,832 pixels of the 32 ellipse frames differ (in one turned frame).
//! - **heart**: tip down at orientation 0, lobes up, as wide as the square (±9.6). No circle-and-triangle
//!   construction reproduced the frames (the best, two discs and two tangents, left ≈ 2 pixels per frame
//!   wrong), so the outline is a 48-vertex polygon fitted to the 96 heart frames: [`HEART_RIGHT_HALF`] lists
//!   the vertices of the right half, from the notch (0, −5.19) over the lobe (top at y ≈ −9.33, widest at
//!   x ≈ 9.6) and down the nearly straight, 45° side to the tip (0, 9.17); the left half mirrors it. The
//!   vertices lie at 7.5° steps around (0, −2). 73 of the 96 heart frames are reproduced exactly; 32 of
//!   their 20,429 pixels differ, at most 2 in a frame.
//!
//! The outlines were fitted to these frames, so the match is a measure of fit, not a held-out test
//! (`docs/results/dsprites.md`).

/// Which sprite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Square,
    Ellipse,
    Heart,
}

impl Shape {
    /// The shape of shape index 0, 1, 2 (the original's shape values 1, 2, 3).
    pub fn from_index(i: usize) -> Option<Self> {
        [Shape::Square, Shape::Ellipse, Shape::Heart]
            .get(i)
            .copied()
    }
}

/// Half the side of the square at scale 1.
pub const SQUARE_HALF_SIDE: f64 = 9.6;

/// Semi-axes (x, y) of the ellipse at scale 1.
pub const ELLIPSE_SEMI_AXES: (f64, f64) = (12.765, 7.2125);

/// The right half of the heart outline at scale 1, from the notch to the tip (both on the axis x = 0).
pub const HEART_RIGHT_HALF: [(f64, f64); 25] = [
    (0.0000, -5.1920),
    (0.6255, -6.7510),
    (1.6443, -8.1365),
    (2.8732, -8.9365),
    (4.2345, -9.3344),
    (5.5903, -9.2854),
    (6.8151, -8.8151),
    (7.9121, -8.0712),
    (8.7365, -7.0440),
    (9.3534, -5.8743),
    (9.5945, -4.5708),
    (9.5456, -3.2567),
    (9.2220, -2.0000),
    (8.6970, -0.8550),
    (8.0375, 0.1536),
    (7.3180, 1.0312),
    (6.6294, 1.8275),
    (5.8994, 2.5267),
    (5.2326, 3.2326),
    (4.4963, 3.8597),
    (3.7810, 4.5489),
    (3.0201, 5.2913),
    (2.1844, 6.1524),
    (1.2264, 7.3156),
    (0.0000, 9.1670),
];

/// Vertices of the heart polygon: the right half, then the left half mirrored back up (48 in all).
pub const HEART_VERTICES: usize = 2 * HEART_RIGHT_HALF.len() - 2;

/// The whole heart outline, closed implicitly (last vertex joins the first).
pub fn heart_polygon() -> [(f64, f64); HEART_VERTICES] {
    let n = HEART_RIGHT_HALF.len();
    let mut out = [(0.0, 0.0); HEART_VERTICES];
    out[..n].copy_from_slice(&HEART_RIGHT_HALF);
    for (k, v) in HEART_RIGHT_HALF[1..n - 1].iter().rev().enumerate() {
        out[n + k] = (-v.0, v.1);
    }
    out
}

/// The square outline at scale 1.
pub fn square_polygon() -> [(f64, f64); 4] {
    let h = SQUARE_HALF_SIDE;
    [(-h, -h), (h, -h), (h, h), (-h, h)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twice the signed area of a polygon (positive when clockwise on screen, y down).
    fn area(p: &[(f64, f64)]) -> f64 {
        let n = p.len();
        (0..n)
            .map(|i| {
                let (a, b) = (p[i], p[(i + 1) % n]);
                a.0 * b.1 - b.0 * a.1
            })
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn the_heart_is_a_symmetric_simple_outline_as_wide_as_the_square() {
        let h = heart_polygon();
        assert_eq!(h.len(), 48);
        assert_eq!(h[0], (0.0, -5.192));
        assert_eq!(h[24], (0.0, 9.167));
        for k in 1..24 {
            assert_eq!(h[48 - k], (-h[k].0, h[k].1));
        }
        let width = h.iter().map(|v| v.0).fold(f64::MIN, f64::max);
        assert!((width - SQUARE_HALF_SIDE).abs() < 0.01, "{width}");
        // Vertices go round (0, −2) at 7.5° steps, so the outline never crosses itself.
        for (k, v) in HEART_RIGHT_HALF.iter().enumerate() {
            let angle = v.0.atan2(-2.0 - v.1).to_degrees();
            assert!(
                (angle - 7.5 * k as f64).abs() < 0.01,
                "vertex {k} at {angle}°"
            );
        }
        let a = area(&h);
        assert!((220.0..232.0).contains(&a), "heart area {a}");
        assert!((area(&square_polygon()) - 19.2 * 19.2).abs() < 1e-9);
        assert_eq!(Shape::from_index(2), Some(Shape::Heart));
        assert_eq!(Shape::from_index(3), None);
    }
}
