//! A folder of PNG images as a dataset, so users can train on their own files or the original pendulum files.
//!
//! Layout: `DIR/train/*.png` and `DIR/test/*.png` give the split (otherwise every image in `DIR` is read and
//! every `test_every`-th file, in name order, goes to test). Labels come from `DIR/labels.csv` (columns
//! `file, split, <label names...>`, as `carve data` writes) or, failing that, from CausalVAE-style file names
//! `a_{u1}_{u2}_..._{uk}.png`. Labels double as factors.

use super::array::Observations;
use super::{ArrayDataset, DataSpec, Dataset, DatasetConfig};
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFolder {
    pub path: PathBuf,
    /// Without train/ and test/ subfolders, every n-th file goes to the test split.
    #[serde(default = "default_test_every")]
    pub test_every: usize,
}

fn default_test_every() -> usize {
    4
}

#[typetag::serde(name = "ImageFolder")]
impl DatasetConfig for ImageFolder {
    fn build(&self, _seed: u64) -> Result<Arc<dyn Dataset>> {
        Ok(Arc::new(load(&self.path, self.test_every)?))
    }
}
crate::register_component!(
    Dataset,
    "ImageFolder",
    "PNG folder with labels.csv or CausalVAE-style file names"
);

fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    Ok(files)
}

/// Numbers in a CausalVAE-style name: `a_-40_60_3_2.png` → [-40, 60, 3, 2].
fn labels_from_name(name: &str) -> Option<Vec<f32>> {
    let stem = name.strip_suffix(".png").unwrap_or(name);
    let mut parts = stem.split('_');
    parts.next()?;
    let v: Option<Vec<f32>> = parts.map(|p| p.parse::<f32>().ok()).collect();
    v.filter(|v| !v.is_empty())
}

/// Label names and the labels of each file.
type LabelTable = (Vec<String>, HashMap<String, Vec<f32>>);

fn read_labels_csv(path: &Path) -> Result<LabelTable> {
    let mut rdr = csv::Reader::from_path(path)
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    let header = rdr
        .headers()
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?
        .clone();
    if header.len() < 3 || &header[0] != "file" || &header[1] != "split" {
        return Err(Error::Data(format!(
            "{}: expected columns `file,split,<labels...>`, got `{}`",
            path.display(),
            header.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let names = header.iter().skip(2).map(String::from).collect();
    let mut map = HashMap::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        let vals = rec
            .iter()
            .skip(2)
            .map(|v| v.parse::<f32>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Data(format!("{}: row {}: {e}", path.display(), line + 2)))?;
        map.insert(rec[0].to_string(), vals);
    }
    Ok((names, map))
}

/// Reads the folder into memory.
pub fn load(dir: &Path, test_every: usize) -> Result<ArrayDataset> {
    if !dir.is_dir() {
        return Err(Error::Data(format!(
            "{}: no such image folder",
            dir.display()
        )));
    }
    let (train, test) = (dir.join("train"), dir.join("test"));
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if train.is_dir() && test.is_dir() {
        files.extend(png_files(&train)?.into_iter().map(|p| (p, false)));
        files.extend(png_files(&test)?.into_iter().map(|p| (p, true)));
    } else {
        let every = test_every.max(1);
        files.extend(
            png_files(dir)?
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, i % every == every - 1)),
        );
    }
    if files.is_empty() {
        return Err(Error::Data(format!(
            "{}: no PNG files found",
            dir.display()
        )));
    }
    let csv = dir.join("labels.csv");
    let labels_csv = if csv.exists() {
        Some(read_labels_csv(&csv)?)
    } else {
        None
    };

    let mut obs = Vec::new();
    let mut labels: Vec<f32> = Vec::new();
    let mut label_names: Vec<String> = Vec::new();
    let mut shape: Option<Vec<usize>> = None;
    let mut names = Vec::new();
    let mut test_rows = Vec::new();
    for (row, (path, is_test)) in files.iter().enumerate() {
        let img = image::open(path).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        let (c, bytes) = match img.color().channel_count() {
            1 => (1, img.to_luma8().into_raw()),
            3 => (3, img.to_rgb8().into_raw()),
            _ => (4, img.to_rgba8().into_raw()),
        };
        let s = vec![c, img.height() as usize, img.width() as usize];
        match &shape {
            None => shape = Some(s.clone()),
            Some(prev) if *prev != s => {
                return Err(Error::Shape {
                    context: format!("image {}", path.display()),
                    expected: format!("{prev:?} like the first image"),
                    got: format!("{s:?}"),
                })
            }
            _ => {}
        }
        // HWC bytes → CHW.
        let hw = s[1] * s[2];
        obs.extend(
            (0..c)
                .flat_map(|ch| (0..hw).map(move |p| (ch, p)))
                .map(|(ch, p)| bytes[p * c + ch]),
        );
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let lab = match &labels_csv {
            Some((n, map)) => {
                label_names.clone_from(n);
                map.get(&file)
                    .cloned()
                    .ok_or_else(|| Error::Data(format!("{}: no row for `{file}`", csv.display())))?
            }
            None => labels_from_name(&file).unwrap_or_default(),
        };
        if row == 0 && labels_csv.is_none() {
            label_names = (0..lab.len()).map(|i| format!("label{i}")).collect();
        }
        if lab.len() != label_names.len() {
            return Err(Error::Data(format!(
                "{file}: {} labels, expected {} like the first file",
                lab.len(),
                label_names.len()
            )));
        }
        labels.extend(lab);
        names.push(file);
        if *is_test {
            test_rows.push(row);
        }
    }
    let has_labels = !label_names.is_empty();
    let spec = DataSpec {
        obs_shape: shape.expect("at least one image"),
        factor_names: label_names.clone(),
        label_names,
        graph: None,
        ..Default::default()
    };
    let labels = has_labels.then_some(labels);
    Ok(ArrayDataset::new(
        spec,
        Observations::U8(obs),
        labels.clone(),
        labels,
        test_rows,
    )?
    .with_file_names(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_causalvae_file_names() {
        assert_eq!(
            labels_from_name("a_-40_60_3_2.png"),
            Some(vec![-40.0, 60.0, 3.0, 2.0])
        );
        assert_eq!(labels_from_name("cat.png"), None);
    }

    #[test]
    fn reads_a_split_folder_with_name_labels() {
        let dir = tempfile::tempdir().unwrap();
        for (sub, name, v) in [
            ("train", "a_1_2.png", 10u8),
            ("train", "a_3_4.png", 20),
            ("test", "a_5_6.png", 30),
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            image::RgbImage::from_pixel(4, 2, image::Rgb([v, 0, 255]))
                .save(dir.path().join(sub).join(name))
                .unwrap();
        }
        let d = load(dir.path(), 4).unwrap();
        assert_eq!(d.spec().obs_shape, vec![3, 2, 4]);
        assert_eq!(d.split(crate::data::Split::Test), &[2]);
        assert_eq!(d.labels(&[2]).unwrap(), vec![5.0, 6.0]);
        let mut x = Vec::new();
        d.fill_observations(&[1], &mut x);
        assert!((x[0] - 20.0 / 255.0).abs() < 1e-6 && x[8] == 0.0 && x[16] == 1.0);
    }
}
