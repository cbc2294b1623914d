//! ACE as the statistics API shows it: its status and a copy of its
//! decision trace, in one fixed-size value (no allocation), so that
//! `Allocator::ace_stats` can hand it out next to `Allocator::stats`.

use core::fmt;

use super::trace::{Decision, TRACE_LEN};
use super::{Ace, AceStatus};

/// ACE's status and the decisions its trace still holds, oldest first.
#[derive(Clone, Copy, Debug)]
pub struct AceReport {
    /// Whether it is on, why it went off, what its ticks cost.
    pub status: AceStatus,
    trace: [Decision; TRACE_LEN],
    len: usize,
}

impl AceReport {
    /// The decisions the trace held, oldest first (at most [`TRACE_LEN`]).
    pub fn decisions(&self) -> &[Decision] {
        &self.trace[..self.len]
    }
}

impl Ace {
    /// ACE's status and trace, read under one hold of the engine (so they
    /// agree). Waits for the engine: not from an interrupt handler.
    pub fn report(&self) -> AceReport {
        let engine = self.engine.lock();
        let mut trace = [Decision::EMPTY; TRACE_LEN];
        let len = engine.trace.copy_after(0, &mut trace);
        AceReport {
            status: self.status_of(&engine),
            trace,
            len,
        }
    }
}

impl fmt::Display for AceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.status;
        write!(f, "ACE {}", if s.enabled { "on" } else { "off" })?;
        if let (false, Some(reason)) = (s.enabled, s.off_reason) {
            write!(f, " ({reason:?})")?;
        }
        writeln!(
            f,
            ": {} deciding ticks (clock units: mean {}, max {}), {} decisions",
            s.deciding_ticks,
            s.total_tick / s.deciding_ticks.max(1),
            s.max_tick,
            s.decisions
        )?;
        for decision in self.decisions() {
            writeln!(f, "  {decision}")?;
        }
        Ok(())
    }
}
