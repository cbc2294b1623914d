//! Detected misuse of the allocator: what happened and where.

use core::fmt;

/// The kind of misuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MisuseKind {
    /// The block was already free.
    DoubleFree,
    /// The pointer is not the start of a block this allocator handed out.
    InvalidFree,
    /// The block was already free when `realloc` or a size query used it.
    UseAfterFree,
    /// The layout passed to `dealloc`/`realloc` is not the one allocated with.
    LayoutMismatch,
}

impl MisuseKind {
    /// The report's wording: "double free", "invalid free", "use after
    /// free", "layout mismatch".
    pub fn as_str(self) -> &'static str {
        match self {
            MisuseKind::DoubleFree => "double free",
            MisuseKind::InvalidFree => "invalid free",
            MisuseKind::UseAfterFree => "use after free",
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
    /// Size of the layout passed in (0 with `align` 0: none was, as in C's
    /// `free`).
    pub size: usize,
    /// Alignment of the layout passed in.
    pub align: usize,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acealloc: {} of {:#x}", self.kind.as_str(), self.addr)?;
        if self.align != 0 {
            write!(f, " (size {}, align {})", self.size, self.align)?;
        }
        Ok(())
    }
}
