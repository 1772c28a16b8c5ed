use super::*;
use crate::data::Split;

fn config(dataset: SyntheticDataset, n_train: usize, n_test: usize) -> Synthetic {
    Synthetic {
        dataset,
        n_train,
        n_test,
        ..Default::default()
    }
}

fn all_rows(ds: &dyn Dataset, split: Split) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let rows = ds.split(split).to_vec();
    let mut x = Vec::new();
    ds.fill_observations(&rows, &mut x);
    (x, ds.factors(&rows).unwrap(), ds.actions(&rows))
}

fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count() as f64;
    let m = v.clone().sum::<f64>() / n;
    let var = v.map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

const ALL: [SyntheticDataset; 8] = [
    SyntheticDataset::ActionSparsityTrivial,
    SyntheticDataset::ActionSparsityNonTrivial,
    SyntheticDataset::ActionSparsityNoSuffVar,
    SyntheticDataset::ActionSparsityNoGraphCrit,
    SyntheticDataset::TemporalSparsityTrivial,
    SyntheticDataset::TemporalSparsityNonTrivial,
    SyntheticDataset::TemporalSparsityNoSuffVar,
    SyntheticDataset::TemporalSparsityNoGraphCrit,
];

#[test]
fn the_config_parses_from_ron_with_defaults_and_snake_case_names() {
    let text = r#"{"Synthetic": (dataset: temporal_sparsity_no_graph_crit, manifold: linear, z_dim: 4, x_dim: 6, n_train: 50, n_test: 10)}"#;
    let cfg: Box<dyn DatasetConfig> = ron::from_str(text).unwrap();
    let ds = cfg.build(0).unwrap();
    assert_eq!(ds.spec().obs_shape, vec![2, 6]);
    let empty: Box<dyn DatasetConfig> = ron::from_str(r#"{"Synthetic": ()}"#).unwrap();
    let round: Synthetic = ron::from_str(&ron::to_string(&Synthetic::default()).unwrap()).unwrap();
    assert_eq!(round, Synthetic::default());
    assert!(format!("{empty:?}").contains("ActionSparsityNonTrivial"));
    for d in ALL {
        let name = serde_json::to_string(&d).unwrap();
        let back: SyntheticDataset = serde_json::from_str(&name).unwrap();
        assert_eq!(back, d);
        assert!(name.contains("_sparsity_"), "{name}");
    }
    let bad =
        ron::from_str::<Box<dyn DatasetConfig>>(r#"{"Synthetic": (dataset: action_sparsity)}"#);
    assert!(bad.is_err());
}

#[test]
fn shapes_and_spec_of_action_and_temporal_data() {
    let ds = config(SyntheticDataset::ActionSparsityNonTrivial, 30, 7)
        .generate()
        .unwrap();
    let spec = ds.spec();
    assert_eq!(spec.obs_shape, vec![20]);
    assert!(!spec.sequence && spec.graph.is_none() && spec.label_names.is_empty());
    assert_eq!(spec.action_dim, 10);
    assert_eq!(spec.factor_names[3], "z3");
    assert_eq!(spec.factors_per_row(), 10);
    assert_eq!((ds.len(), ds.split(Split::Train).len()), (37, 30));
    assert_eq!(ds.split(Split::Test), (30..37).collect::<Vec<_>>());
    let (x, z, a) = all_rows(&ds, Split::All);
    assert_eq!(
        (x.len(), z.len(), a.unwrap().len()),
        (37 * 20, 37 * 10, 37 * 10)
    );
    assert!(ds.labels(&[0]).is_none());
    let g = &spec.latent_graphs[0];
    assert_eq!(
        (g.name.as_str(), g.rows(), g.cols(), g.cols_are_latents),
        ("a", 10, 10, false)
    );

    let cfg = Synthetic {
        z_dim: 4,
        x_dim: 9,
        ..config(SyntheticDataset::TemporalSparsityNonTrivial, 12, 5)
    };
    let ds = cfg.generate().unwrap();
    let spec = ds.spec();
    assert_eq!(spec.obs_shape, vec![2, 9]);
    assert!(spec.sequence && spec.frames() == 2 && spec.action_dim == 0);
    assert_eq!(spec.factors_per_row(), 8);
    let (x, z, a) = all_rows(&ds, Split::All);
    assert_eq!((x.len(), z.len(), a), (17 * 18, 17 * 8, None));
    let g = &spec.latent_graphs[0];
    assert_eq!(
        (g.name.as_str(), g.rows(), g.cols(), g.cols_are_latents),
        ("z", 4, 4, true)
    );

    // a_dim other than z_dim (one extra, unused action)
    let cfg = Synthetic {
        a_dim: 11,
        ..config(SyntheticDataset::ActionSparsityNoSuffVar, 5, 5)
    };
    let ds = cfg.generate().unwrap();
    assert_eq!(ds.spec().action_dim, 11);
    assert_eq!(ds.spec().latent_graphs[0].cols(), 11);
    assert_eq!(ds.actions(&[9]).unwrap().len(), 11);
}

#[test]
fn true_graphs_have_the_reference_edge_counts() {
    let edges = |d| config(d, 2, 2).spec().unwrap().latent_graphs[0].edges();
    use SyntheticDataset::*;
    assert_eq!(edges(ActionSparsityTrivial), 10);
    assert_eq!(edges(ActionSparsityNonTrivial), 20);
    assert_eq!(edges(ActionSparsityNoSuffVar), 20);
    assert_eq!(edges(ActionSparsityNoGraphCrit), 20);
    assert_eq!(edges(TemporalSparsityTrivial), 10);
    assert_eq!(edges(TemporalSparsityNonTrivial), 55);
    assert_eq!(edges(TemporalSparsityNoSuffVar), 55);
    assert_eq!(edges(TemporalSparsityNoGraphCrit), 50);
    let g = config(ActionSparsityNonTrivial, 2, 2)
        .spec()
        .unwrap()
        .latent_graphs[0]
        .clone();
    // G^a_ij = 1 iff j = i or j = i − 1 (mod 10)
    assert!(g.adj[0][0] && g.adj[0][9] && g.adj[5][4] && !g.adj[5][6]);
    let t = config(TemporalSparsityNonTrivial, 2, 2)
        .spec()
        .unwrap()
        .latent_graphs[0]
        .clone();
    assert!(t.adj[9][0] && !t.adj[0][9]);
}

#[test]
fn same_config_gives_the_same_data_and_splits_differ() {
    for d in [
        SyntheticDataset::ActionSparsityNoSuffVar,
        SyntheticDataset::TemporalSparsityNonTrivial,
    ] {
        let cfg = config(d, 200, 50);
        let (a, b) = (cfg.generate().unwrap(), cfg.generate().unwrap());
        assert_eq!(all_rows(&a, Split::All), all_rows(&b, Split::All));
        let (xtr, ztr, atr) = all_rows(&a, Split::Train);
        let (xte, zte, ate) = all_rows(&a, Split::Test);
        assert_ne!(&xtr[..xte.len()], &xte[..]);
        assert_ne!(&ztr[..zte.len()], &zte[..]);
        if let (Some(atr), Some(ate)) = (atr, ate) {
            // the generator RNG is re-created per split, as in the reference: the actions coincide
            assert_eq!(&atr[..ate.len()], &ate[..]);
        }
        // another mixing seed gives other observations from the same latents' distribution
        let other = Synthetic {
            mixing_seed: 7,
            ..cfg.clone()
        };
        assert_ne!(all_rows(&other.generate().unwrap(), Split::Train).0, xtr);
    }
    // the temporal test latents are independent of the training ones
    let ds = config(SyntheticDataset::TemporalSparsityTrivial, 500, 500)
        .generate()
        .unwrap();
    let (_, ztr, _) = all_rows(&ds, Split::Train);
    let (_, zte, _) = all_rows(&ds, Split::Test);
    let (_, s) = mean_std(ztr.iter().zip(&zte).map(|(a, b)| (a - b) as f64));
    assert!(s > 1.0, "{s}");
}

#[test]
fn observations_are_standardised_per_dimension_before_the_noise() {
    for d in [
        SyntheticDataset::ActionSparsityTrivial,
        SyntheticDataset::TemporalSparsityNoGraphCrit,
    ] {
        for manifold in [Manifold::Nn, Manifold::Linear] {
            let clean = Synthetic {
                obs_noise_std: 0.0,
                manifold,
                ..config(d, 3000, 500)
            };
            let ds = clean.generate().unwrap();
            for split in [Split::Train, Split::Test] {
                let (x, _, _) = all_rows(&ds, split);
                for j in 0..20 {
                    // both frames of a temporal pair are standardised together
                    let (m, s) = mean_std(x.iter().skip(j).step_by(20).map(|&v| v as f64));
                    assert!(
                        m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5,
                        "{d:?} {j}: {m} {s}"
                    );
                }
            }
            // the noise is added afterwards, with the requested std, and nothing else changes
            let noisy = Synthetic {
                obs_noise_std: 0.01,
                ..clean
            };
            let (x0, _, _) = all_rows(&ds, Split::All);
            let (x1, _, _) = all_rows(&noisy.generate().unwrap(), Split::All);
            let (m, s) = mean_std(x1.iter().zip(&x0).map(|(a, b)| (a - b) as f64));
            assert!(m.abs() < 1e-3 && (s - 0.01).abs() < 5e-4, "{m} {s}");
        }
    }
}

/// A residual of latent `i` from a row's latents and actions.
type Residual = dyn Fn(&[f64], &[f64], usize) -> f64;

#[test]
fn generated_rows_follow_the_mechanisms() {
    use std::f64::consts::PI;
    let n = 4000;
    let residual_std = |d: SyntheticDataset, f: &Residual| {
        let ds = config(d, n, 10).generate().unwrap();
        let (_, z, a) = all_rows(&ds, Split::Train);
        let z: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let a: Vec<f64> = a.unwrap_or_default().iter().map(|&v| v as f64).collect();
        let k = if ds.spec().sequence { 20 } else { 10 };
        let res: Vec<f64> = (0..n)
            .flat_map(|r| {
                let zr = z[r * k..(r + 1) * k].to_vec();
                let ar = if a.is_empty() {
                    Vec::new()
                } else {
                    a[r * 10..(r + 1) * 10].to_vec()
                };
                (0..10).map(move |i| f(&zr, &ar, i)).collect::<Vec<_>>()
            })
            .collect();
        mean_std(res.iter().copied())
    };
    let close = |(m, s): (f64, f64)| m.abs() < 1e-3 && (s - 1e-2).abs() < 1e-3;
    // action trivial: z_i − sin(a_i) ~ N(0, 1e-4)
    let r = residual_std(SyntheticDataset::ActionSparsityTrivial, &|z, a, i| {
        z[i] - a[i].sin()
    });
    assert!(close(r), "{r:?}");
    // action non-trivial: z_i − Σ_{j ∈ {i, i−1}} sin(r_i a_j + s_i)
    let r = residual_std(SyntheticDataset::ActionSparsityNonTrivial, &|z, a, i| {
        let (ri, si) = ((i + 3) as f64 / PI, i as f64);
        z[i] - (ri * a[i] + si).sin() - (ri * a[(i + 9) % 10] + si).sin()
    });
    assert!(close(r), "{r:?}");
    // temporal trivial: z¹ − z⁰ − ½ sin z⁰
    let r = residual_std(SyntheticDataset::TemporalSparsityTrivial, &|z, _, i| {
        z[10 + i] - z[i] - 0.5 * z[i].sin()
    });
    assert!(close(r), "{r:?}");
    // temporal non-trivial: z¹_i − z⁰_i − ½ Σ_{j ≤ i} sin(r_i z⁰_j + s_i)
    let r = residual_std(SyntheticDataset::TemporalSparsityNonTrivial, &|z, _, i| {
        let (ri, si) = ((i + 3) as f64 / PI, i as f64);
        z[10 + i] - z[i] - 0.5 * (0..=i).map(|j| (ri * z[j] + si).sin()).sum::<f64>()
    });
    assert!(close(r), "{r:?}");
    // temporal block: z¹_i depends on its own half only
    let r = residual_std(SyntheticDataset::TemporalSparsityNoGraphCrit, &|z, _, i| {
        let (ri, si) = ((i + 3) as f64 / PI, i as f64);
        let block = if i < 5 { 0..5 } else { 5..10 };
        z[10 + i] - z[i] - 0.5 * block.map(|j| (ri * z[j] + si).sin()).sum::<f64>()
    });
    assert!(close(r), "{r:?}");
    // z⁰ ~ N(0, I) and a ~ U(−2, 2)
    let ds = config(SyntheticDataset::TemporalSparsityTrivial, n, 10)
        .generate()
        .unwrap();
    let (_, z, _) = all_rows(&ds, Split::Train);
    let (m, s) = mean_std(z.chunks(20).map(|c| c[3] as f64));
    assert!(m.abs() < 0.05 && (s - 1.0).abs() < 0.05, "{m} {s}");
    let ds = config(SyntheticDataset::ActionSparsityTrivial, n, 10)
        .generate()
        .unwrap();
    let (_, _, a) = all_rows(&ds, Split::Train);
    let a = a.unwrap();
    assert!(a.iter().all(|v| (-2.0..2.0).contains(v)));
    let (m, s) = mean_std(a.iter().map(|&v| v as f64));
    assert!(
        m.abs() < 0.05 && (s - 4.0 / 12f64.sqrt()).abs() < 0.02,
        "{m} {s}"
    );
}

#[test]
fn linear_mixing_is_linearly_invertible_and_nn_mixing_is_not() {
    use crate::metrics::linear_r;
    let r_of = |manifold| {
        let ds = Synthetic {
            manifold,
            ..config(SyntheticDataset::ActionSparsityTrivial, 5000, 10)
        }
        .generate()
        .unwrap();
        let (x, z, _) = all_rows(&ds, Split::Train);
        let f = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
        linear_r(&f(z), 10, &f(x), 20).unwrap()
    };
    let (lin, nn) = (r_of(Manifold::Linear), r_of(Manifold::Nn));
    eprintln!("linear R of z on x: linear mixing {lin:.4}, nn mixing {nn:.4}");
    assert!(lin > 0.999, "linear: {lin}");
    assert!(nn < 0.99 && nn > 0.5, "nn: {nn}");
}

#[test]
fn bad_configs_are_errors_not_panics() {
    use SyntheticDataset::*;
    let cases = [
        Synthetic {
            z_dim: 0,
            ..config(ActionSparsityTrivial, 5, 5)
        },
        Synthetic {
            z_dim: 21,
            ..config(ActionSparsityTrivial, 5, 5)
        },
        Synthetic {
            z_dim: 5,
            ..config(TemporalSparsityNoGraphCrit, 5, 5)
        },
        Synthetic {
            z_dim: 5,
            ..config(ActionSparsityNoGraphCrit, 5, 5)
        },
        Synthetic {
            a_dim: 3,
            ..config(ActionSparsityTrivial, 5, 5)
        },
        Synthetic {
            a_dim: 3,
            ..config(ActionSparsityNonTrivial, 5, 5)
        },
        Synthetic {
            a_dim: 10,
            ..config(TemporalSparsityTrivial, 5, 5)
        },
        config(ActionSparsityTrivial, 1, 5),
        config(ActionSparsityTrivial, 5, 0),
        Synthetic {
            obs_noise_std: -1.0,
            ..config(ActionSparsityTrivial, 5, 5)
        },
        Synthetic {
            transition_var: f64::NAN,
            ..config(ActionSparsityTrivial, 5, 5)
        },
        config(ActionSparsityTrivial, usize::MAX, 5),
        config(TemporalSparsityTrivial, 1 << 40, 5),
    ];
    for c in cases {
        let e = c
            .generate()
            .err()
            .unwrap_or_else(|| panic!("{c:?} should fail"));
        assert!(e.to_string().contains("Synthetic"), "{e}");
    }
}

#[test]
fn generating_1e5_rows_is_fast() {
    for d in [
        SyntheticDataset::ActionSparsityNonTrivial,
        SyntheticDataset::TemporalSparsityNonTrivial,
    ] {
        let t = std::time::Instant::now();
        let ds = config(d, 90_000, 10_000).generate().unwrap();
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{d:?}: 1e5 rows in {secs:.3} s");
        assert_eq!(ds.len(), 100_000);
        assert!(secs < 10.0, "{secs}");
    }
}
