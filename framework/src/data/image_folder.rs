//! A folder of PNG images as a dataset, so users can train on their own files or the original pendulum files.
//!
//! Layout: `DIR/train/*.png` and `DIR/test/*.png` give the split (otherwise every image in `DIR` is read and
//! every `test_every`-th file, in name order, goes to test). Labels come from `DIR/labels.csv` (columns
//! `file, split, <label names...>`, as `carve data` writes) or, failing that, from CausalVAE-style file names
//! `a_{u1}_{u2}_..._{uk}.png`. Labels double as factors.
//!
//! Refused with the offending folder, file, line or column named: a split with no images, an image of
//! another size than the first, a file that does not decode, a label that is not a finite number, a file with
//! no row in `labels.csv`, and more pixels than [`super::MAX_DATASET_BYTES`].

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
    let bad = |m: String| Error::Data(format!("{}: {m}", path.display()));
    let mut rdr = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let header = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
    if header.len() < 3 || &header[0] != "file" || &header[1] != "split" {
        return Err(bad(format!(
            "expected columns `file,split,<labels...>`, got `{}`",
            header.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let names: Vec<String> = header.iter().skip(2).map(String::from).collect();
    let mut map = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        // Line 1 is the header.
        let line = i + 2;
        let rec = rec.map_err(|e| bad(format!("line {line}: {e}")))?;
        let vals = rec
            .iter()
            .skip(2)
            .zip(&names)
            .map(|(v, column)| match v.trim().parse::<f32>() {
                Ok(x) if x.is_finite() => Ok(x),
                Ok(x) => Err(bad(format!(
                    "line {line}, column `{column}`: label is {x}; labels must be finite numbers"
                ))),
                Err(_) => Err(bad(format!(
                    "line {line}, column `{column}`: `{v}` is not a number"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        map.insert(rec[0].to_string(), vals);
    }
    Ok((names, map))
}

/// The split folder `dir`'s PNG files, an error naming it when it has none.
fn split_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = png_files(dir)?;
    if files.is_empty() {
        return Err(Error::Data(format!(
            "{}: no PNG files in this split folder; train/ and test/ both need images",
            dir.display()
        )));
    }
    Ok(files)
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
    match (train.is_dir(), test.is_dir()) {
        (true, true) => {
            files.extend(split_files(&train)?.into_iter().map(|p| (p, false)));
            files.extend(split_files(&test)?.into_iter().map(|p| (p, true)));
        }
        (true, false) | (false, true) => {
            let (has, lacks) = if train.is_dir() {
                ("train", "test")
            } else {
                ("test", "train")
            };
            return Err(Error::Data(format!(
                "{}: has a {has}/ folder but no {lacks}/ folder; give both, or put every image in the folder itself",
                dir.display()
            )));
        }
        (false, false) => {
            if test_every < 2 {
                return Err(Error::Data(format!(
                    "{}: test_every must be at least 2 (every n-th file goes to the test split), got {test_every}",
                    dir.display()
                )));
            }
            let all = png_files(dir)?;
            if all.len() < test_every {
                return Err(Error::Data(format!(
                    "{}: {} PNG files, fewer than test_every = {test_every}, leave the test split empty (no PNG files at all if 0)",
                    dir.display(),
                    all.len()
                )));
            }
            files.extend(
                all.into_iter()
                    .enumerate()
                    .map(|(i, p)| (p, i % test_every == test_every - 1)),
            );
        }
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
            None => {
                super::check_dataset_bytes("ImageFolder", files.len(), bytes.len())?;
                obs.reserve_exact(files.len() * bytes.len());
                shape = Some(s.clone());
            }
            Some(prev) if *prev != s => {
                return Err(Error::Shape {
                    context: format!("image {}", path.display()),
                    expected: format!(
                        "{prev:?} (channels, height, width) like the first image {}",
                        files[0].0.display()
                    ),
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
            None => {
                let lab = labels_from_name(&file).unwrap_or_default();
                if lab.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Data(format!(
                        "{}: the labels in its name are {lab:?}; labels must be finite numbers",
                        path.display()
                    )));
                }
                lab
            }
        };
        if row == 0 && labels_csv.is_none() {
            label_names = (0..lab.len()).map(|i| format!("label{i}")).collect();
        }
        if lab.len() != label_names.len() {
            return Err(Error::Data(format!(
                "{}: {} labels in its name, expected {} like the first file",
                path.display(),
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

    /// `files` as (split folder, name) with 2×2 images.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["train", "test"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        for (sub, name) in files {
            image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
                .save(dir.path().join(sub).join(name))
                .unwrap();
        }
        dir
    }

    fn load_err(dir: &Path) -> String {
        load(dir, 4).err().expect("should fail").to_string()
    }

    #[test]
    fn an_empty_split_folder_is_named() {
        let d = folder(&[("train", "a_1.png")]);
        let e = load_err(d.path());
        assert!(e.contains("test") && e.contains("no PNG files"), "{e}");
        let d = folder(&[("test", "a_1.png")]);
        assert!(load_err(d.path()).contains("train"));
    }

    #[test]
    fn labels_must_be_finite_numbers_named_by_line_and_column() {
        let d = folder(&[("train", "x.png"), ("train", "y.png"), ("test", "z.png")]);
        let csv = d.path().join("labels.csv");
        for (row, needle) in [
            ("y.png,train,2,NaN", "line 3, column `b`: label is NaN"),
            (
                "y.png,train,two,1",
                "line 3, column `a`: `two` is not a number",
            ),
        ] {
            std::fs::write(
                &csv,
                format!("file,split,a,b\nx.png,train,1,1\n{row}\nz.png,test,3,3\n"),
            )
            .unwrap();
            let e = load_err(d.path());
            assert!(e.contains("labels.csv") && e.contains(needle), "{e}");
        }
        let d = folder(&[
            ("train", "a_1.png"),
            ("train", "a_inf.png"),
            ("test", "a_2.png"),
        ]);
        assert!(load_err(d.path()).contains("a_inf.png"));
    }

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
