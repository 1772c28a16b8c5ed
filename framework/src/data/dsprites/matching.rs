//! Finds the grid scene whose render best matches a binary 64 × 64 frame (intersection over union), for
//! checking the renderer against original frames whose factors are unknown.
//!
//! Pruned search: a scale is tried when its render at orientation 0 has 0.7–1.45 × the frame's pixel count;
//! for each such (shape, scale) and each of the 40 orientations the sprite's centroid offset from its
//! position is measured on one render, the frame's centroid minus that offset gives the position, and the
//! 5 × 5 position indices around it are rendered and scored. About 5,000 renders a frame.
//! [`best_match_exhaustive`] scores all 737,280 scenes instead, to check the pruning.

use super::grid::{Scene, N_SCENES, SIZES};
use super::render::{position_to_pixels, render_scene, Bitmap, POSITION_OFFSET, POSITION_RANGE};
use rayon::prelude::*;

/// The best scene found and its IoU with the frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub scene: Scene,
    pub iou: f64,
}

/// Position index nearest to image coordinate `c`.
fn nearest_index(c: f64) -> i64 {
    ((c - POSITION_OFFSET) / POSITION_RANGE * (SIZES[3] - 1) as f64).round() as i64
}

/// The best-matching scene for `frame` (ties keep the first found: lower shape, scale, orientation, posX, posY).
pub fn best_match(frame: &Bitmap) -> Match {
    let mut best = Match {
        scene: Scene::new([0; 5]).expect("scene 0"),
        iou: -1.0,
    };
    let (Some((fx, fy)), n) = (frame.centroid(), frame.count() as f64) else {
        best.iou = frame.iou(&render_scene(&best.scene));
        return best;
    };
    let probe = 15; // posX = posY = 15/31: the offset is measured away from the borders
    for shape in 0..SIZES[0] {
        for scale in 0..SIZES[1] {
            let area = render_scene(&Scene::new([shape, scale, 0, probe, probe]).expect("in range"))
                .count() as f64;
            if !(0.7 * n..=1.45 * n).contains(&area) {
                continue;
            }
            for orientation in 0..SIZES[2] {
                let s = Scene::new([shape, scale, orientation, probe, probe]).expect("in range");
                let Some((rx, ry)) = render_scene(&s).centroid() else {
                    continue;
                };
                let at = position_to_pixels(probe as f64 / 31.0);
                let (ix, iy) = (nearest_index(fx - (rx - at)), nearest_index(fy - (ry - at)));
                for px in ix - 2..=ix + 2 {
                    for py in iy - 2..=iy + 2 {
                        if !(0..SIZES[3] as i64).contains(&px)
                            || !(0..SIZES[4] as i64).contains(&py)
                        {
                            continue;
                        }
                        let s = Scene::new([shape, scale, orientation, px as usize, py as usize])
                            .expect("in range");
                        let iou = frame.iou(&render_scene(&s));
                        if iou > best.iou {
                            best = Match { scene: s, iou };
                        }
                    }
                }
            }
        }
    }
    if best.iou < 0.0 {
        best.iou = frame.iou(&render_scene(&best.scene));
    }
    best
}

/// The best-matching scene for `frame` over the whole grid (ties keep the lowest scene index, as
/// [`best_match`] does): every scene rendered, in parallel, about a second a frame.
pub fn best_match_exhaustive(frame: &Bitmap) -> Match {
    (0..N_SCENES)
        .into_par_iter()
        .map(|i| {
            let scene = Scene::from_index(i).expect("in range");
            Match {
                scene,
                iou: frame.iou(&render_scene(&scene)),
            }
        })
        .reduce_with(|a, b| {
            if b.iou > a.iou || (b.iou == a.iou && b.scene < a.scene) {
                b
            } else {
                a
            }
        })
        .expect("the grid is not empty")
}

/// The distribution of best-match IoUs over a set of frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub frames: usize,
    pub min: f64,
    /// Quartiles (numpy's default linear interpolation).
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
    pub mean: f64,
    /// Frames with best IoU ≥ 0.95, ≥ 0.9, ≥ 0.8, < 0.8.
    pub bands: [usize; 4],
    /// Frames whose best match is a square, an ellipse, a heart.
    pub per_shape: [usize; 3],
}

/// `q`-quantile of ascending `sorted` values, interpolated linearly as `np.quantile` does.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// Summarises `matches` (at least one).
pub fn summarize(matches: &[Match]) -> Summary {
    assert!(!matches.is_empty(), "no matches to summarise");
    let mut ious: Vec<f64> = matches.iter().map(|m| m.iou).collect();
    ious.sort_unstable_by(f64::total_cmp);
    let mut bands = [0; 4];
    let mut per_shape = [0; 3];
    for m in matches {
        let band = [0.95, 0.9, 0.8]
            .iter()
            .position(|&t| m.iou >= t)
            .unwrap_or(3);
        bands[band] += 1;
        per_shape[m.scene.shape as usize] += 1;
    }
    Summary {
        frames: matches.len(),
        min: ious[0],
        q1: quantile(&ious, 0.25),
        median: quantile(&ious, 0.5),
        q3: quantile(&ious, 0.75),
        max: ious[ious.len() - 1],
        mean: ious.iter().sum::<f64>() / ious.len() as f64,
        bands,
        per_shape,
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} frames: best IoU min {:.4}, q1 {:.4}, median {:.4}, q3 {:.4}, max {:.4}, mean {:.4}",
            self.frames, self.min, self.q1, self.median, self.q3, self.max, self.mean
        )?;
        let [a, b, c, d] = self.bands;
        writeln!(
            f,
            "IoU ≥ 0.95: {a}, [0.9, 0.95): {b}, [0.8, 0.9): {c}, < 0.8: {d}"
        )?;
        write!(
            f,
            "best match: {} squares, {} ellipses, {} hearts",
            self.per_shape[0], self.per_shape[1], self.per_shape[2]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_are_found_again() {
        for idx in [0usize, 77_777, 300_001, 512_345, 737_279] {
            let s = Scene::from_index(idx).unwrap();
            let m = best_match(&render_scene(&s));
            assert_eq!(m.iou, 1.0, "{s:?} → {m:?}");
            assert_eq!(render_scene(&m.scene), render_scene(&s));
        }
        let empty = best_match(&Bitmap::default());
        assert_eq!(empty.iou, 0.0);
    }

    /// Seven original frames shipped with the repository (`tests/data/dsprites/`): hearts at scale 0.8, turned
    /// and at the far corner, ellipses small and turned, squares turned and at scale 0.8. Each frame's best
    /// match is the frame's shape with IoU ≥ 0.98 (the lowest, the scale-0.8 heart, is 0.986).
    #[test]
    fn shipped_original_frames_are_matched_by_renders() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/dsprites/original_frames_7.npz");
        let frames = super::super::npz::read_frames(&path).unwrap();
        assert_eq!(frames.index, [8, 30, 132, 202, 248, 296, 316]);
        let shapes = [2, 2, 2, 1, 1, 0, 0];
        let matches: Vec<Match> = frames.images.iter().map(best_match).collect();
        for ((m, &shape), i) in matches.iter().zip(&shapes).zip(&frames.index) {
            assert_eq!(m.scene.shape, shape, "frame {i}: {m:?}");
            assert!(m.iou >= 0.98, "frame {i}: {m:?}");
        }
        // Unturned frames are matched at the scale and position of the animation step they come from.
        assert_eq!(matches[0].scene.indices(), [2, 3, 0, 0, 0]);
        assert_eq!(matches[2].scene.indices(), [2, 5, 0, 31, 21]);
        assert_eq!(matches[3].scene.indices(), [1, 1, 0, 0, 0]);
        assert_eq!(matches[3].iou, 1.0);
        assert_eq!(matches[6].scene.indices(), [0, 3, 0, 0, 0]);
        assert_eq!(matches[6].iou, 1.0);
        let s = summarize(&matches);
        assert_eq!(
            (s.frames, s.per_shape, s.bands),
            (7, [2, 2, 3], [7, 0, 0, 0])
        );
        assert!(s.min >= 0.98 && s.min <= s.q1 && s.q1 <= s.median && s.median <= s.q3);
    }

    #[test]
    fn summaries_interpolate_quantiles_as_numpy() {
        let scene = Scene::new([1, 0, 0, 0, 0]).unwrap();
        let m = |iou| Match { scene, iou };
        let s = summarize(&[m(0.5), m(1.0), m(0.9), m(0.85)]);
        assert_eq!((s.min, s.max), (0.5, 1.0));
        assert!(
            (s.median - 0.875).abs() < 1e-12 && (s.q1 - 0.7625).abs() < 1e-12,
            "{s:?}"
        );
        assert!((s.q3 - 0.925).abs() < 1e-12, "{s:?}");
        assert_eq!((s.bands, s.per_shape), ([1, 1, 1, 1], [0, 4, 0]));
        assert!(s.to_string().contains("median 0.8750"), "{s}");
    }

    /// The full check against original frames: `CARVE_DSPRITES_FRAMES=<frames .npz> cargo test -p carve --lib
    /// dsprites::matching -- --ignored --nocapture` prints every frame's best match and the summary.
    #[test]
    #[ignore = "needs original frames: set CARVE_DSPRITES_FRAMES to an .npz of them"]
    fn original_frames_match_renders() {
        let path = std::env::var_os("CARVE_DSPRITES_FRAMES").expect(
            "set CARVE_DSPRITES_FRAMES to an .npz with an `images` array of original frames",
        );
        let frames = super::super::npz::read_frames(std::path::Path::new(&path)).unwrap();
        let matches: Vec<Match> = frames.images.iter().map(best_match).collect();
        for ((i, m), f) in frames.index.iter().zip(&matches).zip(&frames.images) {
            let differ: u32 = (0..64)
                .map(|y| (f.0[y] ^ render_scene(&m.scene).0[y]).count_ones())
                .sum();
            println!(
                "frame {i:3}: {:3} pixels, best {:?} (scene {}) IoU {:.4}, {differ} pixels differ",
                f.count(),
                m.scene.indices(),
                m.scene.index(),
                m.iou
            );
        }
        println!("{}", summarize(&matches));
        // The pruned search misses nothing: where it found no exact match, neither does the whole grid.
        for (m, f) in matches.iter().zip(&frames.images) {
            if m.iou < 1.0 {
                assert_eq!(best_match_exhaustive(f).iou, m.iou, "{m:?}");
            }
        }
        let inexact = matches.iter().filter(|m| m.iou < 1.0).count();
        println!(
            "{inexact} inexact frames: the exhaustive search over all scenes finds the same IoU"
        );
    }
}
