//! Facade linking every plugin: a plugin crate that nothing names is not linked, and registers nothing.
//! A new plugin under `plugins/` is a dependency in this crate's Cargo.toml and an `extern crate` line here
//! (the test below fails until both are there).

extern crate carve_betavae;
extern crate carve_causalvae;
extern crate carve_dear;
extern crate carve_ladder;
extern crate carve_sparsity;

/// Call once (e.g. at the start of `main` or a test): naming this crate links it, and with it every plugin.
pub fn link() {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The package name in a Cargo.toml: the first `name = "..."` line.
    fn package_name(manifest: &str) -> Option<String> {
        manifest.lines().find_map(|l| {
            let v = l.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').to_string())
        })
    }

    #[test]
    fn every_plugin_folder_is_linked_here() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(here.join("Cargo.toml")).unwrap();
        let lib = std::fs::read_to_string(here.join("src/lib.rs")).unwrap();
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(here.parent().unwrap()).unwrap() {
            let dir = entry.unwrap().path();
            let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            let Some(name) = package_name(&text) else {
                continue;
            };
            if dir == here {
                continue;
            }
            let folder = dir.file_name().unwrap().to_string_lossy();
            let dependency = format!("{name} = {{ path = \"../{folder}\" }}");
            if !manifest.lines().any(|l| l.trim() == dependency) {
                missing.push(format!("plugins/all/Cargo.toml: `{dependency}`"));
            }
            let extern_crate = format!("extern crate {};", name.replace('-', "_"));
            if !lib.lines().any(|l| l.trim() == extern_crate) {
                missing.push(format!("plugins/all/src/lib.rs: `{extern_crate}`"));
            }
        }
        assert!(
            missing.is_empty(),
            "plugins not linked into carve-plugins (the runner and the tests would not see them); add\n{}",
            missing.join("\n")
        );
    }
}
