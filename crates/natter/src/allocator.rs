//! The server's allocator: mimalloc (version 2, see Cargo.toml), called the way Rust's
//! own `System` allocator calls malloc.
//!
//! Lines are allocated on the connection tasks' threads and freed on the hub's, messages
//! made on the hub's and freed on the store's: glibc spent half the server's time on
//! such frees under direct-message load, and mimalloc's per-page free lists take them
//! cheaply. With arena memory committed on demand (`.cargo/config.toml`) an idle client
//! also costs no more memory than with glibc. Figures in docs/performance.md.
//!
//! The `mimalloc` crate sends every request through `mi_malloc_aligned`, whose fast path
//! serves a size only from a page whose next free block already has the alignment, and
//! otherwise falls back to over-allocating. Nearly every Rust allocation asks for an
//! alignment of 8 or less, which every mimalloc block has (its size classes are whole
//! words), so those go straight to `mi_malloc`; only wider alignments take the aligned
//! calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every block mimalloc hands out has: one machine word.
const WORD_ALIGN: usize = std::mem::size_of::<usize>();

pub struct Mimalloc;

// SAFETY: every block comes from mimalloc and goes back to it; a block is handed out
// with at least the alignment its layout asks for (see `WORD_ALIGN`, or the aligned
// calls), and realloc keeps the alignment the block was made with.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            mi::mi_malloc(layout.size()) as *mut u8
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            mi::mi_zalloc(layout.size()) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size and alignment a program asks for comes back aligned, writable, and
    /// keeps its bytes through growing and shrinking.
    #[test]
    fn blocks_have_their_alignment_and_keep_their_bytes() {
        let allocator = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 12, 24, 40, 100, 1000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let block = allocator.alloc(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "size {size} align {align}");
                    std::ptr::write_bytes(block, 0xA5, size);
                    let grown = allocator.realloc(block, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xA5));
                    let shrunk = allocator.realloc(grown, layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0);
                    assert!((0..size.div_ceil(2)).all(|i| *shrunk.add(i) == 0xA5));
                    allocator.dealloc(shrunk, layout);

                    let zeroed = allocator.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0);
                    assert!((0..size).all(|i| *zeroed.add(i) == 0));
                    allocator.dealloc(zeroed, layout);
                }
            }
        }
    }
}
