//! The load generator's memory: committed up front, in huge pages, and kept.
//!
//! The server's allocator commits memory as pages are used and gives freed memory
//! back (`.cargo/config.toml`), so that an idle server stays small. That is wrong for
//! `natter bench`, which holds a hundred clients' receive buffers and batches of
//! lines for a second or two and is judged by how little CPU it takes: its heap grows
//! by some 50 MiB during a reliable-UDP fan-out, one 4 KiB page fault at a time (about
//! 20,000 faults, an eighth of its CPU under perf), and memory given back is faulted in
//! again. With mimalloc's arenas committed at once (which on Linux also lets them be
//! backed by transparent huge pages) and nothing purged, the faults fall to a few
//! hundred and the same fan-out runs about a tenth faster.
//!
//! mimalloc reads its options from the environment when the process starts, before
//! `main`, so the bench sets them by running itself again with them; a user's own
//! `MIMALLOC_*` settings are left as they are.

/// mimalloc's options for a load generator, as environment variables.
const SETTINGS: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "1"),
    ("MIMALLOC_PURGE_DELAY", "-1"),
];

/// Runs this same command again with [`SETTINGS`] in its environment, unless they
/// (or any of them) are set already. Returns only if that was not done or failed: the
/// bench then runs as it is, only slower.
pub fn run_again_tuned() {
    if SETTINGS
        .iter()
        .any(|(name, _)| std::env::var_os(name).is_some())
    {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut command = std::process::Command::new(exe);
        command
            .args(std::env::args_os().skip(1))
            .envs(SETTINGS.iter().copied());
        // exec returns only if it failed.
        let _ = command.exec();
    }
}
