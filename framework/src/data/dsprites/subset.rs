//! Which scenes are the dataset's rows: the grid (or the scenes of a loaded file), narrowed by `fix`, then
//! `n_train` + `n_test` of them drawn without replacement with the seed. Rows are kept in scene order.

use super::grid::{FACTOR_NAMES, SIZES};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// The RNG stream of the row draw.
const STREAM: u64 = 0xD5_9817E5;

/// `fix` (factor name → index) as one optional index per factor; names match case-insensitively.
pub fn parse_fix(fix: &BTreeMap<String, usize>) -> Result<[Option<usize>; 5]> {
    let mut out = [None; 5];
    for (name, &v) in fix {
        let Some(j) = FACTOR_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
        else {
            return Err(Error::Data(format!(
                "Dsprites fix: unknown factor `{name}` (factors: {})",
                FACTOR_NAMES.join(", ")
            )));
        };
        if out[j].is_some() {
            return Err(Error::Data(format!(
                "Dsprites fix: `{}` is given twice",
                FACTOR_NAMES[j]
            )));
        }
        if v >= SIZES[j] {
            return Err(Error::Data(format!(
                "Dsprites fix: {} index {v} is out of range 0..={}",
                FACTOR_NAMES[j],
                SIZES[j] - 1
            )));
        }
        out[j] = Some(v);
    }
    Ok(out)
}

/// The chosen rows: a scene index per row (ascending) and the train and test rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    pub scenes: Vec<u32>,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Chooses `n_train` + `n_test` of `candidates` (scene indices, ascending). Defaults: `n_test` a tenth of the
/// candidates (at least one when there are two or more), `n_train` all the others. With every candidate used
/// the draw only decides which are test rows.
pub fn choose(
    candidates: &[u32],
    n_train: Option<usize>,
    n_test: Option<usize>,
    seed: u64,
    what: &str,
) -> Result<Rows> {
    let m = candidates.len();
    if m == 0 {
        return Err(Error::Data(format!("Dsprites: {what} has no scenes")));
    }
    let n_test = n_test.unwrap_or(if m >= 2 { (m / 10).max(1) } else { 0 });
    let n_train = match n_train {
        Some(n) => n,
        None => m.checked_sub(n_test).ok_or_else(|| {
            Error::Data(format!(
                "Dsprites: n_test = {n_test} but {what} has only {m} scenes"
            ))
        })?,
    };
    if n_train + n_test > m {
        return Err(Error::Data(format!(
            "Dsprites: n_train + n_test = {n_train} + {n_test} rows, but {what} has only {m} scenes"
        )));
    }
    if n_train + n_test == 0 {
        return Err(Error::Data(
            "Dsprites: n_train and n_test are both 0".into(),
        ));
    }
    let mut order: Vec<u32> = (0..m as u32).collect();
    if !(n_test == 0 && n_train == m) {
        Rng::derived(seed, STREAM).shuffle(&mut order);
    }
    // true = test, for each chosen candidate position.
    let mut chosen: Vec<(u32, bool)> = order[..n_test]
        .iter()
        .map(|&i| (i, true))
        .chain(order[n_test..n_test + n_train].iter().map(|&i| (i, false)))
        .collect();
    chosen.sort_unstable();
    let scenes = chosen
        .iter()
        .map(|&(i, _)| candidates[i as usize])
        .collect();
    let (mut train, mut test) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
    for (row, &(_, is_test)) in chosen.iter().enumerate() {
        if is_test {
            test.push(row)
        } else {
            train.push(row)
        }
    }
    Ok(Rows {
        scenes,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_names_factors_and_checks_their_range() {
        let f = BTreeMap::from([("posX".to_string(), 16), ("posy".to_string(), 3)]);
        assert_eq!(
            parse_fix(&f).unwrap(),
            [None, None, None, Some(16), Some(3)]
        );
        let e = parse_fix(&BTreeMap::from([("size".to_string(), 1)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`size`") && e.contains("shape, scale, orientation, posX, posY"),
            "{e}"
        );
        let e = parse_fix(&BTreeMap::from([("orientation".to_string(), 40)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("orientation index 40") && e.contains("0..=39"),
            "{e}"
        );
        let twice = BTreeMap::from([("posX".to_string(), 1), ("POSX".to_string(), 2)]);
        assert!(parse_fix(&twice).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn rows_are_a_seeded_draw_kept_in_scene_order() {
        let cand: Vec<u32> = (0..1000).map(|i| 3 * i).collect();
        let all = choose(&cand, None, None, 0, "the grid").unwrap();
        assert_eq!(all.scenes, cand);
        assert_eq!((all.train.len(), all.test.len()), (900, 100));
        let mut both: Vec<usize> = all.train.iter().chain(&all.test).copied().collect();
        both.sort();
        assert_eq!(both, (0..1000).collect::<Vec<_>>());
        let some = choose(&cand, Some(50), Some(20), 7, "the grid").unwrap();
        assert_eq!(some.scenes.len(), 70);
        assert!(some.scenes.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((some.train.len(), some.test.len()), (50, 20));
        assert_eq!(
            some,
            choose(&cand, Some(50), Some(20), 7, "the grid").unwrap()
        );
        assert_ne!(
            some.scenes,
            choose(&cand, Some(50), Some(20), 8, "the grid")
                .unwrap()
                .scenes
        );
        let train_only = choose(&cand, Some(1000), Some(0), 1, "the grid").unwrap();
        assert_eq!(
            (train_only.scenes, train_only.test.len()),
            (cand.clone(), 0)
        );
        let one = choose(&[5], None, None, 0, "x").unwrap();
        assert_eq!((one.train, one.test), (vec![0], vec![]));
    }

    #[test]
    fn too_many_rows_are_an_error() {
        let cand: Vec<u32> = (0..10).collect();
        let e = choose(&cand, Some(9), Some(2), 0, "the grid with fix")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("9 + 2") && e.contains("only 10 scenes") && e.contains("with fix"),
            "{e}"
        );
        assert!(choose(&cand, None, Some(11), 0, "g").is_err());
        assert!(choose(&cand, Some(0), Some(0), 0, "g").is_err());
        assert!(choose(&[], None, None, 0, "g")
            .unwrap_err()
            .to_string()
            .contains("no scenes"));
    }
}
