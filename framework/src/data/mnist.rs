//! MNIST (LeCun et al. 1998) read from its IDX files, gzipped or not, with the binarisations of the VAE
//! literature. The repository ships the 10,000-image test set in `data/mnist/`, so `{"Mnist": (path:
//! "data/mnist")}` works on a fresh clone; the 60,000 training images can be added next to it.
//!
//! Refused with the file named, never a panic: a missing folder or file (listing what was looked for), a magic
//! number other than 2051 (images) / 2049 (labels), a file shorter or longer than its header says, a corrupt
//! gzip stream, image and label files of different counts, train and test images of different sizes, and
//! more pixels than [`super::MAX_DATASET_BYTES`].

use super::{DataSpec, Dataset, DatasetConfig, Split};
use crate::error::{Error, IoContext, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How grey levels become observations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Binarize {
    /// A fresh Bernoulli draw of every pixel, with its intensity as the probability, at every training step
    /// ("mnistresample" of the Ladder VAE, Sønderby et al. 2016). The draw is a hash of (seed, row, step), so
    /// a resumed run sees the same images. Evaluation, figures and export see one fixed draw per image (the
    /// one `Fixed` would make), so metrics are reproducible.
    #[default]
    Dynamic,
    /// One Bernoulli draw per image, made once at build from the seed and kept for the whole run.
    Fixed,
    /// 1 where the intensity (in [0, 1]) exceeds the threshold, 0 elsewhere.
    Threshold(f32),
    /// Grey levels in [0, 1].
    None,
}

/// MNIST from the IDX files in `path`: `t10k-images-idx3-ubyte` + `t10k-labels-idx1-ubyte` and optionally
/// `train-images-idx3-ubyte` + `train-labels-idx1-ubyte`, each gzipped (`.gz`) or not (the plain file is read
/// when both exist). A relative `path` is resolved against the current directory.
///
/// **Split**: with all four files, the standard one: train = the train files (60,000), test = the t10k files
/// (10,000); rows are the train images, then the t10k images. With only the t10k files (as shipped in
/// `data/mnist/`), the first 80% of them in file order train and the rest test: 8,000 / 2,000.
///
/// Observations are `[1, rows, cols]` images in [0, 1] (28 × 28 for MNIST; the header's size is used), see
/// [`Binarize`]. The digit is the one supervision label and the one factor, `digit`, so `cluster_accuracy`
/// and the factor metrics read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mnist {
    pub path: PathBuf,
    #[serde(default)]
    pub binarize: Binarize,
}

#[typetag::serde(name = "Mnist")]
impl DatasetConfig for Mnist {
    fn build(&self, seed: u64) -> Result<Arc<dyn Dataset>> {
        Ok(Arc::new(MnistDataset::load(
            &self.path,
            self.binarize,
            seed,
        )?))
    }
}
crate::register_component!(
    Dataset,
    "Mnist",
    "MNIST digits from IDX files (gzipped or not), dynamically or fixed binarised or grey"
);

/// File stems, as distributed (`.gz` optional).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// Magic numbers: 0x08 (unsigned bytes) << 8 | the number of dimensions.
pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;
/// Share of the t10k images that train when the train files are absent (8,000 of 10,000).
pub const T10K_TRAIN_FRACTION: (usize, usize) = (4, 5);

/// The draw index of the fixed draw (of `Fixed`, and of `Dynamic` outside training); training steps never
/// reach it.
const FIXED_DRAW: u64 = u64::MAX;

/// MNIST in memory: one byte per pixel.
pub struct MnistDataset {
    spec: DataSpec,
    /// `len × rows·cols` grey levels; 0 / 255 once binarised at build (`Fixed`, `Threshold`).
    pixels: Vec<u8>,
    labels: Vec<f32>,
    /// Pixels are redrawn per training step (`Dynamic`).
    dynamic: bool,
    seed: u64,
    all: Vec<usize>,
    train: Vec<usize>,
    test: Vec<usize>,
}

impl MnistDataset {
    /// Reads the IDX files in `dir` (see [`Mnist`]) and binarises as asked, drawing from `seed`.
    pub fn load(dir: &Path, binarize: Binarize, seed: u64) -> Result<Self> {
        if let Binarize::Threshold(t) = binarize {
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::Data(format!(
                    "Mnist: binarize: Threshold({t}) must lie in [0, 1] (pixel intensities are in [0, 1])"
                )));
            }
        }
        let looked_for = format!(
            "{TEST_IMAGES}[.gz] and {TEST_LABELS}[.gz], optionally with {TRAIN_IMAGES}[.gz] and \
             {TRAIN_LABELS}[.gz]"
        );
        let relative = if dir.is_relative() {
            let cwd = std::env::current_dir()
                .map_or_else(|e| format!("unknown: {e}"), |d| d.display().to_string());
            format!(" (a relative path, resolved against the current directory {cwd})")
        } else {
            String::new()
        };
        if !dir.is_dir() {
            return Err(Error::Data(format!(
                "Mnist: {}{relative}: no such folder; it should hold {looked_for}",
                dir.display()
            )));
        }
        let find = |stem: &str| {
            [stem.to_string(), format!("{stem}.gz")]
                .into_iter()
                .map(|name| dir.join(name))
                .find(|p| p.is_file())
        };
        let missing = |stem: &str| {
            Error::Data(format!(
                "Mnist: {}{relative}: no {stem} or {stem}.gz; looked for {looked_for}",
                dir.display()
            ))
        };
        let test_images = find(TEST_IMAGES).ok_or_else(|| missing(TEST_IMAGES))?;
        let test_labels = find(TEST_LABELS).ok_or_else(|| missing(TEST_LABELS))?;
        // The train files are optional, but not one without the other.
        let train_files = match (find(TRAIN_IMAGES), find(TRAIN_LABELS)) {
            (Some(i), Some(l)) => Some((i, l)),
            (None, None) => None,
            (Some(_), None) => return Err(missing(TRAIN_LABELS)),
            (None, Some(_)) => return Err(missing(TRAIN_IMAGES)),
        };

        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        let mut size = None;
        let n_train_files = match &train_files {
            Some((i, l)) => read_pair(i, l, &mut size, &mut pixels, &mut labels)?.0,
            None => 0,
        };
        let (n_test_files, rows, cols) = read_pair(
            &test_images,
            &test_labels,
            &mut size,
            &mut pixels,
            &mut labels,
        )?;
        let n = n_train_files + n_test_files;
        let n_train = match train_files {
            Some(_) => n_train_files,
            None => n_test_files * T10K_TRAIN_FRACTION.0 / T10K_TRAIN_FRACTION.1,
        };
        if n_train == 0 || n_train == n {
            return Err(Error::Data(format!(
                "{}: {n_test_files} images are too few to split {}/{} into train and test",
                test_images.display(),
                T10K_TRAIN_FRACTION.0,
                T10K_TRAIN_FRACTION.1
            )));
        }
        let d = rows * cols;
        match binarize {
            Binarize::Fixed => pixels.par_chunks_mut(d).enumerate().for_each(|(row, img)| {
                let grey = img.to_vec();
                let mut k = 0;
                bernoulli(seed, row, FIXED_DRAW, &grey, |on| {
                    img[k] = if on { 255 } else { 0 };
                    k += 1;
                });
            }),
            Binarize::Threshold(t) => pixels
                .par_iter_mut()
                .for_each(|p| *p = if *p as f32 / 255.0 > t { 255 } else { 0 }),
            Binarize::Dynamic | Binarize::None => {}
        }
        let spec = DataSpec {
            obs_shape: vec![1, rows, cols],
            factor_names: vec!["digit".into()],
            label_names: vec!["digit".into()],
            ..Default::default()
        };
        Ok(Self {
            spec,
            pixels,
            labels,
            dynamic: binarize == Binarize::Dynamic,
            seed,
            all: (0..n).collect(),
            train: (0..n_train).collect(),
            test: (n_train..n).collect(),
        })
    }

    /// Observations of `rows` with the pixel draw `draw` (dynamic binarisation only).
    fn fill_drawn(&self, rows: &[usize], draw: u64, out: &mut Vec<f32>) {
        let d = self.spec.obs_len();
        out.reserve(rows.len() * d);
        for &r in rows {
            let grey = &self.pixels[r * d..(r + 1) * d];
            bernoulli(self.seed, r, draw, grey, |on| {
                out.push(if on { 1.0 } else { 0.0 })
            });
        }
    }
}

impl Dataset for MnistDataset {
    fn spec(&self) -> &DataSpec {
        &self.spec
    }

    fn len(&self) -> usize {
        self.all.len()
    }

    fn split(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
            Split::All => &self.all,
        }
    }

    /// The fixed observations: grey levels, the build-time binarisation, or (`Dynamic`) the fixed draw.
    fn fill_observations(&self, rows: &[usize], out: &mut Vec<f32>) {
        if self.dynamic {
            return self.fill_drawn(rows, FIXED_DRAW, out);
        }
        let d = self.spec.obs_len();
        out.reserve(rows.len() * d);
        for &r in rows {
            out.extend(
                self.pixels[r * d..(r + 1) * d]
                    .iter()
                    .map(|&b| b as f32 * (1.0 / 255.0)),
            );
        }
    }

    /// `Dynamic`: the draw of training step `step`; otherwise the fixed observations.
    fn fill_observations_at(&self, rows: &[usize], step: usize, out: &mut Vec<f32>) {
        if self.dynamic {
            self.fill_drawn(rows, step as u64, out);
        } else {
            self.fill_observations(rows, out);
        }
    }

    fn factors(&self, rows: &[usize]) -> Option<Vec<f32>> {
        self.labels(rows)
    }

    fn labels(&self, rows: &[usize]) -> Option<Vec<f32>> {
        Some(rows.iter().map(|&r| self.labels[r]).collect())
    }
}

/// splitmix64: a well-mixed 64-bit hash, the step of a counter-based generator.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One Bernoulli draw per pixel of `grey`, P(on) = grey / 255 exactly, from a hash of (seed, row, draw): a
/// pure function, so any batch order, thread count or resume gives the same pixels.
fn bernoulli(seed: u64, row: usize, draw: u64, grey: &[u8], mut put: impl FnMut(bool)) {
    let key = mix(mix(mix(seed) ^ row as u64) ^ draw);
    for (j, pair) in grey.chunks(2).enumerate() {
        let bits = mix(key.wrapping_add((j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        for (h, &g) in pair.iter().enumerate() {
            // A uniform integer in 0..255 from 32 random bits; below g with probability g / 255.
            let u = (bits >> (32 * h)) as u32 as u64;
            put((u * 255) >> 32 < g as u64);
        }
    }
}

/// Appends an image file and its label file to `pixels` / `labels`; returns the count and the image size.
/// `size` is the image size of the first pair read, which later pairs must match.
fn read_pair(
    images: &Path,
    labels: &Path,
    size: &mut Option<(usize, usize)>,
    pixels: &mut Vec<u8>,
    out_labels: &mut Vec<f32>,
) -> Result<(usize, usize, usize)> {
    let before = pixels.len();
    let dims = read_idx(images, 3, "images", pixels)?;
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    match *size {
        Some((r, c)) if (r, c) != (rows, cols) => {
            return Err(Error::Shape {
                context: format!("MNIST images {}", images.display()),
                expected: format!("{r}×{c} images like the train images"),
                got: format!("{rows}×{cols}"),
            })
        }
        _ => *size = Some((rows, cols)),
    }
    let mut bytes = Vec::new();
    let m = read_idx(labels, 1, "labels", &mut bytes)?[0];
    if m != n {
        pixels.truncate(before);
        return Err(Error::Data(format!(
            "{} holds {m} labels but {} holds {n} images; they must pair one to one",
            labels.display(),
            images.display()
        )));
    }
    out_labels.extend(bytes.iter().map(|&b| b as f32));
    Ok((n, rows, cols))
}

/// Reads an IDX file of unsigned bytes with `ndims` dimensions (`.gz`: gzip-decoded), appends its data to
/// `out` and returns its dimensions.
fn read_idx(path: &Path, ndims: usize, what: &str, out: &mut Vec<u8>) -> Result<Vec<usize>> {
    let bad = |m: String| Error::Data(format!("{}: {m}", path.display()));
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let file = std::fs::File::open(path).at(path)?;
    let buffered = std::io::BufReader::new(file);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let read_err = |e: std::io::Error| {
        if gz {
            bad(format!("gzip decoding failed: {e}"))
        } else {
            Error::io(path, e)
        }
    };

    let header_len = 4 + 4 * ndims;
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut reader, &mut header).map_err(read_err)?;
    if got < 4 {
        return Err(bad(format!(
            "truncated: {got} bytes, too short for the 4-byte magic number of an IDX file"
        )));
    }
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let expected_magic = (0x08 << 8) | ndims as u32;
    if magic != expected_magic {
        let hint = if !gz && header[..2] == [0x1f, 0x8b] {
            " (the file is gzipped: name it .gz)"
        } else {
            ""
        };
        return Err(bad(format!(
            "magic number {magic}, expected {expected_magic} (an IDX file of {what}: unsigned bytes, \
             {ndims} dimension{}){hint}",
            if ndims == 1 { "" } else { "s" }
        )));
    }
    if got < header_len {
        return Err(bad(format!(
            "truncated: the header of {header_len} bytes ends after {got}"
        )));
    }
    let dims: Vec<usize> = header[4..]
        .chunks(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    if dims.contains(&0) {
        return Err(bad(format!(
            "dimensions {dims:?}: no {what} (a dimension is 0)"
        )));
    }
    let per_item: usize = dims[1..].iter().product();
    super::check_dataset_bytes(&path.display().to_string(), dims[0], per_item)?;
    let expected = dims[0] * per_item;
    let start = out.len();
    out.resize(start + expected, 0);
    let found = read_full(&mut reader, &mut out[start..]).map_err(read_err)?;
    let data = if ndims == 3 {
        format!("pixel data ({} images × {}×{})", dims[0], dims[1], dims[2])
    } else {
        format!("{what} ({} of them)", dims[0])
    };
    if found < expected {
        out.truncate(start);
        return Err(bad(format!(
            "truncated: expected {expected} bytes of {data} after the {header_len}-byte header, found {found}"
        )));
    }
    // Reads to the end: gzip checks its CRC there, and trailing bytes mean the header is wrong.
    let extra = std::io::copy(&mut reader, &mut std::io::sink()).map_err(read_err)?;
    if extra > 0 {
        out.truncate(start);
        return Err(bad(format!(
            "{extra} bytes past the {expected} bytes of {data} that its header declares"
        )));
    }
    Ok(dims)
}

/// Fills `buf` from `r` until full or the end of the stream; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The shipped test set, `data/mnist/` at the repository root.
    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
    }

    fn obs(d: &dyn Dataset, rows: &[usize]) -> Vec<f32> {
        let mut v = Vec::new();
        d.fill_observations(rows, &mut v);
        v
    }

    fn obs_at(d: &dyn Dataset, rows: &[usize], step: usize) -> Vec<f32> {
        let mut v = Vec::new();
        d.fill_observations_at(rows, step, &mut v);
        v
    }

    /// An IDX file of bytes: `magic`, `dims`, then `data`.
    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// A folder with `n` t10k images of `rows`×`cols` (pixel = index mod 256) and labels `i mod 10`.
    fn tiny(n: u32, rows: u32, cols: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "t10k", n, rows, cols);
        dir
    }

    fn write_pair(dir: &Path, prefix: &str, n: u32, rows: u32, cols: u32) {
        let pix: Vec<u8> = (0..n * rows * cols).map(|i| i as u8).collect();
        let lab: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx(IMAGES_MAGIC, &[n, rows, cols], &pix),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx(LABELS_MAGIC, &[n], &lab),
        )
        .unwrap();
    }

    fn load_err(dir: &Path) -> String {
        MnistDataset::load(dir, Binarize::None, 0)
            .err()
            .expect("should fail")
            .to_string()
    }

    #[test]
    fn reads_the_shipped_test_set() {
        let d = MnistDataset::load(&shipped(), Binarize::None, 0).unwrap();
        assert_eq!(d.len(), 10_000);
        assert_eq!(d.spec().obs_shape, vec![1, 28, 28]);
        assert!(d.spec().is_image());
        assert_eq!(d.spec().label_names, vec!["digit"]);
        assert_eq!(d.split(Split::Train), (0..8000).collect::<Vec<_>>());
        assert_eq!(d.split(Split::Test), (8000..10_000).collect::<Vec<_>>());
        // The first t10k digits are 7, 2, 1, 0, 4; the first test row (t10k index 8000) is a 4.
        assert_eq!(
            d.labels(&[0, 1, 2, 3, 4]).unwrap(),
            vec![7.0, 2.0, 1.0, 0.0, 4.0]
        );
        assert_eq!(d.factors(&[8000]).unwrap(), vec![4.0]);
        let x = obs(&d, &[0]);
        assert_eq!(x.len(), 784);
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(x.iter().cloned().fold(0.0, f32::max), 1.0);
        // 18454 = the sum of image 0's bytes, computed once from the file with Python:
        // `sum(gzip.open("data/mnist/t10k-images-idx3-ubyte.gz").read()[16:16 + 784])` (116 non-zero pixels).
        let sum: f32 = x.iter().map(|v| (v * 255.0).round()).sum();
        assert_eq!(sum, 18454.0);
        assert_eq!(x.iter().filter(|&&v| v > 0.0).count(), 116);
    }

    #[test]
    fn an_uncompressed_copy_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        for stem in [TEST_IMAGES, TEST_LABELS] {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(
                std::fs::File::open(shipped().join(format!("{stem}.gz"))).unwrap(),
            )
            .read_to_end(&mut raw)
            .unwrap();
            std::fs::write(dir.path().join(stem), raw).unwrap();
        }
        let a = MnistDataset::load(&shipped(), Binarize::None, 0).unwrap();
        let b = MnistDataset::load(dir.path(), Binarize::None, 0).unwrap();
        assert!(a.pixels == b.pixels && a.labels == b.labels && a.test == b.test);
    }

    #[test]
    fn train_files_give_the_standard_split_at_their_own_size() {
        let dir = tiny(4, 3, 2);
        write_pair(dir.path(), "train", 6, 3, 2);
        let d = MnistDataset::load(dir.path(), Binarize::None, 0).unwrap();
        assert_eq!(d.spec().obs_shape, vec![1, 3, 2]);
        assert_eq!(d.split(Split::Train), &[0, 1, 2, 3, 4, 5]);
        assert_eq!(d.split(Split::Test), &[6, 7, 8, 9]);
        // Row 6 is the first t10k image: pixels 0..6, label 0.
        assert_eq!(obs(&d, &[6])[5], 5.0 / 255.0);
        assert_eq!(d.labels(&[5, 6]).unwrap(), vec![5.0, 0.0]);
        // Gzipped train files read the same.
        for stem in [TRAIN_IMAGES, TRAIN_LABELS] {
            let p = dir.path().join(stem);
            std::fs::write(
                dir.path().join(format!("{stem}.gz")),
                gzip(&std::fs::read(&p).unwrap()),
            )
            .unwrap();
            std::fs::remove_file(p).unwrap();
        }
        let g = MnistDataset::load(dir.path(), Binarize::None, 0).unwrap();
        assert!(g.pixels == d.pixels && g.labels == d.labels);
    }

    #[test]
    fn missing_folders_and_files_say_what_was_looked_for() {
        let e = load_err(Path::new("no/such/mnist"));
        assert!(
            e.contains("no/such/mnist")
                && e.contains("current directory")
                && e.contains("no such folder"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains("t10k-images-idx3-ubyte[.gz]") && e.contains("train-labels-idx1-ubyte[.gz]"),
            "{e}"
        );
        let dir = tiny(4, 2, 2);
        std::fs::write(dir.path().join(format!("{TRAIN_IMAGES}.gz")), b"").unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains("no train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz"),
            "{e}"
        );
    }

    #[test]
    fn bad_magic_truncation_extra_bytes_and_count_mismatch_name_the_file() {
        let dir = tiny(5, 2, 2);
        let images = dir.path().join(TEST_IMAGES);
        let labels = dir.path().join(TEST_LABELS);
        let good = std::fs::read(&images).unwrap();

        std::fs::write(&images, idx(LABELS_MAGIC, &[5, 2, 2], &[0; 20])).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(TEST_IMAGES) && e.contains("magic number 2049, expected 2051"),
            "{e}"
        );

        std::fs::write(&images, &good[..good.len() - 3]).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(TEST_IMAGES)
                && e.contains("truncated: expected 20 bytes of pixel data")
                && e.contains("found 17"),
            "{e}"
        );
        std::fs::write(&images, &good[..10]).unwrap();
        assert!(load_err(dir.path()).contains("header of 16 bytes ends after 10"));

        std::fs::write(&images, [good.as_slice(), &[1, 2]].concat()).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(TEST_IMAGES) && e.contains("2 bytes past the 20 bytes"),
            "{e}"
        );

        std::fs::write(&images, gzip(&good)).unwrap();
        let e = load_err(dir.path());
        assert!(e.contains("the file is gzipped: name it .gz"), "{e}");

        std::fs::write(&images, &good).unwrap();
        std::fs::write(&labels, idx(LABELS_MAGIC, &[4], &[1, 2, 3, 4])).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(TEST_LABELS) && e.contains("holds 4 labels") && e.contains("holds 5 images"),
            "{e}"
        );

        std::fs::write(&labels, idx(IMAGES_MAGIC, &[5], &[0; 5])).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(TEST_LABELS) && e.contains("magic number 2051, expected 2049"),
            "{e}"
        );
    }

    #[test]
    fn a_corrupt_gzip_stream_names_the_file() {
        let dir = tiny(20, 8, 8);
        let images = dir.path().join(TEST_IMAGES);
        let gz = gzip(&std::fs::read(&images).unwrap());
        std::fs::remove_file(&images).unwrap();
        let path = dir.path().join(format!("{TEST_IMAGES}.gz"));
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid..mid + 8].copy_from_slice(&[0xff; 8]);
        std::fs::write(&path, &bad).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(&format!("{TEST_IMAGES}.gz")) && e.contains("gzip decoding failed"),
            "{e}"
        );
        // A stream cut short, and a file that is not gzip at all.
        std::fs::write(&path, &gz[..gz.len() - 20]).unwrap();
        let e = load_err(dir.path());
        assert!(
            e.contains(&format!("{TEST_IMAGES}.gz"))
                && (e.contains("gzip") || e.contains("truncated")),
            "{e}"
        );
        std::fs::write(&path, b"plain text").unwrap();
        let e = load_err(dir.path());
        assert!(e.contains("gzip decoding failed"), "{e}");
    }

    #[test]
    fn image_sizes_must_agree_and_splits_must_not_be_empty() {
        let dir = tiny(4, 3, 3);
        write_pair(dir.path(), "train", 6, 2, 2);
        let e = load_err(dir.path());
        assert!(
            e.contains(TEST_IMAGES) && e.contains("2×2 images") && e.contains("got 3×3"),
            "{e}"
        );
        let e = load_err(tiny(1, 2, 2).path());
        assert!(e.contains("1 images are too few"), "{e}");
        let e = MnistDataset::load(&shipped(), Binarize::Threshold(1.5), 0)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("Threshold(1.5)"), "{e}");
    }

    #[test]
    fn dynamic_binarisation_redraws_per_step_reproducibly_and_evaluates_fixed() {
        let grey = MnistDataset::load(&shipped(), Binarize::None, 0).unwrap();
        let dynamic = MnistDataset::load(&shipped(), Binarize::Dynamic, 7).unwrap();
        let rows = [3, 0, 9_999];
        let (s0, s1) = (obs_at(&dynamic, &rows, 0), obs_at(&dynamic, &rows, 1));
        assert!(s0.iter().all(|&v| v == 0.0 || v == 1.0));
        assert_ne!(s0, s1);
        assert_eq!(s0, obs_at(&dynamic, &rows, 0));
        // Per row, whatever the batch: row 0 of step 0 is the same alone or in a batch.
        assert_eq!(obs_at(&dynamic, &[0], 0), s0[784..1568]);
        // Pixels on only where the grey level is, and about as often as it says.
        let g = obs(&grey, &rows);
        assert!(s0.iter().zip(&g).all(|(b, g)| *b == 0.0 || *g > 0.0));
        assert!(g.iter().zip(&s0).all(|(g, b)| *g < 1.0 || *b == 1.0));
        let all: Vec<usize> = (0..200).collect();
        let (m_grey, m_draw) = (
            obs(&grey, &all).iter().sum::<f32>(),
            obs_at(&dynamic, &all, 5).iter().sum::<f32>(),
        );
        assert!((m_draw / m_grey - 1.0).abs() < 0.02, "{m_draw} vs {m_grey}");
        // Evaluation sees one draw, the same every call, that `Fixed` with the same seed trains on.
        let e = obs(&dynamic, &rows);
        assert_eq!(e, obs(&dynamic, &rows));
        assert_ne!(e, s0);
        let fixed = MnistDataset::load(&shipped(), Binarize::Fixed, 7).unwrap();
        assert_eq!(e, obs(&fixed, &rows));
        // Another seed, another draw.
        let other = MnistDataset::load(&shipped(), Binarize::Dynamic, 8).unwrap();
        assert_ne!(obs_at(&other, &rows, 0), s0);
    }

    #[test]
    fn fixed_threshold_and_grey_are_the_same_at_every_step() {
        let fixed = MnistDataset::load(&shipped(), Binarize::Fixed, 1).unwrap();
        let rows = [0, 1, 2];
        let x = obs(&fixed, &rows);
        assert!(x.iter().all(|&v| v == 0.0 || v == 1.0));
        assert_eq!(x, obs_at(&fixed, &rows, 0));
        assert_eq!(x, obs_at(&fixed, &rows, 123));
        let t = MnistDataset::load(&shipped(), Binarize::Threshold(0.5), 1).unwrap();
        let g = MnistDataset::load(&shipped(), Binarize::None, 1).unwrap();
        let (tx, gx) = (obs_at(&t, &rows, 4), obs_at(&g, &rows, 4));
        assert!(tx
            .iter()
            .zip(&gx)
            .all(|(t, g)| *t == if *g > 0.5 { 1.0 } else { 0.0 }));
        assert_eq!(gx, obs(&g, &rows));
    }

    #[test]
    fn training_batches_take_the_step_and_other_batches_the_fixed_draw() {
        let d = MnistDataset::load(&shipped(), Binarize::Dynamic, 3).unwrap();
        let dev = candle_core::Device::Cpu;
        // t10k images 10 and 20 are a 0 and a 9.
        let rows = [10, 20];
        let at = |step| {
            let b = super::super::make_batch_at(&d, &rows, step, &dev, &mut Vec::new()).unwrap();
            assert_eq!(b.x.dims(), &[2, 1, 28, 28]);
            b.x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(at(4), obs_at(&d, &rows, 4));
        let b = super::super::make_batch(&d, &rows, &dev, &mut Vec::new()).unwrap();
        assert_eq!(
            b.x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            obs(&d, &rows)
        );
        assert_eq!(
            b.labels
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![0.0, 9.0]
        );
    }

    #[test]
    fn configs_parse_in_ron_and_json_and_the_name_is_registered() {
        for (src, want) in [
            (r#"{"Mnist": (path: "data/mnist")}"#, Binarize::Dynamic),
            (
                r#"{"Mnist": (path: "data/mnist", binarize: Fixed)}"#,
                Binarize::Fixed,
            ),
            (
                r#"{"Mnist": (path: "data/mnist", binarize: None)}"#,
                Binarize::None,
            ),
            (
                r#"{"Mnist": (path: "data/mnist", binarize: Threshold(0.5))}"#,
                Binarize::Threshold(0.5),
            ),
        ] {
            let c: Box<dyn DatasetConfig> = ron::from_str(src).unwrap();
            assert!(
                format!("{c:?}").contains(&format!("{want:?}")),
                "{src}: {c:?}"
            );
        }
        let c: Box<dyn DatasetConfig> =
            serde_json::from_str(r#"{"Mnist": {"path": "data/mnist", "binarize": "None"}}"#)
                .unwrap();
        assert!(format!("{c:?}").contains("binarize: None"), "{c:?}");
        assert!(ron::from_str::<Box<dyn DatasetConfig>>(
            r#"{"Mnist": (path: "x", binarise: None)}"#
        )
        .is_err());
        let names = crate::registry::names(crate::registry::ComponentKind::Dataset);
        assert!(names.contains(&"Mnist"), "{names:?}");
    }
}
