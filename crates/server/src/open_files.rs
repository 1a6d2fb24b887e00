//! The open-file limit. Every TCP or Unix connection holds a file descriptor, and a
//! process starts with the soft limit its shell or service manager gave it: often
//! 1024, while the hard limit allows far more. A server that keeps that soft limit
//! refuses its 1000th client with `accept: Too many open files`, whatever
//! `max_connections` says; so natter raises it at startup, as far as it may.

use std::io;

/// Descriptors the server uses besides its connections: listeners, the database and
/// its WAL, UDP sockets, the runtime's own.
pub const RESERVED_FILES: u64 = 64;

/// The open-file limit after [`raise_open_files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit now in force: the most files this process may have open.
    pub limit: u64,
    /// What it was before.
    pub was: u64,
    /// The hard limit: the most anyone but root may raise the soft limit to.
    pub hard: u64,
}

/// Raises this process's open-file limit to `wanted`, as far as the hard limit allows
/// (the hard limit is the administrator's, and is left alone). A limit already high
/// enough is left as it is.
pub fn raise_open_files(wanted: u64) -> io::Result<OpenFiles> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let was = lim.rlim_cur;
    let raised = libc::rlimit {
        rlim_cur: wanted.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if raised.rlim_cur > lim.rlim_cur
        && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0
    {
        lim = raised;
    }
    Ok(OpenFiles {
        limit: lim.rlim_cur,
        was,
        hard: lim.rlim_max,
    })
}

/// Makes room for `max_connections` connections (0: no limit, so as many as the hard
/// limit allows) and logs what it did; warns, with what to do, when the system allows
/// fewer than asked.
pub(crate) fn make_room_for(max_connections: usize) {
    let wanted = match max_connections {
        0 => u64::MAX,
        n => (n as u64).saturating_add(RESERVED_FILES),
    };
    let files = match raise_open_files(wanted) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!("cannot read the open-file limit: {e}");
            return;
        }
    };
    if files.limit > files.was {
        tracing::info!(
            "raised the open-file limit from {} to {}",
            files.was,
            files.limit
        );
    }
    if max_connections > 0 && files.limit < wanted {
        tracing::warn!(
            "max_connections is {max_connections}, but this process may open only {} files \
             (hard limit {}): clients beyond about {} will be refused with \"Too many open \
             files\". Raise the hard limit (`ulimit -Hn {wanted}` as root before starting \
             natter, LimitNOFILE={wanted} in a systemd unit) or lower max_connections",
            files.limit,
            files.hard,
            files.limit.saturating_sub(RESERVED_FILES),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_already_high_enough_is_kept() {
        let before = raise_open_files(0).expect("the limit can be read");
        let after = raise_open_files(16.min(before.limit)).expect("the limit can be read");
        assert_eq!(after.limit, before.limit);
        assert_eq!(after.was, before.limit);
    }

    #[test]
    fn the_soft_limit_rises_to_what_is_wanted_within_the_hard_limit() {
        let before = raise_open_files(0).expect("the limit can be read");
        let wanted = before.limit.saturating_add(1).min(before.hard);
        let after = raise_open_files(wanted).expect("the limit can be read");
        assert!(after.limit >= wanted, "{after:?} for {wanted}");
        assert!(after.limit <= after.hard);
    }
}
