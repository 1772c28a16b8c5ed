//! The compatibility matrix, generated from the registry: each registered part, what it needs and provides,
//! whether the shipped kinds of data meet its data needs, and which methods take parts of its kind
//! (`carve list --matrix`).

use crate::registry::{self, ComponentInfo, ComponentKind};
use crate::requirements::{DataOffers, Need};

/// The kinds of data carve ships, as the requirement check sees them.
pub fn data_profiles() -> Vec<(&'static str, DataOffers)> {
    vec![
        (
            "Pendulum",
            DataOffers {
                labels: true,
                graph: true,
                images: true,
                ..Default::default()
            },
        ),
        (
            "Synthetic action",
            DataOffers {
                actions: true,
                rows: true,
                ..Default::default()
            },
        ),
        (
            "Synthetic temporal",
            DataOffers {
                sequence: true,
                rows: true,
                ..Default::default()
            },
        ),
        (
            "ImageFolder (no labels.csv)",
            DataOffers {
                images: true,
                ..Default::default()
            },
        ),
    ]
}

/// The part kinds of models: the ones methods take.
const PART_KINDS: [ComponentKind; 7] = [
    ComponentKind::Encoder,
    ComponentKind::CausalLayer,
    ComponentKind::Prior,
    ComponentKind::Decoder,
    ComponentKind::Discriminator,
    ComponentKind::Transition,
    ComponentKind::Objective,
];

fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        "–".into()
    } else {
        items.iter().map(show).collect::<Vec<_>>().join(", ")
    }
}

/// Whether `c`'s data needs hold on `data` (needs on other parts are not judged here).
fn fits(c: &ComponentInfo, data: &DataOffers) -> bool {
    c.needs.iter().all(|&n| data.meets(n).unwrap_or(true))
}

/// The matrix as a Markdown table: one row per registered part.
pub fn matrix() -> String {
    let profiles = data_profiles();
    let methods = registry::methods();
    let mut out = String::from("| part | kind | needs | provides |");
    for (name, _) in &profiles {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str(" methods |\n|---|---|---|---|");
    out.push_str(&"---|".repeat(profiles.len()));
    out.push_str("---|\n");
    for c in registry::components() {
        if !PART_KINDS.contains(&c.kind) {
            continue;
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} |",
            c.name,
            c.kind.label(),
            list(c.needs, |n: &Need| n.describe()),
            list(c.provides, |f| f.describe().to_string()),
        ));
        for (_, data) in &profiles {
            out.push_str(if fits(c, data) { " ✓ |" } else { " ✗ |" });
        }
        let takers: Vec<&str> = methods
            .iter()
            .filter(|m| m.slots.contains(&c.kind))
            .map(|m| m.name)
            .collect();
        out.push_str(&format!(" {} |\n", list(&takers, |s| s.to_string())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_a_row_per_part_and_judges_data_needs() {
        let m = matrix();
        let header = m.lines().next().unwrap();
        assert!(
            header.contains("Pendulum") && header.contains("Synthetic action"),
            "{header}"
        );
        let conv = m
            .lines()
            .find(|l| l.starts_with("| Conv | encoder"))
            .expect("a row for the Conv encoder");
        // Images: fits the pendulum, not the synthetic rows.
        let cells: Vec<&str> = conv.split('|').map(str::trim).collect();
        assert_eq!(&cells[5..9], &["✓", "✗", "✗", "✓"], "{conv}");
        let dag = m.lines().find(|l| l.starts_with("| DagPenalty |")).unwrap();
        assert!(dag.contains("a learned causal graph"), "{dag}");
    }
}
