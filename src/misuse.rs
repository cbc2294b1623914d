//! Detected misuse of the allocator: what happened and where.

use core::fmt;

/// The kind of misuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MisuseKind {
    /// The block was already free.
    DoubleFree,
    /// The pointer is not the start of a block this allocator handed out.
    InvalidFree,
    /// The layout passed to `dealloc`/`realloc` is not the one allocated with.
    LayoutMismatch,
}

impl MisuseKind {
    /// The report's wording: "double free", "invalid free", "layout mismatch".
    pub fn as_str(self) -> &'static str {
        match self {
            MisuseKind::DoubleFree => "double free",
            MisuseKind::InvalidFree => "invalid free",
            MisuseKind::LayoutMismatch => "layout mismatch",
        }
    }
}

/// One misuse report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Misuse {
    /// What went wrong.
    pub kind: MisuseKind,
    /// The pointer passed in.
    pub addr: usize,
    /// Size of the layout passed in.
    pub size: usize,
    /// Alignment of the layout passed in.
    pub align: usize,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acealloc: {} of {:#x} (size {}, align {})",
            self.kind.as_str(),
            self.addr,
            self.size,
            self.align
        )
    }
}
