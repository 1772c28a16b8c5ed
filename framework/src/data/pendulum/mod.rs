//! The Pendulum dataset of CausalVAE (Yang et al. 2021), regenerated exactly: the same 7,308 scenes in the same
//! order, the same labels, file names and train/test split as `trustworthyAI/research/CausalVAE/causal_data/
//! pendulum.py`, rasterised with tiny-skia to match matplotlib's Agg output (see [`render`]).
//!
//! Scene (data coordinates, x ∈ [0, 20], y ∈ [−1, 21]), for pendulum index `i` and light index `j`:
//! θ = iπ/200, φ = jπ/200; a rod from the pivot (10, 10.5) to the bob centre (10 + 8 sin θ, 10.5 − 8 cos θ), a bob
//! of radius 1.5, a sun of radius 3 centred at (proj(φ, 10, 10.5, 20.5), 20.5), and a shadow on y = −0.5 cast from
//! the pivot and the bob's far edge (10 + 9.5 sin θ, 10.5 − 9.5 cos θ):
//! p₁ = proj(φ, pivot, −0.5), p₂ = proj(φ, tip, −0.5), mid = (p₁ + p₂)/2, len = max(3, |p₁ − p₂|).
//! `proj(φ, x₀, y₀, base)` is where the line through (x₀, y₀) with slope tan φ meets y = base.
//!
//! Factors are (i, j, len, mid) as floats; labels are the file-name integers [i, j, int(len), int(mid)] that
//! CausalVAE trains with. Causal graph: (pendulum angle, light angle) → (shadow length, shadow position).

pub mod render;

use super::array::Observations;
use super::{ArrayDataset, CausalGraph, DataSpec, Dataset, DatasetConfig};
use crate::data::Do;
use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::sync::Arc;

pub use render::{render_scene_rgba, Canvas};

/// Names of the four factors (and of the four labels), in column order.
pub const FACTOR_NAMES: [&str; 4] = [
    "pendulum_angle",
    "light_angle",
    "shadow_length",
    "shadow_position",
];
/// Pendulum index range of the original loop (`range(-40, 44)`).
pub const I_RANGE: std::ops::RangeInclusive<i32> = -40..=43;
/// Light index range of the original loop (`range(60, 148)`, skipping [`J_SKIPPED`]).
pub const J_RANGE: std::ops::RangeInclusive<i32> = 60..=147;
/// The light index the loop skips (φ = π/2: the light is vertical and tan φ is infinite).
pub const J_SKIPPED: i32 = 100;
/// Number of images: 84 × 87.
pub const N_IMAGES: usize = 7308;

pub const PIVOT: (f64, f64) = (10.0, 10.5);
pub const ROD_LENGTH: f64 = 8.0;
pub const BOB_RADIUS: f64 = 1.5;
/// Distance from the pivot to the bob's far edge, which casts the shadow's end.
pub const TIP_DISTANCE: f64 = 9.5;
pub const SUN_Y: f64 = 20.5;
pub const SUN_RADIUS: f64 = 3.0;
pub const GROUND_Y: f64 = -0.5;
/// The shadow is never drawn shorter than this.
pub const MIN_SHADOW: f64 = 3.0;

/// θ = iπ/200 (radians), with the generator's operation order.
pub fn theta_of(i: f64) -> f64 {
    i * PI / 200.0
}

/// φ = jπ/200 (radians).
pub fn phi_of(j: f64) -> f64 {
    j * PI / 200.0
}

/// x where the line through (x, y) with slope tan φ meets y = base, computed as the generator does
/// (`b = y − x tan φ; (base − b)/tan φ`).
pub fn projection(phi: f64, x: f64, y: f64, base: f64) -> f64 {
    let b = y - x * phi.tan();
    (base - b) / phi.tan()
}

/// Shadow (length, position) as the generator computes them.
pub fn shadow(theta: f64, phi: f64) -> (f64, f64) {
    let tip_x = PIVOT.0 + TIP_DISTANCE * theta.sin();
    let tip_y = PIVOT.1 - TIP_DISTANCE * theta.cos();
    let p1 = projection(phi, PIVOT.0, PIVOT.1, GROUND_Y);
    let p2 = projection(phi, tip_x, tip_y, GROUND_Y);
    let mid = (p1 + p2) / 2.0;
    let len = MIN_SHADOW.max((p1 - p2).abs());
    (len, mid)
}

/// Closed forms of [`shadow`]: len = max(3, 9.5·|sin θ + cos θ·cot φ|), mid = 10 + 4.75 sin θ − (11 − 4.75 cos θ)·cot φ.
pub fn shadow_closed_form(theta: f64, phi: f64) -> (f64, f64) {
    let cot = 1.0 / phi.tan();
    let len = MIN_SHADOW.max(TIP_DISTANCE * (theta.sin() + theta.cos() * cot).abs());
    let mid = 10.0 + 4.75 * theta.sin() - (11.0 - 4.75 * theta.cos()) * cot;
    (len, mid)
}

/// Sun centre x: proj(φ, 10, 10.5, 20.5) = 10 + 10 cot φ.
pub fn sun_x(phi: f64) -> f64 {
    projection(phi, PIVOT.0, PIVOT.1, SUN_Y)
}

/// Everything needed to draw and label one scene, in data coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct PendulumScene {
    /// Pendulum index (θ = iπ/200).
    pub i: f64,
    /// Light index (φ = jπ/200).
    pub j: f64,
    pub theta: f64,
    pub phi: f64,
    pub pivot: (f64, f64),
    pub bob: (f64, f64),
    pub bob_radius: f64,
    pub sun_x: f64,
    pub sun_y: f64,
    pub sun_radius: f64,
    pub shadow_len: f64,
    pub shadow_mid: f64,
    pub ground_y: f64,
}

impl PendulumScene {
    /// The scene for (possibly fractional) indices `i`, `j`. `j` = 100 (vertical light) has no finite projection.
    pub fn new(i: f64, j: f64) -> Self {
        let theta = theta_of(i);
        let phi = phi_of(j);
        let bob = (
            PIVOT.0 + ROD_LENGTH * theta.sin(),
            PIVOT.1 - ROD_LENGTH * theta.cos(),
        );
        let (shadow_len, shadow_mid) = shadow(theta, phi);
        Self {
            i,
            j,
            theta,
            phi,
            pivot: PIVOT,
            bob,
            bob_radius: BOB_RADIUS,
            sun_x: sun_x(phi),
            sun_y: SUN_Y,
            sun_radius: SUN_RADIUS,
            shadow_len,
            shadow_mid,
            ground_y: GROUND_Y,
        }
    }

    /// Float factors (i, j, len, mid).
    pub fn factors(&self) -> [f64; 4] {
        [self.i, self.j, self.shadow_len, self.shadow_mid]
    }

    /// The file-name labels [i, j, int(len), int(mid)] (Python's `int`: truncation toward zero).
    pub fn int_labels(&self) -> [i64; 4] {
        [
            self.i.trunc() as i64,
            self.j.trunc() as i64,
            self.shadow_len.trunc() as i64,
            self.shadow_mid.trunc() as i64,
        ]
    }

    /// `a_{i}_{j}_{int(len)}_{int(mid)}.png`.
    pub fn file_name(&self) -> String {
        let [i, j, l, m] = self.int_labels();
        format!("a_{i}_{j}_{l}_{m}.png")
    }
}

/// The generator's (i, j) pairs in loop order: i outer (−40 … 43), j inner (60 … 147 without 100).
pub fn pendulum_grid() -> Vec<(i32, i32)> {
    I_RANGE
        .flat_map(|i| J_RANGE.filter(|&j| j != J_SKIPPED).map(move |j| (i, j)))
        .collect()
}

/// Replays the generator's counter: starting at 0, an image goes to test when the counter is 4 (then the counter is
/// reset to 0), and the counter is incremented after every image. So the 5th image and every 4th after it are test.
pub fn is_test(gen_index: usize) -> bool {
    gen_index > 0 && gen_index.is_multiple_of(4)
}

/// Indices (in loop order) of the test images, by replaying the counter literally.
pub fn test_indices(n: usize) -> Vec<usize> {
    let mut count = 0;
    let mut test = Vec::new();
    for k in 0..n {
        if count == 4 {
            test.push(k);
            count = 0;
        }
        count += 1;
    }
    test
}

/// The largest image side rendered (the original is 96).
pub const MAX_SIZE: u32 = 1024;

fn validate(size: u32, channels: usize) -> Result<()> {
    if channels != 3 && channels != 4 {
        return Err(Error::Data(format!(
            "Pendulum: channels must be 3 (RGB) or 4 (RGBA, as the original PNGs), got {channels}"
        )));
    }
    if size < 16 {
        return Err(Error::Data(format!(
            "Pendulum: size (= dpi of the 1-inch figure) must be at least 16, got {size}; the original is 96"
        )));
    }
    if size > MAX_SIZE {
        return Err(Error::Data(format!(
            "Pendulum: size must be at most {MAX_SIZE} pixels, got {size}; the original is 96"
        )));
    }
    Ok(())
}

/// Renders the scene with (possibly fractional) indices `i`, `j` as channels-first bytes `channels × size × size`
/// (`channels` 4 = RGBA with alpha 255, 3 = RGB). `size` is the dpi of the 1-inch figure: 96 reproduces the
/// original PNGs; other sizes are native renders with line widths scaled by dpi.
pub fn render_pendulum(i: f32, j: f32, size: u32, channels: usize) -> Vec<u8> {
    assert!(channels == 3 || channels == 4, "channels must be 3 or 4");
    assert!(size >= 1, "size must be at least 1 pixel");
    let scene = PendulumScene::new(i as f64, j as f64);
    let rgba = render_scene_rgba(&scene, size);
    let mut out = vec![0u8; channels * (size * size) as usize];
    render::rgba_to_chw(&rgba, size, channels, &mut out);
    out
}

/// Renders one scene from its four factors (i, j, len, mid): the rod, bob and sun follow i and j, the shadow is
/// drawn with the given length and position. For factors on the generator's SCM this is the original image; for
/// others (an intervened shadow, or factors sampled independently to train a factor regressor) it draws exactly
/// the scene the factors describe.
pub fn render_scene_from_factors(f: &[f32], size: u32, channels: usize) -> Vec<u8> {
    let mut scene = PendulumScene::new(f[0] as f64, f[1] as f64);
    scene.shadow_len = f[2] as f64;
    scene.shadow_mid = f[3] as f64;
    let rgba = render_scene_rgba(&scene, size);
    let mut out = vec![0u8; channels * (size * size) as usize];
    render::rgba_to_chw(&rgba, size, channels, &mut out);
    out
}

/// Renders row-major factor vectors (`n × 4`: i, j, len, mid; see [`render_scene_from_factors`]) to
/// `n × channels·size²` floats in [0, 1].
pub fn render_factors(factors: &[f32], size: u32, channels: usize) -> Result<Vec<f32>> {
    validate(size, channels)?;
    if !factors.len().is_multiple_of(4) {
        return Err(Error::Shape {
            context: "Pendulum render factors".into(),
            expected: "n × 4 values (pendulum_angle, light_angle, shadow_length, shadow_position)"
                .into(),
            got: format!("{} values", factors.len()),
        });
    }
    if let Some(bad) = factors
        .chunks_exact(4)
        .find(|f| f.iter().any(|v| !v.is_finite()))
    {
        return Err(Error::Data(format!(
            "Pendulum render: non-finite factors {bad:?}"
        )));
    }
    let d = channels * (size * size) as usize;
    let mut out = vec![0f32; factors.len() / 4 * d];
    out.par_chunks_mut(d)
        .zip(factors.par_chunks_exact(4))
        .for_each(|(dst, f)| {
            let img = render_scene_from_factors(f, size, channels);
            for (o, &b) in dst.iter_mut().zip(&img) {
                *o = b as f32 * (1.0 / 255.0);
            }
        });
    Ok(out)
}

/// The generator's SCM under do(...): intervened factors take their values, the shadow's length and position
/// are recomputed from (i, j) unless intervened on, and nothing upstream of an intervened factor changes.
pub fn simulate_do(factors: &[f32], dos: &[Do]) -> Result<Vec<f32>> {
    if factors.len() != 4 {
        return Err(Error::Shape {
            context: "Pendulum simulate_do".into(),
            expected: "4 factors (pendulum_angle, light_angle, shadow_length, shadow_position)"
                .into(),
            got: format!("{}", factors.len()),
        });
    }
    let mut f: Vec<f64> = factors.iter().map(|&v| v as f64).collect();
    let mut fixed = [false; 4];
    for d in dos {
        if d.node >= 4 || !d.value.is_finite() {
            return Err(Error::Data(format!(
                "Pendulum simulate_do: bad intervention do({} = {}); nodes are 0..4",
                d.node, d.value
            )));
        }
        f[d.node] = d.value as f64;
        fixed[d.node] = true;
    }
    if fixed[0] || fixed[1] {
        let (len, mid) = shadow(theta_of(f[0]), phi_of(f[1]));
        if !fixed[2] {
            f[2] = len;
        }
        if !fixed[3] {
            f[3] = mid;
        }
    }
    Ok(f.into_iter().map(|v| v as f32).collect())
}

/// The dataset spec: images `[channels, size, size]`, four factors and labels, the true graph.
pub fn spec(size: u32, channels: usize) -> DataSpec {
    let names: Vec<String> = FACTOR_NAMES.iter().map(|s| s.to_string()).collect();
    DataSpec {
        obs_shape: vec![channels, size as usize, size as usize],
        factor_names: names.clone(),
        label_names: names.clone(),
        graph: Some(CausalGraph::from_edges(
            names,
            &[(0, 2), (0, 3), (1, 2), (1, 3)],
        )),
        ..Default::default()
    }
}

/// Generates all 7,308 images (in the generator's loop order) with factors, labels, file names, the original
/// train/test split and a simulator for interventions.
pub fn generate(size: u32, channels: usize) -> Result<ArrayDataset> {
    validate(size, channels)?;
    crate::data::check_dataset_bytes(
        &format!("Pendulum at size {size} with {channels} channels"),
        N_IMAGES,
        channels * (size * size) as usize,
    )?;
    let scenes: Vec<PendulumScene> = pendulum_grid()
        .into_iter()
        .map(|(i, j)| PendulumScene::new(i as f64, j as f64))
        .collect();
    let d = channels * (size * size) as usize;
    let mut obs = vec![0u8; scenes.len() * d];
    obs.par_chunks_mut(d)
        .zip(scenes.par_iter())
        .for_each(|(dst, scene)| {
            let rgba = render_scene_rgba(scene, size);
            render::rgba_to_chw(&rgba, size, channels, dst);
        });
    let factors: Vec<f32> = scenes
        .iter()
        .flat_map(|s| s.factors().map(|v| v as f32))
        .collect();
    let labels: Vec<f32> = scenes
        .iter()
        .flat_map(|s| s.int_labels().map(|v| v as f32))
        .collect();
    let names: Vec<String> = scenes.iter().map(PendulumScene::file_name).collect();
    let ds = ArrayDataset::new(
        spec(size, channels),
        Observations::U8(obs),
        Some(factors),
        Some(labels),
        test_indices(scenes.len()),
    )?
    .with_file_names(names)
    .with_renderer(move |f: &[f32]| render_factors(f, size, channels))
    .with_simulator(simulate_do);
    Ok(ds)
}

fn default_size() -> u32 {
    96
}

fn default_channels() -> usize {
    4
}

/// Config: `{"Pendulum": (size: 96, channels: 4)}`. Deterministic: the seed is unused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pendulum {
    /// Image side in pixels (= dpi of the 1-inch figure); 96 is the original.
    #[serde(default = "default_size")]
    pub size: u32,
    /// 4 = RGBA as the original PNGs (alpha is constant 255), 3 = RGB.
    #[serde(default = "default_channels")]
    pub channels: usize,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self {
            size: default_size(),
            channels: default_channels(),
        }
    }
}

#[typetag::serde(name = "Pendulum")]
impl DatasetConfig for Pendulum {
    fn build(&self, _seed: u64) -> Result<Arc<dyn Dataset>> {
        Ok(Arc::new(generate(self.size, self.channels)?))
    }
}
crate::register_component!(
    Dataset,
    "Pendulum",
    "CausalVAE pendulum simulator: 7,308 renders, 4 factors, angle & light → shadow"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;

    #[test]
    fn sizes_are_bounded_before_rendering() {
        for (size, needle) in [
            (0, "at least 16"),
            (7, "at least 16"),
            (10_000, "at most 1024"),
        ] {
            let e = generate(size, 3).err().expect("refused").to_string();
            assert!(e.contains(needle) && e.contains(&size.to_string()), "{e}");
        }
        let e = generate(1000, 4).err().expect("refused").to_string();
        assert!(
            e.contains("Pendulum at size 1000") && e.contains("GiB"),
            "{e}"
        );
    }

    fn reference_rows() -> Vec<csv::StringRecord> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/pendulum/all_labels.csv"
        );
        let mut rdr = csv::Reader::from_path(path).expect("all_labels.csv");
        let header = rdr.headers().unwrap().clone();
        assert_eq!(
            header.iter().collect::<Vec<_>>(),
            [
                "gen_index",
                "split",
                "filename",
                "i",
                "j",
                "shade",
                "mid",
                "shade_int",
                "mid_int",
                "sun_x",
                "theta_rad",
                "phi_rad"
            ]
        );
        rdr.records().map(|r| r.unwrap()).collect()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn grid_has_7308_scenes_in_loop_order() {
        let g = pendulum_grid();
        assert_eq!(g.len(), N_IMAGES);
        assert_eq!(g[0], (-40, 60));
        assert_eq!(g[1], (-40, 61));
        assert_eq!(g[40], (-40, 101)); // 100 skipped
        assert_eq!(g[87], (-39, 60));
        assert_eq!(*g.last().unwrap(), (43, 147));
        assert!(g.iter().all(|&(_, j)| j != J_SKIPPED));
    }

    #[test]
    fn split_replays_the_counter() {
        let test = test_indices(N_IMAGES);
        assert_eq!(test.len(), 1826);
        assert_eq!(N_IMAGES - test.len(), 5482);
        assert_eq!(&test[..3], &[4, 8, 12]);
        assert!((0..N_IMAGES).all(|k| is_test(k) == test.binary_search(&k).is_ok()));
    }

    #[test]
    fn labels_names_and_split_match_the_reference_csv() {
        let rows = reference_rows();
        assert_eq!(rows.len(), N_IMAGES);
        let grid = pendulum_grid();
        let f = |r: &csv::StringRecord, k: usize| r[k].parse::<f64>().unwrap();
        for (k, (r, &(i, j))) in rows.iter().zip(&grid).enumerate() {
            assert_eq!(r[0].parse::<usize>().unwrap(), k);
            let s = PendulumScene::new(i as f64, j as f64);
            assert_eq!(
                &r[1],
                if is_test(k) { "test" } else { "train" },
                "split of row {k}"
            );
            assert_eq!(&r[2], s.file_name(), "file name of row {k}");
            assert_eq!((f(r, 3), f(r, 4)), (i as f64, j as f64));
            for (col, ours) in [
                (5, s.shadow_len),
                (6, s.shadow_mid),
                (9, s.sun_x),
                (10, s.theta),
                (11, s.phi),
            ] {
                assert!(
                    close(f(r, col), ours, 1e-9),
                    "row {k} column {col}: {} vs {ours}",
                    &r[col]
                );
            }
            let ints = s.int_labels();
            assert_eq!(ints[2], r[7].parse::<i64>().unwrap(), "int(len) of row {k}");
            assert_eq!(ints[3], r[8].parse::<i64>().unwrap(), "int(mid) of row {k}");
        }
    }

    #[test]
    fn closed_forms_equal_the_loop_formulas_and_ranges_hold() {
        let (mut lmin, mut lmax, mut mmin, mut mmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (i, j) in pendulum_grid() {
            let (theta, phi) = (theta_of(i as f64), phi_of(j as f64));
            let (len, mid) = shadow(theta, phi);
            let (len_c, mid_c) = shadow_closed_form(theta, phi);
            assert!(
                close(len, len_c, 1e-9) && close(mid, mid_c, 1e-9),
                "({i}, {j})"
            );
            assert!(close(sun_x(phi), 10.0 + 10.0 / phi.tan(), 1e-9));
            lmin = lmin.min(len);
            lmax = lmax.max(len);
            mmin = mmin.min(mid);
            mmax = mmax.max(mid);
        }
        assert_eq!(lmin, 3.0);
        assert!((lmax - 12.577).abs() < 1e-3, "max len {lmax}");
        assert!((mmin - 2.008).abs() < 1e-3, "min mid {mmin}");
        assert!((mmax - 19.606).abs() < 1e-3, "max mid {mmax}");
    }

    #[test]
    fn dataset_has_spec_split_labels_and_renderer() {
        let ds = generate(32, 3).unwrap();
        assert_eq!(ds.len(), N_IMAGES);
        assert_eq!(ds.split(Split::Train).len(), 5482);
        assert_eq!(ds.split(Split::Test).len(), 1826);
        let spec = ds.spec();
        assert_eq!(spec.obs_shape, vec![3, 32, 32]);
        assert_eq!(spec.factor_names, FACTOR_NAMES);
        let g = spec.graph.as_ref().unwrap();
        assert_eq!(g.parents(2).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(g.parents(3).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(g.parents(0).count() + g.parents(1).count(), 0);
        assert_eq!(ds.file_name(4), "a_-40_64_3_2.png");
        let row = 1000;
        let labels = ds.labels(&[row]).unwrap();
        let factors = ds.factors(&[row]).unwrap();
        let (i, j) = pendulum_grid()[row];
        assert_eq!(&labels[..2], &[i as f32, j as f32]);
        assert_eq!(labels[2], factors[2].trunc());
        assert_eq!(labels[3], factors[3].trunc());
        // The simulator reproduces the stored image from the factors.
        let mut stored = Vec::new();
        ds.fill_observations(&[row], &mut stored);
        let rendered = ds.render(&factors).unwrap();
        assert_eq!(stored, rendered);
        assert!(ds.render(&factors[..3]).is_err());
    }

    #[test]
    fn render_draws_the_given_shadow_and_simulate_do_follows_the_scm() {
        let size = 64;
        let (i, j) = (10.0f32, 80.0f32);
        let scene = PendulumScene::new(i as f64, j as f64);
        let f = [i, j, scene.shadow_len as f32, scene.shadow_mid as f32];
        // An off-SCM shadow (as do(shadow_length) asks for) changes only the ground rows.
        let longer = [f[0], f[1], f[2] + 4.0, f[3]];
        let a = render_factors(&f, size, 3).unwrap();
        let b = render_factors(&longer, size, 3).unwrap();
        let ground_row = Canvas::new(size).to_px(0.0, GROUND_Y).1 as usize;
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            let row = (k / size as usize) % size as usize;
            if row.abs_diff(ground_row) > 3 {
                assert_eq!(x, y, "pixel {k} (row {row}) changed");
            }
        }
        assert!(a.iter().zip(&b).any(|(x, y)| x != y));
        // do(pendulum) recomputes the shadow; do(shadow) leaves its causes alone.
        let moved = simulate_do(
            &f,
            &[Do {
                node: 0,
                value: -20.0,
            }],
        )
        .unwrap();
        let expect = PendulumScene::new(-20.0, j as f64);
        assert_eq!(moved[1], j);
        assert!((moved[2] as f64 - expect.shadow_len).abs() < 1e-5);
        assert!((moved[3] as f64 - expect.shadow_mid).abs() < 1e-5);
        let cut = simulate_do(
            &f,
            &[Do {
                node: 3,
                value: 5.0,
            }],
        )
        .unwrap();
        assert_eq!(cut, vec![f[0], f[1], f[2], 5.0]);
        assert!(simulate_do(&f[..3], &[]).is_err());
        assert!(simulate_do(
            &f,
            &[Do {
                node: 1,
                value: f32::NAN
            }]
        )
        .is_err());
    }

    #[test]
    fn renders_are_opaque_white_backgrounds_with_the_scene_colours() {
        let img = render_pendulum(0.0, 80.0, 96, 4);
        let hw = 96 * 96;
        assert!(img[3 * hw..].iter().all(|&a| a == 255));
        let px = |x: usize, y: usize| {
            [
                img[y * 96 + x],
                img[hw + y * 96 + x],
                img[2 * hw + y * 96 + x],
            ]
        };
        assert_eq!(px(2, 2), render::WHITE);
        // Bob centre at data (10, 2.5) → pixel (49.2, 73.7).
        assert_eq!(px(49, 73), render::FIREBRICK);
        // Shadow rows 82..85 (snapped, clipped at row 85 by the axes box).
        assert_eq!(px(40, 83), render::BLACK);
        assert_eq!(px(40, 85), render::WHITE);
        let rgb = render_pendulum(0.0, 80.0, 96, 3);
        assert_eq!(&rgb[..], &img[..3 * hw]);
        let small = render_pendulum(10.5, 90.25, 64, 3);
        assert_eq!(small.len(), 3 * 64 * 64);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: Pendulum = serde_json::from_str("{}").unwrap();
        assert_eq!(c, Pendulum::default());
        assert!(serde_json::from_str::<Pendulum>(r#"{"size": 64, "colour": 3}"#).is_err());
        let err = Pendulum {
            size: 64,
            channels: 1,
        }
        .build(0)
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("channels"), "{err}");
        let err = Pendulum {
            size: 8,
            channels: 3,
        }
        .build(0)
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("size"), "{err}");
    }
}
