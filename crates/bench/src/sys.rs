//! What the generator asks of the system: enough file descriptors, a server's memory,
//! the machine's load.

use std::io;

/// Raises this process's open-file limit to at least `wanted`, as far as allowed.
/// Returns the limit in force, and a warning with what to do when it stays below.
pub fn raise_nofile(wanted: u64) -> (u64, Option<String>) {
    match natter_server::open_files::raise_open_files(wanted) {
        Ok(files) if files.limit >= wanted => (files.limit, None),
        Ok(files) => (
            files.limit,
            Some(format!(
                "this run needs about {wanted} open files but may open only {}: raise the \
                 limit first (a higher hard limit: `ulimit -Hn {wanted}` as root, or \
                 /etc/security/limits.conf), or run with fewer clients",
                files.limit
            )),
        ),
        Err(e) => (0, Some(format!("cannot read the open-file limit: {e}"))),
    }
}

/// A process's resident memory in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vmrss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no VmRSS in /proc/{pid}/status"),
        )
    })
}

/// The VmRSS line of a /proc/PID/status text, in KiB.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(n),
        Some("mB") => Some(n * 1024),
        _ => None,
    }
}

/// The 1-minute load average, for the report: a busy machine measures less.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmrss_is_read_in_kib() {
        let status = "Name:\tnatter\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vmrss(status), Some(12345));
        assert_eq!(parse_vmrss("Name: x\n"), None);
    }

    #[test]
    fn our_own_memory_can_be_read() {
        assert!(rss_kib(std::process::id()).expect("own status") > 0);
    }

    #[test]
    fn a_limit_already_high_enough_is_kept() {
        let (now, warning) = raise_nofile(16);
        assert!(now >= 16);
        assert!(warning.is_none());
    }
}
