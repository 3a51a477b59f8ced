//! Process resources the connection limits rely on: enough file descriptors
//! for every connection's open-file budget, and memory handed back to the
//! system once a load is over.

use crate::core::LimitsConfig;

/// Descriptors the process needs besides the connections' files: the
/// database pool, the listener, logs, mail.
const BASE_DESCRIPTORS: u64 = 256;

/// Raises the soft open-file limit to the hard one (a default soft limit of
/// 1024 is far below what `max_sessions` connections with their files may
/// need), and warns when even the hard limit is short of that.
pub fn raise_open_file_limit(limits: &LimitsConfig) {
    let per_connection = u64::from(limits.open_files_per_session) + 2;
    let needed = u64::from(limits.max_sessions) * per_connection + BASE_DESCRIPTORS;
    let mut rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit) };
    if got != 0 {
        tracing::warn!("cannot read the open-file limit");
        return;
    }
    if rlimit.rlim_cur < rlimit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rlimit.rlim_max,
            rlim_max: rlimit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            rlimit = raised;
        }
    }
    let available = rlimit.rlim_cur;
    if available < needed {
        tracing::warn!(
            "the open-file limit, {available}, is below the {needed} descriptors that \
             limits.max_sessions ({}) connections with limits.open_files_per_session ({}) \
             files each may need: start sfs after `ulimit -n {needed}` (or with \
             LimitNOFILE={needed} in its systemd unit), or lower those two limits",
            limits.max_sessions,
            limits.open_files_per_session
        );
    }
}

/// Large blocks (S3 parts and read windows of several MiB) get pages of
/// their own, returned to the system when freed. glibc would otherwise
/// raise its mmap threshold after the first such block was freed and carve
/// the next ones from per-thread arenas, where they stay: with the blocking
/// pool's threads each keeping a few, a single 1 GiB transfer to S3 held
/// about 140 MiB.
pub fn keep_large_blocks_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Hands freed heap memory back to the system. glibc keeps what a load
/// freed in its arenas, so without this the resident size stays at its
/// peak after every session closed. Blocking (it walks the heap): run it
/// off the async threads.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reorganises the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
