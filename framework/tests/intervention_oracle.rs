//! The intervention evaluator checked against the ground truth: a "method" that answers do() with the simulator's
//! own render of the intervened scene must score near-perfectly (up to the regressor's error), and one that
//! ignores do() must fail on descendants. Both run through the registered `intervention` metric.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use carve::components::Do;
use carve::config::Experiment;
use carve::data::{make_batch, Batch, Dataset, Split};
use carve::method::{Method, StepReport};
use carve::oracle::{intervention_accuracy, InterventionEvalConfig, RegressorConfig};
use carve::rng::Rng;
use carve::train::Session;
use std::collections::HashMap;
use std::sync::Arc;

const SIZE: usize = 32;

/// Knows the true factors of every test image (looked up by its pixels) and renders the simulator's answer.
struct SimulatorMethod {
    data: Arc<dyn Dataset>,
    factors_of: HashMap<Vec<u8>, Vec<f32>>,
    /// When false, do() is ignored and the input comes back unchanged (the negative control).
    obeys_do: bool,
    varmap: VarMap,
}

fn key(pixels: &[f32]) -> Vec<u8> {
    pixels.iter().map(|v| (v * 255.0).round() as u8).collect()
}

impl SimulatorMethod {
    fn new(data: Arc<dyn Dataset>, obeys_do: bool) -> Self {
        let rows = data.split(Split::Test).to_vec();
        let k = data.spec().factor_names.len();
        let d = data.spec().obs_len();
        let mut obs = Vec::new();
        data.fill_observations(&rows, &mut obs);
        let factors = data.factors(&rows).unwrap();
        let factors_of = obs
            .chunks_exact(d)
            .zip(factors.chunks_exact(k))
            .map(|(x, f)| (key(x), f.to_vec()))
            .collect();
        Self {
            data,
            factors_of,
            obeys_do,
            varmap: VarMap::new(),
        }
    }

    fn factors(&self, x: &Tensor) -> Vec<Vec<f32>> {
        let d = self.data.spec().obs_len();
        let v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.chunks_exact(d)
            .map(|img| self.factors_of[&key(img)].clone())
            .collect()
    }
}

impl Method for SimulatorMethod {
    fn train_step(&mut self, _: &Batch, _: usize, _: &mut Rng) -> carve::Result<StepReport> {
        unimplemented!("evaluation only")
    }
    fn evaluate(&self, _: &Batch) -> carve::Result<StepReport> {
        unimplemented!("evaluation only")
    }
    fn encode(&self, x: &Tensor) -> carve::Result<Tensor> {
        let f: Vec<f32> = self.factors(x).concat();
        Ok(Tensor::from_vec(f, (x.dims()[0], 4), x.device())?)
    }
    fn decode(&self, _: &Tensor) -> carve::Result<Tensor> {
        unimplemented!("evaluation only")
    }
    fn reconstruct(&self, x: &Tensor) -> carve::Result<Tensor> {
        Ok(x.clone())
    }
    /// Node values are the factors themselves (slope 1 in the evaluator's calibration).
    fn node_values(&self, x: &Tensor) -> carve::Result<Option<Tensor>> {
        Ok(Some(self.encode(x)?))
    }
    fn intervene(&self, x: &Tensor, dos: &[Do]) -> carve::Result<Tensor> {
        if !self.obeys_do {
            return Ok(x.clone());
        }
        let mut f = Vec::new();
        for row in self.factors(x) {
            f.extend(self.data.simulate_do(&row, dos)?);
        }
        let pixels = self.data.render(&f)?;
        Ok(Tensor::from_vec(pixels, x.dims(), x.device())?)
    }
    fn latent_dim(&self) -> usize {
        4
    }
    fn varmaps(&self) -> Vec<&VarMap> {
        vec![&self.varmap]
    }
    fn optimizer_state(&self) -> carve::Result<HashMap<String, Tensor>> {
        Ok(HashMap::new())
    }
    fn load_optimizer_state(&mut self, _: &HashMap<String, Tensor>) -> carve::Result<()> {
        Ok(())
    }
    fn set_lr_scale(&mut self, _: f64) {}
}

fn session(obeys_do: bool, cache: &std::path::Path) -> Session {
    let exp = Experiment::parse(
        &format!(
            r#"(name: "oracle-test", data: {{"Pendulum": (size: {SIZE}, channels: 3)}},
                model: {{"Elbo": (latent_dim: 4, encoder: {{"Mlp": (hidden: [8])}}, decoder: {{"Mlp": (hidden: [8])}})}},
                train: (steps: 1))"#
        ),
        "test",
        &[],
    )
    .unwrap();
    let data = exp.data.build(0).unwrap();
    let method = Box::new(SimulatorMethod::new(data.clone(), obeys_do));
    Session {
        exp,
        data,
        method,
        device: Device::Cpu,
        run_dir: cache.to_path_buf(),
    }
}

fn config(cache: &std::path::Path) -> InterventionEvalConfig {
    InterventionEvalConfig {
        rows: 64,
        values: 4,
        tolerance: 1.0,
        cache_dir: Some(cache.to_path_buf()),
        regressor: RegressorConfig {
            steps: 600,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn simulator_answers_score_high_and_ignoring_do_scores_low() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());

    let truth = intervention_accuracy(&session(true, dir.path()).eval_context(), &cfg).unwrap();
    let show = |m: &std::collections::BTreeMap<String, f64>| {
        m.iter()
            .map(|(k, v)| format!("{k} = {v:.3}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    eprintln!("simulator method:\n{}", show(&truth));
    // The instrument itself: a few tenths of a label unit on real test images.
    for f in ["shadow_length", "shadow_position"] {
        assert!(truth[&format!("oracle_mae_{f}")] < 0.5, "{}", show(&truth));
    }
    assert!(truth["intervention_acc"] > 0.9, "{}", show(&truth));
    for f in ["shadow_length", "shadow_position"] {
        assert!(
            truth[&format!("intervention_acc_{f}")] > 0.85,
            "{}",
            show(&truth)
        );
    }
    assert!(truth["intervention_drift"] < 0.5, "{}", show(&truth));
    // Every factor is a non-descendant of some do() (of itself never), so each has its own drift.
    for f in [
        "pendulum_angle",
        "light_angle",
        "shadow_length",
        "shadow_position",
    ] {
        assert!(
            truth[&format!("intervention_drift_{f}")] < 0.75,
            "{}",
            show(&truth)
        );
    }
    assert!(truth["intervention_slope_shadow_length"] > 0.999);
    // A perfect reconstruction puts the model's ceiling at the instrument's floor.
    assert_eq!(
        truth["intervention_acc_ceiling"],
        truth["intervention_acc_floor"]
    );

    // The regressor is cached: the second session loads it.
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "safetensors"))
            .count(),
        1
    );
    let ignored = intervention_accuracy(&session(false, dir.path()).eval_context(), &cfg).unwrap();
    eprintln!("ignores do():\n{}", show(&ignored));
    assert!(
        ignored["intervention_acc"] < truth["intervention_acc"] - 0.3,
        "{}",
        show(&ignored)
    );
    assert!(ignored["intervention_acc_target"] < 0.5);
    // A do(pendulum or light) leaves the shadow's position within one unit only a quarter of the time.
    assert!(ignored["intervention_acc_shadow_position"] < 0.5);
    // Ignoring do() moves nothing, so there is no drift: drift alone does not certify an intervention.
    assert!(ignored["intervention_drift"] < 1e-6);
    // Its encoder and generator are perfect, so the ceiling stays high and the whole gap is the causal layer's.
    assert_eq!(
        ignored["intervention_acc_ceiling"],
        truth["intervention_acc_ceiling"]
    );
    assert!(ignored["intervention_acc_ceiling"] > ignored["intervention_acc"] + 0.3);
}

#[test]
fn simulate_do_propagates_to_descendants_only() {
    let exp_data = session(true, std::path::Path::new("/nonexistent")).data;
    let rows = &exp_data.split(Split::Test)[..1];
    let f = exp_data.factors(rows).unwrap();
    // do(shadow_length): only that factor changes.
    let g = exp_data
        .simulate_do(
            &f,
            &[Do {
                node: 2,
                value: 7.25,
            }],
        )
        .unwrap();
    assert_eq!((g[0], g[1], g[2], g[3]), (f[0], f[1], 7.25, f[3]));
    // do(light): the shadow follows the generator's closed forms, the pendulum stays.
    let h = exp_data
        .simulate_do(
            &f,
            &[Do {
                node: 1,
                value: 120.0,
            }],
        )
        .unwrap();
    let (len, mid) = carve::data::pendulum::shadow_closed_form(
        carve::data::pendulum::theta_of(f[0] as f64),
        carve::data::pendulum::phi_of(120.0),
    );
    assert_eq!(h[0], f[0]);
    assert!((h[2] as f64 - len).abs() < 1e-3 && (h[3] as f64 - mid).abs() < 1e-3);
    // The unintervened scene re-renders to the dataset's own image.
    let batch = make_batch(exp_data.as_ref(), rows, &Device::Cpu, &mut Vec::new()).unwrap();
    let same = exp_data.simulate_do(&f, &[]).unwrap();
    let rendered = exp_data.render(&same).unwrap();
    let original = batch.x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let diff = rendered
        .iter()
        .zip(&original)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1.5 / 255.0, "max diff {diff}");
    assert!(exp_data
        .simulate_do(
            &f,
            &[Do {
                node: 9,
                value: 0.0
            }]
        )
        .is_err());
}
