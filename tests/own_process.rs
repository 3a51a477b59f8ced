//! Tests that measure this process — its resident memory, its threads, its
//! open descriptors — would see the other suites of this binary running
//! beside them. Such a test calls [`elsewhere`] first: the test binary runs
//! again with only that test, in a process of its own, and the figures it
//! takes there are its own.

use std::process::Command;

/// Set in the process of one's own, where the test's body runs.
const ALONE: &str = "SFS_TEST_OWN_PROCESS";

/// In the test binary's usual run, runs `test` (its path in this binary,
/// such as `bounds::a_test`) in a process of its own, fails when it fails,
/// and returns true: the caller returns at once. In that process of its own,
/// returns false: the caller goes on to the test's body.
pub fn elsewhere(test: &str) -> bool {
    if std::env::var_os(ALONE).is_some() {
        return false;
    }
    let binary = std::env::current_exe().expect("the test binary's path");
    let run = Command::new(binary)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(run.status.success(), "{test}, run alone, failed");
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run alone: is the name its full path in the binary?"
    );
    true
}
