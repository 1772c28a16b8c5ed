//! Reads the original `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` (or any file with its layout) so that
//! scenes are looked up instead of rendered.
//!
//! Arrays read: `imgs` (uint8, `[N, 64, 64]`, pixels 0/1), `latents_classes` (int64, `[N, 6]`: colour, shape,
//! scale, orientation, posX, posY indices) and `latents_values` (float64, `[N, 6]`). Each image is stored
//! under the scene its classes name; every row's values must be the grid's values for its classes (within
//! 1e-6), the colour class 0, and no scene may appear twice. The original holds all 737,280 scenes once
//! (N = 737,280), but a file holding some of them is read too: only its scenes are rows, and rendering a
//! scene it lacks is an error. Images are kept as bits (512 bytes each, 377 MB for the whole file).

use super::grid::{Scene, LATENT_SIZES, N_SCENES};
use super::render::{Bitmap, IMAGE_SIZE, PIXELS};
use crate::error::{Error, Result};
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

/// The images of an original-layout `.npz`, by scene.
pub struct Archive {
    path: PathBuf,
    images: Vec<Bitmap>,
    /// Row of `images` holding each scene, `u32::MAX` where absent (one entry per scene of the grid).
    row_of_scene: Vec<u32>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Archive({}, {} images)",
            self.path.display(),
            self.images.len()
        )
    }
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Data(format!("{}: {msg}", path.display()))
}

/// `[N, 6]` C-order array `name` as i64 or f64 values (whatever `T` is), with its row count.
fn read_table<R: Read + Seek, T: npyz::Deserialize>(
    npz: &mut npyz::npz::NpzArchive<R>,
    name: &str,
    dtype: &str,
    path: &Path,
) -> Result<(Vec<T>, usize)> {
    if !npz.array_names().any(|a| a == name) {
        return Err(missing(npz, name, path));
    }
    let arr = npz
        .by_name(name)
        .map_err(|e| err(path, format!("array `{name}` is unreadable: {e}")))?
        .ok_or_else(|| err(path, format!("no `{name}` array")))?;
    let shape = arr.shape().to_vec();
    let n = match shape.as_slice() {
        [n, 6] => *n as usize,
        s => {
            return Err(err(
                path,
                format!("array `{name}` has shape {s:?}; expected [N, 6] (colour, shape, scale, orientation, posX, posY)"),
            ))
        }
    };
    if arr.order() == npyz::Order::Fortran {
        return Err(err(
            path,
            format!("array `{name}` is in Fortran order; expected C order as the original"),
        ));
    }
    let descr = arr.dtype().descr();
    let values = arr.into_vec::<T>().map_err(|e| {
        err(
            path,
            format!("array `{name}` ({descr}) is not readable as {dtype}: {e}"),
        )
    })?;
    Ok((values, n))
}

fn missing<R: Read + Seek>(npz: &npyz::npz::NpzArchive<R>, name: &str, path: &Path) -> Error {
    let mut names: Vec<String> = npz.array_names().map(String::from).collect();
    names.sort();
    err(
        path,
        format!(
            "no `{name}` array; a dSprites .npz holds imgs, latents_classes and latents_values (arrays present: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ),
    )
}

impl Archive {
    /// Reads and checks the file (see the module docs); every problem is an error naming the file.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Err(err(path, "is a folder, not the dSprites .npz file"));
        }
        let mut npz = npyz::npz::NpzArchive::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                Error::io(path, e)
            }
            _ => err(path, format!("not a readable .npz (zip) file: {e}")),
        })?;
        let (classes, n) = read_table::<_, i64>(&mut npz, "latents_classes", "int64", path)?;
        let (values, n_values) = read_table::<_, f64>(&mut npz, "latents_values", "float64", path)?;
        if n_values != n {
            return Err(err(
                path,
                format!("latents_values has {n_values} rows but latents_classes {n}"),
            ));
        }
        if n == 0 {
            return Err(err(path, "holds no images"));
        }
        if n > N_SCENES {
            return Err(err(
                path,
                format!("holds {n} rows, more than the {N_SCENES} scenes of the grid"),
            ));
        }
        let mut row_of_scene = vec![u32::MAX; N_SCENES];
        for r in 0..n {
            let c = &classes[r * 6..r * 6 + 6];
            let bad = c
                .iter()
                .zip(&LATENT_SIZES)
                .position(|(&v, &size)| v < 0 || v as usize >= size);
            if let Some(j) = bad {
                return Err(err(
                    path,
                    format!(
                        "latents_classes row {r} is {c:?}: column {j} must be in 0..{}",
                        LATENT_SIZES[j]
                    ),
                ));
            }
            let scene = Scene::new([1, 2, 3, 4, 5].map(|j| c[j] as usize))?;
            let expect = scene.values();
            let v = &values[r * 6..r * 6 + 6];
            if let Some(j) =
                (0..5).find(|&j| (v[j + 1] - expect[j]).abs() > 1e-6 * expect[j].abs().max(1.0))
            {
                return Err(err(
                    path,
                    format!(
                        "latents_values row {r} column {} is {} but its class {} has the value {} (latents_values: \
                         shape 1..3, then the linspaces of scale, orientation, posX, posY)",
                        j + 1,
                        v[j + 1],
                        c[j + 1],
                        expect[j]
                    ),
                ));
            }
            let slot = &mut row_of_scene[scene.index()];
            if *slot != u32::MAX {
                return Err(err(
                    path,
                    format!(
                        "rows {} and {r} hold the same scene (latents_classes {c:?})",
                        *slot
                    ),
                ));
            }
            *slot = r as u32;
        }
        crate::data::check_dataset_bytes(&format!("{}", path.display()), n, PIXELS / 8)?;
        let images = read_images(&mut npz, n, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            images,
            row_of_scene,
        })
    }

    /// The image of `scene`, when the file has it.
    pub fn get(&self, scene: &Scene) -> Option<&Bitmap> {
        match self.row_of_scene[scene.index()] {
            u32::MAX => None,
            r => Some(&self.images[r as usize]),
        }
    }

    /// The scenes the file holds, in the original order.
    pub fn scenes(&self) -> Vec<u32> {
        (0..N_SCENES as u32)
            .filter(|&s| self.row_of_scene[s as usize] != u32::MAX)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binary 64 × 64 frames without factors, as matched against renders ([`super::matching`]): the `images` (or
/// `imgs`) array of an `.npz`, uint8 `[N, 64, 64]` of 0/1, and its optional `frame_index` (int64 `[N]`, where
/// each frame came from; `0..N` when absent).
#[derive(Clone, Debug, PartialEq)]
pub struct Frames {
    pub images: Vec<Bitmap>,
    pub index: Vec<i64>,
}

/// Reads [`Frames`] from `path`; every problem is an error naming the file.
pub fn read_frames(path: &Path) -> Result<Frames> {
    let mut npz = npyz::npz::NpzArchive::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Error::io(path, e),
        _ => err(path, format!("not a readable .npz (zip) file: {e}")),
    })?;
    let name = ["images", "imgs"]
        .into_iter()
        .find(|n| npz.array_names().any(|a| a == *n))
        .ok_or_else(|| missing(&npz, "images", path))?;
    let arr = npz
        .by_name(name)
        .map_err(|e| err(path, format!("array `{name}` is unreadable: {e}")))?
        .ok_or_else(|| err(path, format!("no `{name}` array")))?;
    let shape = arr.shape().to_vec();
    let n = match shape.as_slice() {
        [n, 64, 64] if arr.order() == npyz::Order::C => *n as usize,
        s => {
            return Err(err(
                path,
                format!("array `{name}` has shape {s:?}; expected C-order [N, 64, 64]"),
            ))
        }
    };
    let pixels = arr.into_vec::<u8>().map_err(|e| {
        err(
            path,
            format!("array `{name}` is not readable as uint8 pixels: {e}"),
        )
    })?;
    let images = pixels
        .chunks_exact(PIXELS)
        .enumerate()
        .map(|(r, p)| {
            Bitmap::from_pixels(p).map_err(|e| err(path, format!("array `{name}`, frame {r}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let index = if npz.array_names().any(|a| a == "frame_index") {
        let arr = npz
            .by_name("frame_index")
            .map_err(|e| err(path, format!("array `frame_index` is unreadable: {e}")))?
            .ok_or_else(|| err(path, "no `frame_index` array"))?;
        let index = arr
            .into_vec::<i64>()
            .map_err(|e| err(path, format!("array `frame_index` is not int64: {e}")))?;
        if index.len() != n {
            return Err(err(
                path,
                format!("frame_index has {} entries for {n} frames", index.len()),
            ));
        }
        index
    } else {
        (0..n as i64).collect()
    };
    Ok(Frames { images, index })
}

/// `imgs` as bitmaps, streamed through a buffer (the original is 3 GB of bytes).
fn read_images<R: Read + Seek>(
    npz: &mut npyz::npz::NpzArchive<R>,
    n: usize,
    path: &Path,
) -> Result<Vec<Bitmap>> {
    if !npz.array_names().any(|a| a == "imgs") {
        return Err(missing(npz, "imgs", path));
    }
    let entry = npz
        .zip_archive()
        .by_name("imgs.npy")
        .map_err(|e| err(path, format!("array `imgs` is unreadable: {e}")))?;
    let arr = npyz::NpyFile::new(BufReader::with_capacity(1 << 20, entry))
        .map_err(|e| err(path, format!("array `imgs` has a bad header: {e}")))?;
    let shape = arr.shape().to_vec();
    if shape != [n as u64, IMAGE_SIZE as u64, IMAGE_SIZE as u64] {
        return Err(err(
            path,
            format!("array `imgs` has shape {shape:?}; expected [{n}, 64, 64] (one 64 × 64 image per latents row)"),
        ));
    }
    if arr.order() == npyz::Order::Fortran {
        return Err(err(
            path,
            "array `imgs` is in Fortran order; expected C order as the original",
        ));
    }
    let descr = arr.dtype().descr();
    let data = arr.data::<u8>().map_err(|e| {
        err(
            path,
            format!("array `imgs` is {descr}; expected uint8 pixels: {e}"),
        )
    })?;
    let mut images = Vec::with_capacity(n);
    let mut pixels = [0u8; PIXELS];
    let mut it = data.into_iter();
    for r in 0..n {
        for p in pixels.iter_mut() {
            *p = match it.next() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Err(err(path, format!("array `imgs`, image {r}: {e}"))),
                None => return Err(err(path, format!("array `imgs` ends in image {r}"))),
            };
        }
        images.push(
            Bitmap::from_pixels(&pixels)
                .map_err(|e| err(path, format!("array `imgs`, image {r}: {e}")))?,
        );
    }
    Ok(images)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::dsprites::render::render_scene;
    use npyz::WriterBuilder;

    /// Writes an original-layout npz with the images of `scenes` (rendered), with optional damage.
    pub fn write_npz(
        path: &Path,
        scenes: &[usize],
        edit: impl Fn(&str, &mut Vec<f64>, &mut Vec<u64>),
    ) {
        let file = std::fs::File::create(path).unwrap();
        let mut npz = npyz::npz::NpzWriter::new(std::io::BufWriter::new(file));
        let n = scenes.len() as u64;
        let mut classes = Vec::new();
        let mut values = Vec::new();
        let mut imgs = Vec::new();
        for &s in scenes {
            let scene = Scene::from_index(s).unwrap();
            classes.push(0i64);
            classes.extend(scene.indices().map(|v| v as i64));
            values.push(1.0);
            values.extend(scene.values());
            imgs.extend(render_scene(&scene).to_u8());
        }
        let mut shape_c = vec![n, 6];
        let mut classes_f: Vec<f64> = classes.iter().map(|&v| v as f64).collect();
        edit("latents_classes", &mut classes_f, &mut shape_c);
        let mut shape_v = vec![n, 6];
        edit("latents_values", &mut values, &mut shape_v);
        let mut imgs_f: Vec<f64> = imgs.iter().map(|&v| v as f64).collect();
        let mut shape_i = vec![n, 64, 64];
        edit("imgs", &mut imgs_f, &mut shape_i);
        let mut put_i64 = |name: &str, v: &[f64], shape: &[u64]| {
            let mut w = npz
                .array(name, Default::default())
                .unwrap()
                .default_dtype()
                .shape(shape)
                .begin_nd()
                .unwrap();
            w.extend(v.iter().map(|&x| x as i64)).unwrap();
            w.finish().unwrap();
        };
        put_i64("latents_classes", &classes_f, &shape_c);
        let mut w = npz
            .array("latents_values", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&shape_v)
            .begin_nd()
            .unwrap();
        w.extend(values.iter().copied()).unwrap();
        w.finish().unwrap();
        let mut w = npz
            .array("imgs", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&shape_i)
            .begin_nd()
            .unwrap();
        w.extend(imgs_f.iter().map(|&x| x as u8)).unwrap();
        w.finish().unwrap();
    }

    pub const SCENES: [usize; 5] = [0, 1234, 300_000, 500_000, 737_279];

    #[test]
    fn a_small_original_layout_file_is_read_by_scene() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("small.npz");
        write_npz(&p, &SCENES, |_, _, _| {});
        let a = Archive::open(&p).unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(a.scenes(), SCENES.map(|s| s as u32));
        for s in SCENES {
            let scene = Scene::from_index(s).unwrap();
            assert_eq!(a.get(&scene), Some(&render_scene(&scene)));
        }
        assert!(a.get(&Scene::from_index(1).unwrap()).is_none());
    }

    fn fails(edit: impl Fn(&str, &mut Vec<f64>, &mut Vec<u64>), needles: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npz");
        write_npz(&p, &SCENES, edit);
        let e = Archive::open(&p).unwrap_err().to_string();
        assert!(e.contains("bad.npz"), "{e}");
        for n in needles {
            assert!(e.contains(n), "`{n}` not in: {e}");
        }
    }

    #[test]
    fn damaged_files_are_errors_naming_what_is_wrong() {
        fails(
            |name, v, _| {
                if name == "latents_classes" {
                    v[6 + 2] = 6.0
                }
            },
            &["latents_classes row 1", "column 2", "0..6"],
        );
        fails(
            |name, v, _| {
                if name == "latents_classes" {
                    v[0] = 1.0
                }
            },
            &["column 0", "0..1"],
        );
        // Row 1 made a copy of row 0 (classes and values alike).
        fails(
            |name, v, _| {
                if name == "latents_classes" || name == "latents_values" {
                    for j in 0..6 {
                        v[6 + j] = v[j];
                    }
                }
            },
            &["rows 0 and 1 hold the same scene"],
        );
        // Classes changed without their values: the values disagree.
        fails(
            |name, v, _| {
                if name == "latents_values" {
                    v[6 + 3] = 0.5
                }
            },
            &["latents_values row 1 column 3"],
        );
        fails(
            |name, v, _| {
                if name == "imgs" {
                    v[4096 + 70] = 255.0
                }
            },
            &["image 1", "row 1, column 6", "255"],
        );
        fails(
            |name, v, s| {
                if name == "imgs" {
                    s[1] = 32;
                    s[2] = 32;
                    v.truncate(5 * 1024);
                }
            },
            &["imgs", "[5, 32, 32]", "expected [5, 64, 64]"],
        );
        fails(
            |name, v, s| {
                if name == "latents_values" {
                    s[1] = 5;
                    v.truncate(25);
                }
            },
            &["latents_values", "[5, 5]", "[N, 6]"],
        );
    }

    #[test]
    fn missing_and_foreign_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = Archive::open(&dir.path().join("none.npz"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.npz"), "{e}");
        let e = Archive::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("folder"), "{e}");
        let junk = dir.path().join("junk.npz");
        std::fs::write(&junk, b"not a zip").unwrap();
        let e = Archive::open(&junk).unwrap_err().to_string();
        assert!(e.contains("junk.npz") && e.contains("zip"), "{e}");
        // A zip without the arrays.
        let other = dir.path().join("other.npz");
        {
            let file = std::fs::File::create(&other).unwrap();
            let mut npz = npyz::npz::NpzWriter::new(std::io::BufWriter::new(file));
            let mut w = npz
                .array("codes", Default::default())
                .unwrap()
                .default_dtype()
                .shape(&[2])
                .begin_nd()
                .unwrap();
            w.extend([1.0f32, 2.0]).unwrap();
            w.finish().unwrap();
        }
        let e = Archive::open(&other).unwrap_err().to_string();
        assert!(
            e.contains("no `latents_classes`") && e.contains("codes"),
            "{e}"
        );
    }
}
