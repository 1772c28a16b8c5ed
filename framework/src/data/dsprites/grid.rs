//! The factor grid of dSprites: 3 shapes × 6 scales × 40 orientations × 32 × 32 positions = 737,280 scenes,
//! each exactly once, indexed as the original `.npz` orders its images (`latents_classes` ravelled with sizes
//! `[1, 3, 6, 40, 32, 32]`, the leading colour factor constant, posY fastest).
//!
//! Factors are carried as grid **indices** (`shape` 0..3, `scale` 0..6, `orientation` 0..40, `posX`/`posY`
//! 0..32, stored as f32 integers) — the form disentanglement_lib samples and the factor metrics discretise.
//! The original's `latents_values` (shape 1, 2, 3; scale, orientation in radians, posX, posY) follow from
//! the indices through [`Scene::values`].

use crate::error::{Error, Result};
use std::f64::consts::PI;

/// The five factors, in column order (the original's latents without the constant colour).
pub const FACTOR_NAMES: [&str; 5] = ["shape", "scale", "orientation", "posX", "posY"];
/// The number of values of each factor.
pub const SIZES: [usize; 5] = [3, 6, 40, 32, 32];
/// The original's `latents_sizes`, with the constant colour factor first.
pub const LATENT_SIZES: [usize; 6] = [1, 3, 6, 40, 32, 32];
/// Scenes in the grid (3 · 6 · 40 · 32 · 32).
pub const N_SCENES: usize = 737_280;
/// Shape names, by shape index.
pub const SHAPE_NAMES: [&str; 3] = ["square", "ellipse", "heart"];

/// `np.linspace(lo, hi, n)[i]` as numpy computes it: `i · ((hi − lo)/(n − 1)) + lo`, the last value exactly `hi`.
pub fn linspace(lo: f64, hi: f64, n: usize, i: usize) -> f64 {
    if n < 2 || i == 0 {
        lo
    } else if i == n - 1 {
        hi
    } else {
        i as f64 * ((hi - lo) / (n - 1) as f64) + lo
    }
}

/// Scale of scale index `i`: 0.5, 0.6, …, 1.0.
pub fn scale_value(i: usize) -> f64 {
    linspace(0.5, 1.0, SIZES[1], i)
}

/// Orientation (radians) of orientation index `i`: `np.linspace(0, 2π, 40)`, so index 39 is 2π, the same
/// angle as index 0 (as in the original).
pub fn orientation_value(i: usize) -> f64 {
    linspace(0.0, 2.0 * PI, SIZES[2], i)
}

/// posX or posY of position index `i`: `np.linspace(0, 1, 32)`.
pub fn position_value(i: usize) -> f64 {
    linspace(0.0, 1.0, SIZES[3], i)
}

/// One scene of the grid, by factor indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scene {
    /// 0 square, 1 ellipse, 2 heart.
    pub shape: u8,
    pub scale: u8,
    pub orientation: u8,
    pub pos_x: u8,
    pub pos_y: u8,
}

impl Scene {
    /// The scene with these factor indices (shape, scale, orientation, posX, posY); an error names the first
    /// index out of range.
    pub fn new(indices: [usize; 5]) -> Result<Self> {
        for (j, (&v, &n)) in indices.iter().zip(&SIZES).enumerate() {
            if v >= n {
                return Err(Error::Data(format!(
                    "Dsprites: {} index {v} is out of range 0..={}",
                    FACTOR_NAMES[j],
                    n - 1
                )));
            }
        }
        Ok(Self {
            shape: indices[0] as u8,
            scale: indices[1] as u8,
            orientation: indices[2] as u8,
            pos_x: indices[3] as u8,
            pos_y: indices[4] as u8,
        })
    }

    /// The scene at `index` of the original order (0..737,280).
    pub fn from_index(index: usize) -> Result<Self> {
        if index >= N_SCENES {
            return Err(Error::Data(format!(
                "Dsprites: scene index {index} is out of range 0..{N_SCENES}"
            )));
        }
        let mut rest = index;
        let mut out = [0usize; 5];
        for j in (0..5).rev() {
            out[j] = rest % SIZES[j];
            rest /= SIZES[j];
        }
        Self::new(out)
    }

    /// The scene of one factor row as the dataset carries it (five f32 indices). Values that are not whole
    /// numbers in range are an error naming the factor: factors are grid indices, not latent values.
    pub fn from_factors(f: &[f32]) -> Result<Self> {
        if f.len() != 5 {
            return Err(Error::Shape {
                context: "Dsprites factors".into(),
                expected: "5 values (shape, scale, orientation, posX, posY indices)".into(),
                got: format!("{} values", f.len()),
            });
        }
        let mut out = [0usize; 5];
        for (j, &v) in f.iter().enumerate() {
            let n = SIZES[j];
            if !(v.is_finite() && v.fract() == 0.0 && v >= 0.0 && (v as usize) < n) {
                return Err(Error::Data(format!(
                    "Dsprites: factor `{}` is {v}; expected a whole index 0..={} (factors are grid indices: \
                     the latent value is linspace over the index)",
                    FACTOR_NAMES[j],
                    n - 1
                )));
            }
            out[j] = v as usize;
        }
        Self::new(out)
    }

    /// The indices (shape, scale, orientation, posX, posY).
    pub fn indices(&self) -> [usize; 5] {
        [
            self.shape as usize,
            self.scale as usize,
            self.orientation as usize,
            self.pos_x as usize,
            self.pos_y as usize,
        ]
    }

    /// The index of this scene in the original order (posY fastest, shape slowest).
    pub fn index(&self) -> usize {
        self.indices()
            .iter()
            .zip(&SIZES)
            .fold(0, |acc, (&v, &n)| acc * n + v)
    }

    /// The indices as the dataset's factor row.
    pub fn factors(&self) -> [f32; 5] {
        self.indices().map(|v| v as f32)
    }

    /// The original's `latents_values` without colour: shape 1, 2 or 3 (square, ellipse, heart), scale,
    /// orientation (radians), posX, posY.
    pub fn values(&self) -> [f64; 5] {
        [
            self.shape as f64 + 1.0,
            scale_value(self.scale as usize),
            orientation_value(self.orientation as usize),
            position_value(self.pos_x as usize),
            position_value(self.pos_y as usize),
        ]
    }
}

/// Every scene index whose factors equal `fixed` where it is `Some`, in the original order.
pub fn matching(fixed: &[Option<usize>; 5]) -> Vec<u32> {
    let ranges: Vec<std::ops::Range<usize>> = fixed
        .iter()
        .zip(&SIZES)
        .map(|(f, &n)| match f {
            Some(v) => *v..*v + 1,
            None => 0..n,
        })
        .collect();
    let mut out = Vec::new();
    for a in ranges[0].clone() {
        for b in ranges[1].clone() {
            for c in ranges[2].clone() {
                for d in ranges[3].clone() {
                    for e in ranges[4].clone() {
                        out.push(
                            Scene::new([a, b, c, d, e]).map_or(u32::MAX, |s| s.index() as u32),
                        );
                    }
                }
            }
        }
    }
    out.retain(|&s| s != u32::MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_has_737280_scenes_in_the_original_order() {
        assert_eq!(SIZES.iter().product::<usize>(), N_SCENES);
        assert_eq!(LATENT_SIZES.iter().product::<usize>(), N_SCENES);
        assert_eq!(Scene::from_index(0).unwrap().indices(), [0; 5]);
        assert_eq!(Scene::from_index(1).unwrap().indices(), [0, 0, 0, 0, 1]);
        assert_eq!(Scene::from_index(32).unwrap().indices(), [0, 0, 0, 1, 0]);
        assert_eq!(Scene::from_index(1024).unwrap().indices(), [0, 0, 1, 0, 0]);
        assert_eq!(
            Scene::from_index(40 * 1024).unwrap().indices(),
            [0, 1, 0, 0, 0]
        );
        assert_eq!(
            Scene::from_index(N_SCENES - 1).unwrap().indices(),
            [2, 5, 39, 31, 31]
        );
        assert_eq!(Scene::from_index(245_760).unwrap().shape, 1);
        // Round trip over the whole grid, and the order is the ravel of the indices.
        let mut prev = None;
        for i in 0..N_SCENES {
            let s = Scene::from_index(i).unwrap();
            assert_eq!(s.index(), i);
            assert_eq!(Scene::from_factors(&s.factors()).unwrap(), s);
            if let Some(p) = prev {
                assert!(p < s, "{p:?} then {s:?}");
            }
            prev = Some(s);
        }
    }

    #[test]
    fn values_are_numpy_linspaces() {
        let scales: Vec<f64> = (0..6).map(scale_value).collect();
        assert_eq!(scales, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        assert_eq!(orientation_value(0), 0.0);
        assert_eq!(orientation_value(39), 2.0 * PI);
        assert!((orientation_value(1) - 2.0 * PI / 39.0).abs() < 1e-15);
        assert_eq!(position_value(0), 0.0);
        assert_eq!(position_value(31), 1.0);
        assert!((position_value(16) - 16.0 / 31.0).abs() < 1e-15);
        let s = Scene::new([2, 5, 39, 31, 0]).unwrap();
        assert_eq!(s.values(), [3.0, 1.0, 2.0 * PI, 1.0, 0.0]);
        assert_eq!(
            Scene::new([0; 5]).unwrap().values(),
            [1.0, 0.5, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn bad_factors_are_errors_naming_the_factor() {
        for (f, needle) in [
            ([3.0, 0.0, 0.0, 0.0, 0.0], "`shape` is 3"),
            ([0.0, 6.0, 0.0, 0.0, 0.0], "`scale` is 6"),
            ([0.0, 0.0, 40.0, 0.0, 0.0], "`orientation` is 40"),
            ([0.0, 0.0, 0.0, 32.0, 0.0], "`posX` is 32"),
            ([0.0, 0.0, 0.0, 0.0, -1.0], "`posY` is -1"),
            ([0.0, 0.5, 0.0, 0.0, 0.0], "`scale` is 0.5"),
            ([f32::NAN, 0.0, 0.0, 0.0, 0.0], "`shape` is NaN"),
        ] {
            let e = Scene::from_factors(&f).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("index"), "{e}");
        }
        assert!(Scene::from_factors(&[0.0; 4]).is_err());
        let e = Scene::from_index(N_SCENES).unwrap_err().to_string();
        assert!(e.contains("737280"), "{e}");
        let e = Scene::new([0, 0, 0, 0, 99]).unwrap_err().to_string();
        assert!(e.contains("posY index 99") && e.contains("0..=31"), "{e}");
    }

    #[test]
    fn matching_lists_the_fixed_subset_in_order() {
        let all = matching(&[None; 5]);
        assert_eq!(all.len(), N_SCENES);
        assert!(all.windows(2).all(|w| w[0] + 1 == w[1]));
        let centre = matching(&[None, None, None, Some(16), Some(16)]);
        assert_eq!(centre.len(), 3 * 6 * 40);
        for &s in &centre {
            let s = Scene::from_index(s as usize).unwrap();
            assert_eq!((s.pos_x, s.pos_y), (16, 16));
        }
        assert!(centre.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            matching(&[Some(1), Some(2), Some(3), Some(4), Some(5)]).len(),
            1
        );
    }
}
