//! Running as a kubectl plugin: kubectl runs `kubectl-svcplane` from `PATH` for
//! `kubectl svcplane ...`, passing the remaining arguments (flags like `-n` included) through.
//! The binary behaves the same under either name; `install-kubectl-plugin` makes the link.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// The executable name kubectl looks for (`kubectl svcplane` → `kubectl-svcplane`).
pub const PLUGIN_EXECUTABLE: &str = "kubectl-svcplane";

/// Whether `argv0` names the plugin executable (any directory, any extension).
pub fn invoked_as_plugin(argv0: Option<&OsStr>) -> bool {
    argv0
        .and_then(|a| Path::new(a).file_stem())
        .and_then(OsStr::to_str)
        .is_some_and(|stem| stem == PLUGIN_EXECUTABLE)
}

/// `svcplane install-kubectl-plugin` arguments.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Directory for the `kubectl-svcplane` link; it must be on PATH for kubectl to find it.
    /// Default: the directory of this binary.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Creates (or replaces) the symbolic link `DIR/kubectl-svcplane` to this binary; returns
/// its path. A regular file of that name is left alone (an error).
pub fn install(args: &InstallArgs) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find this binary's path")?;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => exe
            .parent()
            .context("this binary has no parent directory")?
            .to_path_buf(),
    };
    let link = dir.join(PLUGIN_EXECUTABLE);
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(&link)
            .with_context(|| format!("cannot replace {}", link.display()))?,
        Ok(_) => bail!(
            "{} exists and is not a symbolic link; remove it first",
            link.display()
        ),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&exe, &link)
        .with_context(|| format!("cannot create {}", link.display()))?;
    Ok(link)
}

/// Whether `dir` is one of `PATH`'s directories.
pub fn on_path(dir: &Path) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|p| p == dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_plugin_name_switches_to_plugin_mode() {
        assert!(invoked_as_plugin(Some(OsStr::new(
            "/usr/local/bin/kubectl-svcplane"
        ))));
        assert!(invoked_as_plugin(Some(OsStr::new("kubectl-svcplane"))));
        assert!(!invoked_as_plugin(Some(OsStr::new("/usr/bin/svcplane"))));
        assert!(!invoked_as_plugin(Some(OsStr::new(
            "kubectl-svcplane-old2"
        ))));
        assert!(!invoked_as_plugin(None));
    }

    #[test]
    fn install_links_this_binary_and_replaces_an_old_link() {
        let dir = tempfile::tempdir().unwrap();
        let args = InstallArgs {
            dir: Some(dir.path().to_path_buf()),
        };
        let link = install(&args).unwrap();
        assert_eq!(link, dir.path().join(PLUGIN_EXECUTABLE));
        let target = std::fs::read_link(&link).unwrap();
        assert_eq!(
            target,
            std::env::current_exe().unwrap().canonicalize().unwrap()
        );
        install(&args).expect("a second install replaces the link");
        std::fs::remove_file(&link).unwrap();
        std::fs::write(&link, "not a link").unwrap();
        assert!(install(&args).is_err(), "a regular file is not overwritten");
    }
}
