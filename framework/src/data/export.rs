//! Writes an image dataset to disk: `train/` and `test/` PNG folders plus `labels.csv`.

use super::{Dataset, Split};
use crate::error::{Error, IoContext, Result};
use image::{ExtendedColorType, ImageEncoder};
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// `[C, H, W]` (or `[H, W]`, one channel) → (channels, height, width), for C ∈ {1, 3, 4}.
fn image_dims(len: usize, shape: &[usize]) -> Result<(usize, usize, usize)> {
    let (c, h, w) = match *shape {
        [c, h, w] => (c, h, w),
        [h, w] => (1, h, w),
        _ => {
            return Err(Error::Shape {
                context: "image".into(),
                expected: "[C, H, W] or [H, W]".into(),
                got: format!("{shape:?}"),
            })
        }
    };
    if !matches!(c, 1 | 3 | 4) || h == 0 || w == 0 {
        return Err(Error::Shape {
            context: "image".into(),
            expected: "1 (gray), 3 (RGB) or 4 (RGBA) channels and a non-empty size".into(),
            got: format!("{shape:?}"),
        });
    }
    if len != c * h * w {
        return Err(Error::Shape {
            context: "image values".into(),
            expected: format!("{} values for shape {shape:?}", c * h * w),
            got: format!("{len}"),
        });
    }
    Ok((c, h, w))
}

/// f32 in [0, 1] → u8 with rounding (clamped; NaN → 0).
pub fn unit_to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Channels-first floats → interleaved bytes with the same channel count (`H × W × C`).
pub fn chw_to_hwc8(chw: &[f32], shape: &[usize]) -> Result<(u32, u32, usize, Vec<u8>)> {
    let (c, h, w) = image_dims(chw.len(), shape)?;
    let hw = h * w;
    let mut out = vec![0u8; hw * c];
    for (ch, plane) in chw.chunks_exact(hw).enumerate() {
        for (p, &v) in plane.iter().enumerate() {
            out[p * c + ch] = unit_to_u8(v);
        }
    }
    Ok((w as u32, h as u32, c, out))
}

/// Channels-first floats in [0, 1] (`[C, H, W]` with C ∈ {1, 3, 4}, or `[H, W]`) → `(width, height, RGBA bytes)`.
/// Gray is replicated to RGB; alpha is 255 unless given.
pub fn chw_to_rgba8(chw: &[f32], shape: &[usize]) -> Result<(u32, u32, Vec<u8>)> {
    let (w, h, c, hwc) = chw_to_hwc8(chw, shape)?;
    let rgba = match c {
        4 => hwc,
        3 => hwc
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        _ => hwc.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    };
    Ok((w, h, rgba))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` through `path.tmp` and a rename, so readers never see a half-written file.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<fs::File>) -> Result<()>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut out = BufWriter::new(fs::File::create(&tmp).at(&tmp)?);
        write(&mut out)?;
        out.into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?
            .sync_all()
            .at(&tmp)?;
        fs::rename(&tmp, path).at(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Saves a channels-first image in [0, 1] as a PNG with its own channel count (gray, RGB or RGBA), atomically.
pub fn save_png(path: &Path, chw: &[f32], shape: &[usize]) -> Result<()> {
    let (w, h, c, hwc) = chw_to_hwc8(chw, shape)?;
    let color = match c {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        _ => ExtendedColorType::Rgba8,
    };
    write_atomic(path, |out| {
        image::codecs::png::PngEncoder::new(out)
            .write_image(&hwc, w, h, color)
            .map_err(|e| Error::Data(format!("{}: PNG encoding failed: {e}", path.display())))
    })
}

/// Writes `dir/train/<file_name>` and `dir/test/<file_name>` PNGs for every row of the train and test splits, and
/// `dir/labels.csv` (`file,split,<factor names…>`, one line per row in global row order, floats at full precision).
pub fn write_image_dataset(data: &dyn Dataset, dir: &Path) -> Result<()> {
    let spec = data.spec();
    if !spec.is_image() {
        return Err(Error::Shape {
            context: "image export".into(),
            expected: "observations of shape [C, H, W]".into(),
            got: format!("{:?}", spec.obs_shape),
        });
    }
    image_dims(spec.obs_len(), &spec.obs_shape)?;
    let mut rows: Vec<(usize, &'static str)> = Vec::new();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let sub = dir.join(name);
        fs::create_dir_all(&sub).at(&sub)?;
        let mut seen = HashSet::new();
        for &r in data.split(split) {
            let file = data.file_name(r);
            if file.is_empty() || file.contains(['/', '\\']) || file == "." || file == ".." {
                return Err(Error::Data(format!(
                    "row {r}: `{file}` is not a plain file name"
                )));
            }
            if !seen.insert(file.clone()) {
                return Err(Error::Data(format!(
                    "two {name} rows share the file name `{file}` (row {r})"
                )));
            }
            rows.push((r, name));
        }
    }
    rows.sort_unstable();

    let shape = &spec.obs_shape;
    rows.par_chunks(64).try_for_each(|chunk| -> Result<()> {
        let mut buf = Vec::new();
        for &(r, split) in chunk {
            buf.clear();
            data.fill_observations(&[r], &mut buf);
            save_png(&dir.join(split).join(data.file_name(r)), &buf, shape)?;
        }
        Ok(())
    })?;

    let path = dir.join("labels.csv");
    let k = spec.factor_names.len();
    write_atomic(&path, |out| {
        let csv_err = |e: csv::Error| Error::Data(format!("{}: {e}", path.display()));
        let mut w = csv::Writer::from_writer(out);
        let mut header = vec!["file".to_string(), "split".to_string()];
        header.extend(spec.factor_names.iter().cloned());
        w.write_record(&header).map_err(csv_err)?;
        for &(r, split) in &rows {
            let mut rec = vec![data.file_name(r), split.to_string()];
            if let Some(f) = data.factors(&[r]) {
                rec.extend(f.iter().take(k).map(|v| format!("{v}")));
            }
            w.write_record(&rec).map_err(csv_err)?;
        }
        w.flush().at(&path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::array::Observations;
    use crate::data::{ArrayDataset, DataSpec};

    #[test]
    fn chw_conversion_rounds_and_fills_alpha() {
        let chw = [0.0, 1.0, 0.5, 0.2, 2.0, -1.0]; // [3, 1, 2]
        let (w, h, rgba) = chw_to_rgba8(&chw, &[3, 1, 2]).unwrap();
        assert_eq!((w, h), (2, 1));
        assert_eq!(rgba, vec![0, 128, 255, 255, 255, 51, 0, 255]);
        let (_, _, gray) = chw_to_rgba8(&[0.25, 1.0], &[1, 1, 2]).unwrap();
        assert_eq!(gray, vec![64, 64, 64, 255, 255, 255, 255, 255]);
        assert!(chw_to_rgba8(&chw, &[2, 1, 3]).is_err());
        assert!(chw_to_rgba8(&chw, &[3, 2, 2]).is_err());
    }

    #[test]
    fn writes_pngs_and_labels_that_read_back() {
        let shape = vec![3usize, 2, 3];
        let spec = DataSpec {
            obs_shape: shape.clone(),
            factor_names: vec!["a".into(), "b".into()],
            label_names: vec![],
            graph: None,
            ..Default::default()
        };
        let n = 3;
        let obs: Vec<u8> = (0..n * 18).map(|v| (v * 5) as u8).collect();
        let factors = vec![0.1f32, 1.0, -2.5, 3.25, 1e-7, 7.0];
        let ds = ArrayDataset::new(
            spec,
            Observations::U8(obs.clone()),
            Some(factors),
            None,
            vec![1],
        )
        .unwrap()
        .with_file_names(vec!["x0.png".into(), "x1.png".into(), "x2.png".into()]);
        let dir = tempfile::tempdir().unwrap();
        write_image_dataset(&ds, dir.path()).unwrap();

        for (row, split) in [(0, "train"), (1, "test"), (2, "train")] {
            let img = image::open(dir.path().join(split).join(format!("x{row}.png")))
                .unwrap()
                .to_rgb8();
            assert_eq!(img.dimensions(), (3, 2));
            for (p, px) in img.pixels().enumerate() {
                for c in 0..3 {
                    assert_eq!(
                        px[c],
                        obs[row * 18 + c * 6 + p],
                        "row {row} pixel {p} channel {c}"
                    );
                }
            }
        }
        assert!(!dir.path().join("train/x1.png").exists());
        let csv = fs::read_to_string(dir.path().join("labels.csv")).unwrap();
        assert_eq!(
            csv,
            "file,split,a,b\nx0.png,train,0.1,1\nx1.png,test,-2.5,3.25\nx2.png,train,0.0000001,7\n"
        );
        let leftovers: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out
    }

    #[test]
    fn save_png_writes_gray_and_rgba() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        save_png(&p, &[0.0, 0.5, 1.0, 0.25], &[1, 2, 2]).unwrap();
        let img = image::open(&p).unwrap();
        assert_eq!(img.color(), image::ColorType::L8);
        assert_eq!(img.to_luma8().into_raw(), vec![0, 128, 255, 64]);
        let p = dir.path().join("c.png");
        save_png(&p, &[1.0; 16], &[4, 2, 2]).unwrap();
        assert_eq!(image::open(&p).unwrap().color(), image::ColorType::Rgba8);
        assert!(!tmp_path(&p).exists());
    }
}
