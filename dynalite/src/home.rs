//! Where the pinned dynalite lives: a directory holding
//! `scripts/dynalite-server.js` and `node_modules/dynalite`, the layout of
//! the checkout after `scripts/setup`.
//!
//! An installed `wsstack` has no checkout: it installs the same pinned
//! dynalite (the lock file and launcher this crate carries) into the
//! user's data directory on first use with `npm ci`, once per lock file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SCRIPT: &str = "scripts/dynalite-server.js";
const PACKAGE_JSON: &str = include_str!("../../package.json");
const PACKAGE_LOCK: &str = include_str!("../../package-lock.json");
const LAUNCHER: &str = include_str!("../../scripts/dynalite-server.js");

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(
        "no data directory to install dynalite into (HOME is not set): set XDG_DATA_HOME, or pass --dynamodb-endpoint"
    )]
    NoDataDir,
    #[error("cannot prepare {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot run npm to install dynalite (install Node.js 20 or newer with npm, or pass --dynamodb-endpoint)"
    )]
    NoNpm(#[source] std::io::Error),
    #[error(
        "npm ci failed ({status}) installing dynalite into {}: see its output above",
        dir.display()
    )]
    Install { dir: PathBuf, status: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The checkout this crate was built in (tests: `scripts/setup` ran
    /// `npm ci` there).
    pub fn checkout() -> Self {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Self {
            dir: here.parent().map(PathBuf::from).unwrap_or(here),
        }
    }

    /// A checkout with dynalite installed that holds the running executable
    /// (`target/debug/wsstack` run from the source tree).
    pub fn around_executable() -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        exe.ancestors()
            .find(|d| is_home(d))
            .map(|d| Self { dir: d.to_owned() })
    }

    /// The running executable's checkout, or else the pinned dynalite in
    /// the user's data directory (`$XDG_DATA_HOME/wsstack`, by default
    /// `~/.local/share/wsstack`), installed there first if it is not yet;
    /// `say` tells the user what is happening when that takes a while.
    pub fn find_or_install(say: impl FnMut(&str)) -> Result<Self, HomeError> {
        if let Some(home) = Self::around_executable() {
            return Ok(home);
        }
        let data = dirs::data_dir().ok_or(HomeError::NoDataDir)?;
        Self::install_into(&data.join("wsstack"), say)
    }

    /// The pinned dynalite under `root` (one directory per lock file),
    /// installed by `npm ci` unless it already is. Concurrent installs do
    /// not see each other's half-done work: each installs into its own
    /// directory and renames it into place.
    pub fn install_into(root: &Path, mut say: impl FnMut(&str)) -> Result<Self, HomeError> {
        let dir = root.join(format!("dynalite-{:016x}", fnv1a(PACKAGE_LOCK)));
        if is_home(&dir) {
            return Ok(Self { dir });
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| HomeError::Io { path, source }
        };
        let staging = root.join(format!(".install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(staging.join("scripts")).map_err(io(&staging))?;
        for (name, text) in [
            ("package.json", PACKAGE_JSON),
            ("package-lock.json", PACKAGE_LOCK),
            (SCRIPT, LAUNCHER),
        ] {
            let path = staging.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        say(&format!(
            "installing the pinned dynalite into {} (npm ci, once)",
            dir.display()
        ));
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&staging)
            .stdin(Stdio::null())
            // npm's chatter goes to stderr: stdout may be a pipe of ours.
            .stdout(std::io::stderr())
            .status()
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&staging);
                HomeError::NoNpm(e)
            })?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(HomeError::Install {
                dir,
                status: status.to_string(),
            });
        }
        if let Err(e) = std::fs::rename(&staging, &dir) {
            let _ = std::fs::remove_dir_all(&staging);
            // Another install won the race: use it.
            if !is_home(&dir) {
                return Err(io(&dir)(e));
            }
        }
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// node running the launcher, with its tables in `data_dir` or in
    /// memory, on `port` or a free one.
    pub(crate) fn command(&self, data_dir: Option<&Path>, port: Option<u16>) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(self.dir.join(SCRIPT)).current_dir(&self.dir);
        // Its own process group: Ctrl-C in the terminal reaches the parent
        // only, which stops its clients before it stops dynalite (closing
        // its stdin), instead of dynalite dying under them.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        if let Some(path) = data_dir {
            cmd.arg("--path").arg(path);
        }
        if let Some(port) = port {
            cmd.arg("--port").arg(port.to_string());
        }
        cmd
    }
}

fn is_home(dir: &Path) -> bool {
    dir.join(SCRIPT).is_file() && dir.join("node_modules/dynalite/package.json").is_file()
}

/// FNV-1a, 64 bits: names the install directory after the lock file, so a
/// new pin installs beside the old one instead of over it.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
