//! Shared by the benches that run the real `errand` binary: waiting for it while sampling its peak memory.

use std::process::ExitStatus;
use std::time::Duration;

/// The most memory a run used, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peak {
    /// Peak resident set (`VmHWM`), exact: the process's own memory and the pages of its binary and libraries
    /// it touched. The latter move with the code's layout in the binary, so two builds running the same code
    /// can differ by a megabyte or more.
    pub rss_kib: u64,
    /// Peak anonymous resident memory (`RssAnon`, sampled): what the process allocated (heap, stacks), without
    /// the binary's pages.
    pub anon_kib: u64,
}

/// A field of `/proc/PID/status`, in KiB; `None` once the process has exited.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for `child`, reading its memory every `every`; returns its exit status and its peaks.
///
/// getrusage(RUSAGE_CHILDREN) would not do: a child spawned with vfork (posix_spawn) keeps, across its exec,
/// the high-water mark of this process's memory, which holds the scripted model's recorded requests.
pub async fn wait_measuring_peak(child: &mut tokio::process::Child, every: Duration) -> (ExitStatus, Peak) {
    let pid = child.id().expect("the child is running");
    let mut peak = Peak::default();
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            status = child.wait() => return (status.expect("the child can be waited for"), peak),
            _ = ticks.tick() => {
                peak.rss_kib = peak.rss_kib.max(status_kib(pid, "VmHWM:").unwrap_or(0));
                peak.anon_kib = peak.anon_kib.max(status_kib(pid, "RssAnon:").unwrap_or(0));
            }
        }
    }
}
