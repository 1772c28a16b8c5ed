//! `carve` with every shipped plugin.

// Counts allocations, for `carve bench`'s per-step figures.
#[global_allocator]
static ALLOC: carve::alloc_count::Counting = carve::alloc_count::Counting;

fn main() {
    carve_plugins::link();
    carve_runner::main()
}
