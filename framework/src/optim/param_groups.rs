//! Optimizer groups: a model's parameters split into named groups, each with its own [`AdamW`] (learning
//! rate, betas), its own checkpoint-key prefix and a share of the learning-rate schedule.
//!
//! A parameter belongs to the group it was tagged with when it was created ([`Params::in_group`]); an
//! untagged one to the group named after its path's first segment (`encoder.fc0.weight` → `encoder`) when
//! there is one, and otherwise to the default group.

use super::{AdamConfig, AdamW};
use crate::error::{Error, Result};
use crate::nn::Params;
use candle_core::{backprop::GradStore, Tensor};
use std::collections::HashMap;

/// One group to create: its name, optimizer settings and the prefix of its optimizer state in checkpoints.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub name: String,
    pub optimizer: AdamConfig,
    /// Prepended to every key of this group's optimizer state (empty: the keys as [`AdamW::state`] writes
    /// them, which at most one group may use).
    pub state_prefix: String,
}

impl GroupSpec {
    pub fn new(name: &str, optimizer: AdamConfig, state_prefix: &str) -> Self {
        Self {
            name: name.into(),
            optimizer,
            state_prefix: state_prefix.into(),
        }
    }
}

struct Group {
    name: String,
    prefix: String,
    optimizer: AdamW,
    base_lr: f64,
}

/// The optimizer groups of one parameter store, in the order of their specs.
pub struct ParamGroups {
    groups: Vec<Group>,
}

impl ParamGroups {
    /// Splits the parameters of `params`' store (in name order, as every optimizer sees them) into `specs`;
    /// a parameter that matches no group goes to `default`, which must be one of them.
    pub fn new(params: &Params, specs: Vec<GroupSpec>, default: &str) -> Result<Self> {
        let index = |name: &str| specs.iter().position(|s| s.name == name);
        let fallback = index(default).ok_or_else(|| {
            Error::msg(format!(
                "optimizer groups: the default group `{default}` is not among them"
            ))
        })?;
        if specs.iter().filter(|s| s.state_prefix.is_empty()).count() > 1 {
            return Err(Error::msg(
                "optimizer groups: at most one group may write its state without a prefix",
            ));
        }
        let mut vars: Vec<Vec<_>> = vec![Vec::new(); specs.len()];
        let mut named: Vec<_> = {
            let data = params.varmap().data().lock().expect("varmap lock");
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, var) in named {
            let tagged = params.group_of(&name);
            let g = match tagged {
                Some(group) => index(&group).ok_or_else(|| {
                    Error::msg(format!(
                        "parameter `{name}` is tagged with the optimizer group `{group}`, which this method does not create"
                    ))
                })?,
                None => name
                    .split('.')
                    .next()
                    .and_then(index)
                    .unwrap_or(fallback),
            };
            vars[g].push((name, var));
        }
        let groups = specs
            .into_iter()
            .zip(vars)
            .map(|(spec, vars)| {
                Ok(Group {
                    base_lr: spec.optimizer.lr,
                    optimizer: AdamW::new(vars, spec.optimizer)?,
                    name: spec.name,
                    prefix: spec.state_prefix,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { groups })
    }

    /// The group names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    /// The optimizer of the group at `index` (spec order).
    pub fn optimizer(&self, index: usize) -> &AdamW {
        &self.groups[index].optimizer
    }

    /// One optimizer step of the groups at `indices` (spec order) from `grads`.
    pub fn step(&mut self, indices: &[usize], grads: &GradStore) -> Result<()> {
        for &i in indices {
            self.groups[i].optimizer.step(grads)?;
        }
        Ok(())
    }

    /// One optimizer step of every group.
    pub fn step_all(&mut self, grads: &GradStore) -> Result<()> {
        for g in &mut self.groups {
            g.optimizer.step(grads)?;
        }
        Ok(())
    }

    /// Every group's optimizer state, its keys under the group's prefix.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = HashMap::new();
        for g in &self.groups {
            for (k, v) in g.optimizer.state()? {
                state.insert(format!("{}{k}", g.prefix), v);
            }
        }
        Ok(state)
    }

    /// Restores [`ParamGroups::state`]: each group reads the keys under its prefix (the unprefixed group
    /// every key no other group's prefix claims).
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let prefixes: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.prefix.clone())
            .filter(|p| !p.is_empty())
            .collect();
        for g in &mut self.groups {
            let own: HashMap<String, Tensor> = if g.prefix.is_empty() {
                state
                    .iter()
                    .filter(|(k, _)| !prefixes.iter().any(|p| k.starts_with(p.as_str())))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            } else {
                state
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&g.prefix)?.to_string(), v.clone())))
                    .collect()
            };
            g.optimizer.load_state(&own)?;
        }
        Ok(())
    }

    /// Sets every group's learning rate to its configured rate × `scale` (the schedule's factor).
    pub fn set_lr_scale(&mut self, scale: f64) {
        for g in &mut self.groups {
            g.optimizer.set_lr(g.base_lr * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Init;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn names(groups: &ParamGroups, i: usize) -> Vec<String> {
        let state = groups.optimizer(i).state().unwrap();
        let mut v: Vec<_> = state
            .keys()
            .filter_map(|k| k.strip_suffix(".m").map(str::to_string))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn tags_then_first_segment_then_default_and_state_round_trips() {
        let p = Params::new(VarMap::new(), Device::Cpu, 0);
        p.pp("encoder").get(&[2], "w", Init::Const(1.0)).unwrap();
        p.pp("prior").get(&[2], "f2", Init::Const(1.0)).unwrap();
        p.pp("prior")
            .in_group("adjacency")
            .get(&[2, 2], "A", Init::Const(0.0))
            .unwrap();
        p.pp("other").get(&[1], "b", Init::Const(0.0)).unwrap();
        let cfg = AdamConfig::default();
        let specs = vec![
            GroupSpec::new("encoder", cfg.clone(), "encoder/"),
            GroupSpec::new("prior", cfg.clone(), ""),
            GroupSpec::new("adjacency", cfg.clone(), "adjacency/"),
        ];
        let mut g = ParamGroups::new(&p, specs.clone(), "prior").unwrap();
        assert_eq!(names(&g, 0), ["encoder.w"]);
        assert_eq!(names(&g, 1), ["other.b", "prior.f2"]);
        assert_eq!(names(&g, 2), ["prior.A"]);
        let state = g.state().unwrap();
        assert!(state.contains_key("adjacency/prior.A.m") && state.contains_key("prior.f2.v"));
        g.load_state(&state).unwrap();
        assert!(ParamGroups::new(&p, specs.clone(), "nowhere").is_err());
        let e = ParamGroups::new(&p, specs[..2].to_vec(), "prior")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("prior.A") && e.contains("adjacency"), "{e}");
    }
}
