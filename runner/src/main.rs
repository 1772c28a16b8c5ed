//! `carve` with every shipped plugin.

fn main() {
    carve_plugins::link();
    carve_runner::main()
}
