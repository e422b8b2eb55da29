//! A helper program a run or a test starts beside itself (coturn, Janus):
//! found on `PATH`, and killed when its owner lets go of it, so no test or
//! run leaves one behind.

use std::path::PathBuf;
use std::process::{Child, ExitStatus};

/// Where the program `name` is, if anywhere on `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A started helper; killed (and reaped) on drop.
#[derive(Debug)]
pub(crate) struct HelperProcess(Option<Child>);

impl HelperProcess {
    pub(crate) fn new(child: Child) -> Self {
        HelperProcess(Some(child))
    }

    /// Kills it at once (no goodbye to anyone), as a crash would, and waits
    /// for it to be gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How it ended, if it has.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.0.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
