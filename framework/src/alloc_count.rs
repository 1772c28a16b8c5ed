//! A global allocator that counts calls and bytes, so `carve bench` can show what a training step
//! allocates. A binary opts in with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: carve::alloc_count::Counting = carve::alloc_count::Counting;
//! ```
//!
//! and [`snapshot`] then reads the counts; without it [`snapshot`] is `None`. The cost is two relaxed
//! atomic adds per allocation, next to the thousands of bytes each of a training step's allocations holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static CALLS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// [`System`], counting.
pub struct Counting;

fn note(bytes: usize) {
    CALLS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
    if !INSTALLED.load(Relaxed) {
        INSTALLED.store(true, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only atomics (it never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// Allocation calls and bytes requested so far in the process, when [`Counting`] is the global allocator.
pub fn snapshot() -> Option<(u64, u64)> {
    INSTALLED
        .load(Relaxed)
        .then(|| (CALLS.load(Relaxed), BYTES.load(Relaxed)))
}
