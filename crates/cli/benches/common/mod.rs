//! Shared by the benches that run the real `errand` binary: waiting for it while sampling its peak memory.

use std::process::ExitStatus;
use std::time::Duration;

/// The peak resident set of a running process so far (`VmHWM`), in KiB; `None` once it has exited.
///
/// getrusage(RUSAGE_CHILDREN) would not do: a child spawned with vfork (posix_spawn) keeps, across its exec,
/// the high-water mark of this process's memory, which holds the scripted model's recorded requests.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for `child`, reading its peak resident set every `every`; returns its exit status and that peak in
/// KiB.
pub async fn wait_measuring_peak(child: &mut tokio::process::Child, every: Duration) -> (ExitStatus, u64) {
    let pid = child.id().expect("the child is running");
    let mut peak_kib = 0;
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            status = child.wait() => return (status.expect("the child can be waited for"), peak_kib),
            _ = ticks.tick() => peak_kib = peak_kib.max(peak_rss_kib(pid).unwrap_or(0)),
        }
    }
}
