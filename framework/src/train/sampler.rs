//! Minibatch order: each epoch is a fresh permutation of the training rows drawn from (seed, epoch), so the
//! batch of any step is known without replaying earlier steps, which makes resumed runs identical.

use crate::rng::Rng;

pub struct EpochSampler {
    rows: Vec<usize>,
    perm: Vec<usize>,
    epoch: Option<usize>,
    batch: usize,
    seed: u64,
}

impl EpochSampler {
    /// A config's batch size is checked to be in 1..=rows before training (see
    /// [`crate::config::check_run`]); here it is only kept in that range, so no input can make a step panic.
    pub fn new(rows: Vec<usize>, batch: usize, seed: u64) -> Self {
        let batch = batch.clamp(1, rows.len().max(1));
        Self {
            perm: rows.clone(),
            rows,
            epoch: None,
            batch,
            seed,
        }
    }

    /// Full batches per epoch (the remainder is dropped, as with `drop_last`).
    pub fn batches_per_epoch(&self) -> usize {
        (self.rows.len() / self.batch).max(1)
    }

    /// The rows of training step `step` (none when there are no rows).
    pub fn batch(&mut self, step: usize) -> &[usize] {
        if self.rows.is_empty() {
            return &[];
        }
        let per = self.batches_per_epoch();
        let epoch = step / per;
        if self.epoch != Some(epoch) {
            self.perm.clone_from(&self.rows);
            Rng::derived(self.seed, 1_000 + epoch as u64).shuffle(&mut self.perm);
            self.epoch = Some(epoch);
        }
        let k = step % per;
        &self.perm[k * self.batch..(k + 1) * self.batch]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_visits_each_row_once_and_steps_are_reproducible() {
        let mut s = EpochSampler::new((0..10).collect(), 3, 5);
        let mut seen: Vec<usize> = (0..3).flat_map(|k| s.batch(k).to_vec()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        let later = s.batch(7).to_vec();
        let mut fresh = EpochSampler::new((0..10).collect(), 3, 5);
        assert_eq!(fresh.batch(7), later.as_slice());
    }

    #[test]
    fn no_rows_give_empty_batches() {
        assert!(EpochSampler::new(Vec::new(), 4, 0).batch(3).is_empty());
    }
}
