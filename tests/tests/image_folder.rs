//! A dataset written to disk reads back through the image-folder loader with the same split, labels and pixels.

use carve::data::{image_folder, pendulum, write_image_dataset, Dataset, Split};

#[test]
fn written_pendulum_reads_back_identically() {
    let data = pendulum::generate(16, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_image_dataset(&data, dir.path()).unwrap();
    let back = image_folder::load(dir.path(), 4).unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(back.split(Split::Test).len(), data.split(Split::Test).len());
    assert_eq!(back.spec().obs_shape, data.spec().obs_shape);
    assert_eq!(back.spec().label_names, data.spec().factor_names);
    // The loader lists train/ then test/, each sorted by name: match rows by file name.
    for &r in data.split(Split::Test).iter().take(50) {
        let name = data.file_name(r);
        let b = (0..back.len())
            .find(|&k| back.file_name(k) == name)
            .expect("file present");
        assert!(
            back.split(Split::Test).contains(&b),
            "{name} should be a test image"
        );
        let (x, y) = (data.factors(&[r]).unwrap(), back.labels(&[b]).unwrap());
        for (u, v) in x.iter().zip(&y) {
            assert!((u - v).abs() < 1e-5, "{name}: {x:?} vs {y:?}");
        }
        let (mut p, mut q) = (Vec::new(), Vec::new());
        data.fill_observations(&[r], &mut p);
        back.fill_observations(&[b], &mut q);
        assert_eq!(p, q, "{name}: pixels differ after the PNG round trip");
    }
}
