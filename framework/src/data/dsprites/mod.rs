//! dSprites (Matthey et al. 2017, deepmind/dsprites-dataset) as a simulator: 3 shapes (square, ellipse, heart) ×
//! 6 scales in [0.5, 1] × 40 orientations in [0, 2π] (`np.linspace(0, 2π, 40)`: the first and last are the same
//! angle, as in the original) × 32 posX × 32 posY in [0, 1]; binary 64 × 64 images. The 737,280 scenes are
//! indexed in the original's order ([`grid`]) and rendered on demand, about a microsecond each ([`render`],
//! geometry measured on original frames: [`shapes`]); no image is held in memory. With `path` set to the
//! original `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`, images are looked up in it instead ([`npz`]).
//!
//! **Factors** (columns of `factors`) are the grid indices `shape` (0 square, 1 ellipse, 2 heart), `scale`
//! (0..6), `orientation` (0..40), `posX`, `posY` (0..32), as f32 integers: the factor sampler of the
//! β-VAE and FactorVAE scores then draws uniformly over the grid, as disentanglement_lib does, and `render`
//! takes the same indices (anything else is an error naming the factor). **Labels** are the original's
//! `latents_values`: `shape_value` (1, 2, 3), `scale_value`, `orientation_value` (radians), `posX_value`,
//! `posY_value`. The true graph has no edges (every combination occurs once: the factors are independent).
//!
//! **Rows**: the grid (or the file's scenes), narrowed by `fix` (factor name → index), then `n_train` +
//! `n_test` scenes drawn with the seed ([`subset`]); by default all of them, a tenth as test. Rows are in
//! scene order and export as `<scene index>.png`.

pub mod grid;
pub mod matching;
pub mod npz;
pub mod render;
pub mod shapes;
pub mod subset;

pub use grid::{Scene, FACTOR_NAMES, N_SCENES, SHAPE_NAMES, SIZES};
pub use matching::{best_match, Match};
pub use render::{render_scene, render_sprite, Bitmap};
pub use shapes::Shape;

use super::{CausalGraph, DataSpec, Dataset, DatasetConfig, Split};
use crate::error::{Error, Result};
use rayon::prelude::*;
use render::PIXELS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Names of the labels: the latent values of the five factors.
pub const LABEL_NAMES: [&str; 5] = [
    "shape_value",
    "scale_value",
    "orientation_value",
    "posX_value",
    "posY_value",
];

/// Config: `{"Dsprites": ()}` (every scene, rendered), `{"Dsprites": (n_train: Some(100000), n_test:
/// Some(10000))}`, `{"Dsprites": (fix: {"posX": 16, "posY": 16})}` (one position: 720 scenes), or
/// `{"Dsprites": (path: Some("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"))}` (look images up in the
/// original file).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dsprites {
    /// The original `.npz` (or a file with its layout); rendered when absent.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Factors held at one index, by name (`shape`, `scale`, `orientation`, `posX`, `posY`).
    #[serde(default)]
    pub fix: BTreeMap<String, usize>,
    /// Training rows drawn from the scenes; default all those not drawn for test.
    #[serde(default)]
    pub n_train: Option<usize>,
    /// Test rows drawn from the scenes; default a tenth of them.
    #[serde(default)]
    pub n_test: Option<usize>,
}

impl Dsprites {
    /// Builds the dataset (the seed draws the rows).
    pub fn load(&self, seed: u64) -> Result<DspritesData> {
        let fixed = subset::parse_fix(&self.fix)?;
        let archive = match &self.path {
            Some(p) => Some(npz::Archive::open(p)?),
            None => None,
        };
        let mut candidates = grid::matching(&fixed);
        let mut what = if self.fix.is_empty() {
            "the grid".to_string()
        } else {
            format!("the grid with fix {:?}", self.fix)
        };
        if let Some(a) = &archive {
            let held = a.scenes();
            candidates.retain(|s| held.binary_search(s).is_ok());
            what = format!(
                "{} ({} scenes{})",
                a.path().display(),
                a.len(),
                if self.fix.is_empty() {
                    ""
                } else {
                    ", with fix"
                }
            );
        }
        let rows = subset::choose(&candidates, self.n_train, self.n_test, seed, &what)?;
        let names: Vec<String> = FACTOR_NAMES.iter().map(|s| s.to_string()).collect();
        let spec = DataSpec {
            obs_shape: vec![1, render::IMAGE_SIZE, render::IMAGE_SIZE],
            factor_names: names.clone(),
            label_names: LABEL_NAMES.iter().map(|s| s.to_string()).collect(),
            graph: Some(CausalGraph::from_edges(names, &[])),
            ..Default::default()
        };
        Ok(DspritesData {
            spec,
            all: (0..rows.scenes.len()).collect(),
            scenes: rows.scenes,
            train: rows.train,
            test: rows.test,
            archive,
        })
    }
}

#[typetag::serde(name = "Dsprites")]
impl DatasetConfig for Dsprites {
    fn build(&self, seed: u64) -> Result<Arc<dyn Dataset>> {
        Ok(Arc::new(self.load(seed)?))
    }
}
crate::register_component!(
    Dataset,
    "Dsprites",
    "dSprites (Matthey 2017): 737,280 binary 64×64 sprites rendered on demand, 5 independent factors (shape, scale, orientation, posX, posY)"
);

/// The dSprites rows: scene indices, rendered (or looked up) when observations are asked for.
pub struct DspritesData {
    spec: DataSpec,
    /// Scene index of each row, ascending.
    scenes: Vec<u32>,
    all: Vec<usize>,
    train: Vec<usize>,
    test: Vec<usize>,
    archive: Option<npz::Archive>,
}

impl DspritesData {
    /// The scene of row `row`.
    pub fn scene(&self, row: usize) -> Scene {
        Scene::from_index(self.scenes[row] as usize).expect("rows hold grid scenes")
    }

    /// Whether images come from a file rather than the renderer.
    pub fn is_lookup(&self) -> bool {
        self.archive.is_some()
    }

    /// The image of `scene`: rendered, or looked up (an error when the file lacks it).
    pub fn image(&self, scene: &Scene) -> Result<Bitmap> {
        match &self.archive {
            None => Ok(render_scene(scene)),
            Some(a) => a.get(scene).copied().ok_or_else(|| {
                Error::Data(format!(
                    "Dsprites: scene {} ({:?}) is not in {}",
                    scene.index(),
                    scene.indices(),
                    a.path().display()
                ))
            }),
        }
    }

    fn write(&self, scenes: &[Scene], out: &mut Vec<f32>) -> Result<()> {
        let images: Vec<Bitmap> = scenes
            .iter()
            .map(|s| self.image(s))
            .collect::<Result<_>>()?;
        let start = out.len();
        out.resize(start + images.len() * PIXELS, 0.0);
        out[start..]
            .par_chunks_mut(PIXELS)
            .zip(images.par_iter())
            .for_each(|(dst, b)| b.write_f32(dst));
        Ok(())
    }
}

impl Dataset for DspritesData {
    fn spec(&self) -> &DataSpec {
        &self.spec
    }

    fn len(&self) -> usize {
        self.scenes.len()
    }

    fn split(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
            Split::All => &self.all,
        }
    }

    fn fill_observations(&self, rows: &[usize], out: &mut Vec<f32>) {
        let scenes: Vec<Scene> = rows.iter().map(|&r| self.scene(r)).collect();
        self.write(&scenes, out)
            .expect("every row's scene has an image");
    }

    fn factors(&self, rows: &[usize]) -> Option<Vec<f32>> {
        Some(rows.iter().flat_map(|&r| self.scene(r).factors()).collect())
    }

    fn labels(&self, rows: &[usize]) -> Option<Vec<f32>> {
        Some(
            rows.iter()
                .flat_map(|&r| self.scene(r).values().map(|v| v as f32))
                .collect(),
        )
    }

    /// Factor rows (`n × 5` indices, as `factors` gives them) → `n × 4096` pixels.
    fn render(&self, factors: &[f32]) -> Result<Vec<f32>> {
        if !factors.len().is_multiple_of(5) {
            return Err(Error::Shape {
                context: "Dsprites render factors".into(),
                expected: "n × 5 values (shape, scale, orientation, posX, posY indices)".into(),
                got: format!("{} values", factors.len()),
            });
        }
        let scenes: Vec<Scene> = factors
            .chunks_exact(5)
            .enumerate()
            .map(|(r, f)| Scene::from_factors(f).map_err(|e| Error::Data(format!("row {r}: {e}"))))
            .collect::<Result<_>>()?;
        let mut out = Vec::new();
        self.write(&scenes, &mut out)?;
        Ok(out)
    }

    fn can_render(&self) -> bool {
        true
    }

    fn file_name(&self, row: usize) -> String {
        format!("{:06}.png", self.scenes[row])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_dataset_is_the_whole_grid_without_images_in_memory() {
        let d = Dsprites::default().load(0).unwrap();
        assert_eq!(d.len(), N_SCENES);
        assert_eq!(d.split(Split::Test).len(), N_SCENES / 10);
        assert_eq!(d.split(Split::Train).len(), N_SCENES - N_SCENES / 10);
        let spec = d.spec();
        assert_eq!(spec.obs_shape, [1, 64, 64]);
        assert_eq!(spec.factor_names, FACTOR_NAMES);
        assert_eq!(spec.label_names, LABEL_NAMES);
        assert_eq!(spec.graph.as_ref().unwrap().parents(0).count(), 0);
        let row = 500_000;
        assert_eq!(d.file_name(row), "500000.png");
        let f = d.factors(&[row]).unwrap();
        assert_eq!(f, Scene::from_index(row).unwrap().factors());
        let mut obs = Vec::new();
        d.fill_observations(&[row, 3], &mut obs);
        assert_eq!(obs.len(), 2 * 4096);
        assert_eq!(d.render(&f).unwrap(), obs[..4096]);
        let labels = d.labels(&[row]).unwrap();
        assert_eq!(labels[0], 3.0); // a heart
        assert!(d.can_render() && !d.can_simulate() && !d.is_lookup());
    }

    #[test]
    fn render_errors_name_the_row_and_factor() {
        let d = Dsprites {
            fix: BTreeMap::from([("shape".into(), 0)]),
            ..Default::default()
        }
        .load(0)
        .unwrap();
        let e = d
            .render(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1") && e.contains("`scale` is 7"), "{e}");
        let e = d.render(&[0.0; 4]).unwrap_err().to_string();
        assert!(e.contains("n × 5"), "{e}");
        // Rendering is not limited to the rows: any grid scene renders.
        assert_eq!(d.render(&[2.0, 1.0, 3.0, 4.0, 5.0]).unwrap().len(), 4096);
    }

    #[test]
    fn fix_and_counts_choose_the_rows() {
        let cfg: Dsprites = ron::from_str(r#"(fix: {"posX": 16, "posY": 16})"#).unwrap();
        let d = cfg.load(0).unwrap();
        assert_eq!(d.len(), 720);
        assert_eq!(
            (d.split(Split::Train).len(), d.split(Split::Test).len()),
            (648, 72)
        );
        let f = d.factors(d.split(Split::All)).unwrap();
        assert!(f.chunks(5).all(|r| r[3] == 16.0 && r[4] == 16.0));
        let cfg: Dsprites = ron::from_str("(n_train: Some(1000), n_test: Some(200))").unwrap();
        let d = cfg.load(3).unwrap();
        assert_eq!((d.len(), d.split(Split::Test).len()), (1200, 200));
        let e = Dsprites {
            n_train: Some(700),
            n_test: Some(100),
            ..cfg_fix()
        }
        .load(0)
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("700 + 100") && e.contains("720 scenes"), "{e}");
        assert!(ron::from_str::<Dsprites>("(posX: 3)").is_err());
        let e = Dsprites {
            fix: BTreeMap::from([("colour".into(), 0)]),
            ..Default::default()
        }
        .load(0)
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    fn cfg_fix() -> Dsprites {
        Dsprites {
            fix: BTreeMap::from([("posX".into(), 16), ("posY".into(), 16)]),
            ..Default::default()
        }
    }

    #[test]
    fn a_file_makes_rows_of_its_scenes_and_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.npz");
        npz::tests::write_npz(&p, &npz::tests::SCENES, |_, _, _| {});
        let d = Dsprites {
            path: Some(p.clone()),
            ..Default::default()
        }
        .load(0)
        .unwrap();
        assert!(d.is_lookup());
        assert_eq!(d.len(), 5);
        assert_eq!(d.split(Split::Test).len(), 1);
        let held = Scene::from_index(300_000).unwrap();
        assert_eq!(d.image(&held).unwrap(), render_scene(&held));
        let e = d
            .render(&[0.0, 0.0, 0.0, 0.0, 2.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("scene 2") && e.contains("part.npz"), "{e}");
        let e = Dsprites {
            path: Some(p),
            fix: BTreeMap::from([("posY".into(), 3)]),
            ..Default::default()
        }
        .load(0)
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("no scenes") && e.contains("with fix"), "{e}");
    }
}
