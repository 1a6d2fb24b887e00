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
/// enough is left as it is. An error says the limit could not be read or raised.
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
    if raised.rlim_cur > lim.rlim_cur {
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(OpenFiles {
        limit: lim.rlim_cur,
        was,
        hard: lim.rlim_max,
    })
}

/// The most files [`make_room_for`] asks for when connections are not limited: Linux's
/// default ceiling (`fs.nr_open`), which a hard limit of "unlimited" does not lift.
const UNLIMITED_CONNECTIONS_FILES: u64 = 1 << 20;

/// Makes room for `max_connections` connections (0: no limit, so as many as the hard
/// limit allows) and logs what it did; warns, with what to do, when the system allows
/// fewer than asked.
pub(crate) fn make_room_for(max_connections: usize) {
    let wanted = match max_connections {
        0 => UNLIMITED_CONNECTIONS_FILES,
        n => (n as u64).saturating_add(RESERVED_FILES),
    };
    let files = match raise_open_files(wanted) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(
                "cannot raise the open-file limit to {wanted} ({e}): clients beyond it \
                 will be refused with \"Too many open files\""
            );
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

    /// One test, not two: the limit is the whole process's, and tests run in parallel.
    #[test]
    fn the_soft_limit_rises_within_the_hard_limit_and_never_falls() {
        let before = raise_open_files(0).expect("the limit can be read");
        assert_eq!(before.limit, before.was);
        let kept = raise_open_files(before.limit / 2).expect("the limit can be read");
        assert_eq!((kept.was, kept.limit), (before.limit, before.limit));
        let wanted = before.limit.saturating_add(1).min(before.hard);
        let raised = raise_open_files(wanted).expect("the limit can be raised");
        assert_eq!(raised.limit, wanted, "{raised:?}");
        assert!(raised.limit <= raised.hard);
    }
}
