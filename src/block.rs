//! Free blocks and the intrusive lists that carry them.
//!
//! A free block stores the link to the next free block in its first word,
//! so caches, bundles and slabs keep their free blocks without any memory of
//! their own. Every class is at least 16 bytes, so a word always fits.

use core::ptr;

/// A free block, seen as a list node.
#[repr(C)]
pub(crate) struct Block {
    pub next: *mut Block,
}

/// A singly linked list of free blocks with its length: a per-CPU cache's
/// contents, or a bundle on its way to or from the depot.
#[derive(Clone, Copy)]
pub(crate) struct BlockList {
    pub head: *mut Block,
    pub len: u32,
}

impl BlockList {
    pub const EMPTY: BlockList = BlockList {
        head: ptr::null_mut(),
        len: 0,
    };

    /// Removes the first block, or returns null when empty.
    #[inline(always)]
    pub fn pop(&mut self) -> *mut Block {
        let block = self.head;
        if !block.is_null() {
            // SAFETY: a non-null head is a free block owned by this list, so
            // its first word is the list link.
            self.head = unsafe { (*block).next };
            self.len -= 1;
        }
        block
    }

    /// Adds a free block at the front.
    ///
    /// # Safety
    /// `block` is a free block of at least one word that nothing else uses.
    #[inline(always)]
    pub unsafe fn push(&mut self, block: *mut Block) {
        // SAFETY: the caller hands the block over; its first word is ours.
        unsafe { (*block).next = self.head };
        self.head = block;
        self.len += 1;
    }

    /// Splits off the first `n` blocks (all of them if fewer) as a new list.
    pub fn split_front(&mut self, n: u32) -> BlockList {
        if n >= self.len {
            return core::mem::replace(self, BlockList::EMPTY);
        }
        if n == 0 {
            return BlockList::EMPTY;
        }
        let head = self.head;
        let mut last = head;
        for _ in 1..n {
            // SAFETY: fewer than `len` links are followed, all within the list.
            last = unsafe { (*last).next };
        }
        // SAFETY: `last` is the n-th block of the list (n < len), so it has a successor.
        unsafe {
            self.head = (*last).next;
            (*last).next = ptr::null_mut();
        }
        self.len -= n;
        BlockList { head, len: n }
    }

    /// Visits every block, consuming the list.
    pub fn drain(self, mut f: impl FnMut(*mut Block)) {
        let mut block = self.head;
        while !block.is_null() {
            // SAFETY: every block on the list is free and linked through its
            // first word; read the link before `f` takes the block.
            let next = unsafe { (*block).next };
            f(block);
            block = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn push_pop_split_and_drain_keep_every_block_once() {
        let mut nodes: Vec<Block> = (0..10)
            .map(|_| Block {
                next: ptr::null_mut(),
            })
            .collect();
        let mut list = BlockList::EMPTY;
        for n in nodes.iter_mut() {
            // SAFETY: each node is a distinct, unused `Block` owned by the test.
            unsafe { list.push(n) };
        }
        assert_eq!(list.len, 10);
        let front = list.split_front(4);
        assert_eq!((front.len, list.len), (4, 6));
        let mut seen = Vec::new();
        front.drain(|b| seen.push(b as usize));
        while !list.head.is_null() {
            seen.push(list.pop() as usize);
        }
        assert_eq!(list.len, 0);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10);
        assert!(list.pop().is_null());
    }
}
