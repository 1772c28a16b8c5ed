//! The shipped configs that `extends` a base resolve to exactly the full configs they replace: each full copy is
//! kept under `tests/fixtures/full_configs/` at the same relative path as its short form under `configs/`.

use carve::config::Experiment;
use std::path::Path;

fn fixtures(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("fixtures dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            fixtures(&p, out);
        } else if p.extension().is_some_and(|x| x == "ron") {
            out.push(p);
        }
    }
}

#[test]
fn extending_configs_resolve_to_their_full_copies() {
    carve_tests::link();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/full_configs");
    let mut full = Vec::new();
    fixtures(&root, &mut full);
    assert!(full.len() >= 11, "fixtures missing: {full:?}");
    for copy in full {
        let rel = copy.strip_prefix(&root).unwrap();
        let short = carve_tests::configs_dir().join(rel);
        let text = std::fs::read_to_string(&short).unwrap();
        assert!(
            text.contains("extends:"),
            "{}: no longer extends a base",
            short.display()
        );
        let resolved = Experiment::load(&short, &[])
            .unwrap_or_else(|e| panic!("{}: {e}", short.display()))
            .to_ron()
            .unwrap();
        let expected = Experiment::load(&copy, &[])
            .unwrap_or_else(|e| panic!("{}: {e}", copy.display()))
            .to_ron()
            .unwrap();
        assert_eq!(
            resolved,
            expected,
            "{} differs from its full copy",
            rel.display()
        );
    }
}
