//! Waiting for a child process with a time limit: the one spawn/poll/kill loop of the QEMU runs,
//! the benchmark cells and the C programs.

use std::io::{self, Read};
use std::process::{Child, ExitStatus};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Waits for `child` to exit, calling `poll` every `interval` while it runs; after `limit` it is
/// killed and reaped, and `Ok(None)` comes back.
pub fn wait_or_kill(
    child: &mut Child,
    limit: Duration,
    interval: Duration,
    mut poll: impl FnMut(),
) -> io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() >= limit {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        poll();
        thread::sleep(interval);
    }
}

/// Reads `pipe` to its end on a thread of its own (so that a child filling one pipe cannot
/// block while the other is waited on); the bytes come back from the join.
pub fn read_to_end(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the output like end of file: the child is gone either way.
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_child_that_ends_gives_its_status_and_output() {
        let mut child = Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = read_to_end(child.stdout.take());
        let stderr = read_to_end(child.stderr.take());
        let status = wait_or_kill(
            &mut child,
            Duration::from_secs(30),
            Duration::from_millis(1),
            || {},
        );
        assert_eq!(status.unwrap().and_then(|s| s.code()), Some(3));
        assert_eq!(stdout.join().unwrap(), b"out\n");
        assert_eq!(stderr.join().unwrap(), b"err\n");
    }

    #[test]
    fn a_child_past_its_limit_is_killed_after_being_polled() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let started = Instant::now();
        let mut polls = 0;
        let status = wait_or_kill(
            &mut child,
            Duration::from_millis(200),
            Duration::from_millis(10),
            || polls += 1,
        );
        assert!(status.unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(polls >= 5, "polled {polls} times");
        // Reaped: nothing is left to wait for.
        assert!(child.try_wait().unwrap().is_some());
    }
}
