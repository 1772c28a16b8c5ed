//! Every shipped sweep in `sweeps/` expands, and each of its configurations (at small sizes) builds with its data
//! and model and passes the checks training makes before step 1.

use carve::sweep::{check_runs, Sweep};
use carve_tests::{configs_dir, link, small_for};

#[test]
fn every_shipped_sweep_expands_and_its_runs_pass_the_pre_start_checks() {
    link();
    let dir = configs_dir().join("../sweeps");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let plain = Sweep::load(&file, &[]).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(plain.runs.len() >= 3, "{}", file.display());
        let small = Sweep::load(&file, &small_for(&plain.base, 2))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let all: Vec<usize> = (0..small.runs.len()).collect();
        check_runs(&small, &all, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}
