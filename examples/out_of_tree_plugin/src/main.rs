//! `carve` with the shipped plugins and this crate's components.

fn main() {
    carve_plugins::link();
    carve_example_plugin::link();
    carve_runner::main()
}
