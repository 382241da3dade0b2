//! `wsstack package`: the four handler binaries as Lambda `bootstrap` zips,
//! built by cargo-lambda (which bundles zig, so they link against the glibc
//! of Amazon Linux 2023 whatever this machine has).
//!
//! Owns where cargo-lambda is found (PATH, then the checkout's `.venv/bin`,
//! where `scripts/setup` installs it), the one build command, and where the
//! zips land: `target/lambda/<function>/bootstrap.zip` in the checkout,
//! which is where a deploy reads them by default. It must not know AWS: it
//! only builds files.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::str::FromStr;

use crate::template::Function;

/// The crate that holds the four Lambda binaries.
pub const HANDLERS_PACKAGE: &str = "wsadmin-handlers";

/// The executable cargo-lambda installs (run as `cargo-lambda lambda …`,
/// exactly as `cargo lambda …` runs it).
pub const CARGO_LAMBDA: &str = "cargo-lambda";

/// The instruction set the functions are built for; it must match the
/// template's `Architecture` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arch {
    #[default]
    X86_64,
    Arm64,
}

impl Arch {
    /// Lambda's name for it (the template parameter's values).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    fn cargo_lambda_flag(self) -> &'static str {
        match self {
            Arch::X86_64 => "--x86-64",
            Arch::Arm64 => "--arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {0:?} (use x86_64 or arm64)")]
pub struct UnknownArch(String);

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "x86_64" | "x86-64" | "amd64" => Ok(Arch::X86_64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            _ => Err(UnknownArch(text.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "cargo-lambda not found on PATH{} (run scripts/setup, or pip install cargo-lambda)",
        looked_in
            .as_ref()
            .map(|d| format!(" nor in {}", d.display()))
            .unwrap_or_default()
    )]
    NoCargoLambda { looked_in: Option<PathBuf> },
    #[error(
        "no wsadmin checkout around {} or the wsstack binary: wsstack package builds the \
         handlers from the source tree (run it inside a checkout)",
        cwd.display()
    )]
    NoCheckout { cwd: PathBuf },
    #[error("cannot run {}: {error}", program.display())]
    Spawn {
        program: PathBuf,
        error: std::io::Error,
    },
    #[error("cargo lambda build failed ({status}): its output above says why")]
    Build { status: ExitStatus },
    #[error("cargo lambda build did not write {} (is it cargo-lambda 1.x?)", path.display())]
    Missing { path: PathBuf },
    #[error("cannot copy {} to {}: {error}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        error: std::io::Error,
    },
}

/// The source tree the handlers are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    root: PathBuf,
}

impl Checkout {
    /// The checkout holding `cwd`, else the one holding the running
    /// executable (`target/debug/wsstack`).
    pub fn find(cwd: &Path, exe: Option<&Path>) -> Option<Checkout> {
        let around = |start: &Path| {
            start
                .ancestors()
                .find(|d| is_checkout(d))
                .map(|d| Checkout { root: d.to_owned() })
        };
        around(cwd).or_else(|| exe.and_then(around))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the zips are built: `target/lambda` of the checkout.
    pub fn lambda_dir(&self) -> PathBuf {
        self.root.join("target").join("lambda")
    }

    /// The Python environment `scripts/setup` makes.
    pub fn venv_bin(&self) -> PathBuf {
        self.root.join(".venv").join("bin")
    }
}

fn is_checkout(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("handlers/src/bin/ws-default.rs").is_file()
}

/// cargo-lambda on `path` (a PATH value), else in the checkout's `.venv`.
pub fn find_cargo_lambda(path: Option<&OsStr>, checkout: Option<&Checkout>) -> Option<PathBuf> {
    let on_path = path
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|d| !d.as_os_str().is_empty());
    let in_venv = checkout.map(Checkout::venv_bin);
    on_path
        .chain(in_venv)
        .map(|d| d.join(CARGO_LAMBDA))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// One built zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged {
    pub function: Function,
    pub path: PathBuf,
    pub bytes: u64,
}

/// The zip of `function` under `lambda_dir` (cargo-lambda's layout).
pub fn zip_path(lambda_dir: &Path, function: Function) -> PathBuf {
    lambda_dir.join(function.handler()).join("bootstrap.zip")
}

/// The cargo-lambda command that builds every handler for `arch`.
pub fn build_command(cargo_lambda: &Path, checkout: &Checkout, arch: Arch) -> Command {
    let mut cmd = Command::new(cargo_lambda);
    cmd.current_dir(checkout.root())
        .args(["lambda", "build", "--release", arch.cargo_lambda_flag()])
        .args(["--output-format", "zip", "--package", HANDLERS_PACKAGE])
        .args(["--features", "lambda", "--bins", "--lambda-dir"])
        .arg(checkout.lambda_dir())
        // Never wait for an answer (cargo-lambda offers to install zig
        // when it finds none).
        .stdin(Stdio::null());
    // cargo-lambda finds zig through `python3 -m ziglang` of its own venv.
    if let Some(dir) = cargo_lambda.parent() {
        let mut dirs = vec![dir.to_owned()];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        if let Ok(path) = std::env::join_paths(dirs) {
            cmd.env("PATH", path);
        }
    }
    cmd
}

/// Builds the four zips (cargo-lambda's output goes to this process's
/// standard error) and returns them with their sizes.
pub fn build(
    cargo_lambda: &Path,
    checkout: &Checkout,
    arch: Arch,
) -> Result<Vec<Packaged>, PackageError> {
    let status = build_command(cargo_lambda, checkout, arch)
        .stdout(std::io::stderr())
        .status()
        .map_err(|error| PackageError::Spawn {
            program: cargo_lambda.to_owned(),
            error,
        })?;
    if !status.success() {
        return Err(PackageError::Build { status });
    }
    Function::ALL
        .into_iter()
        .map(|function| {
            let path = zip_path(&checkout.lambda_dir(), function);
            let bytes = std::fs::metadata(&path)
                .map_err(|_| PackageError::Missing { path: path.clone() })?
                .len();
            Ok(Packaged {
                function,
                path,
                bytes,
            })
        })
        .collect()
}

/// Copies the zips to `out`, in the same layout (`<function>/bootstrap.zip`).
pub fn copy_to(packaged: &[Packaged], out: &Path) -> Result<Vec<Packaged>, PackageError> {
    packaged
        .iter()
        .map(|p| {
            let to = zip_path(out, p.function);
            // Copying a file onto itself would empty it.
            let same = |a: &Path, b: &Path| {
                matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
            };
            if same(&p.path, &to) {
                return Ok(p.clone());
            }
            let copy = |to: &Path| {
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::copy(&p.path, to)
            };
            let bytes = copy(&to).map_err(|error| PackageError::Copy {
                from: p.path.clone(),
                to: to.clone(),
                error,
            })?;
            Ok(Packaged {
                function: p.function,
                path: to,
                bytes,
            })
        })
        .collect()
}

/// `wsstack package`: finds cargo-lambda and the checkout from this
/// process's PATH, current directory and executable, builds the zips for
/// `arch`, and copies them to `out` when given.
pub fn package(arch: Arch, out: Option<&Path>) -> Result<Vec<Packaged>, PackageError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe().ok();
    let checkout = Checkout::find(&cwd, exe.as_deref());
    let cargo_lambda = find_cargo_lambda(std::env::var_os("PATH").as_deref(), checkout.as_ref())
        .ok_or_else(|| PackageError::NoCargoLambda {
            looked_in: checkout.as_ref().map(Checkout::venv_bin),
        })?;
    let checkout = checkout.ok_or(PackageError::NoCheckout { cwd })?;
    eprintln!(
        "wsstack: building the four handlers for {arch} with {} (a release build)",
        cargo_lambda.display()
    );
    let built = build(&cargo_lambda, &checkout, arch)?;
    match out {
        Some(out) => copy_to(&built, out),
        None => Ok(built),
    }
}

/// What `wsstack package` prints: one line per zip, its size and path.
pub fn listing(packaged: &[Packaged]) -> String {
    packaged
        .iter()
        .map(|p| {
            format!(
                "{:<14} {:>9}  {}\n",
                p.function.handler(),
                human_size(p.bytes),
                p.path.display()
            )
        })
        .collect()
}

/// A size for people: `812 B`, `3.4 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn arch_names_round_trip_and_unknown_ones_are_refused() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            assert_eq!(arch.name().parse::<Arch>(), Ok(arch));
        }
        assert_eq!(
            "sparc".parse::<Arch>().unwrap_err().to_string(),
            "unknown architecture \"sparc\" (use x86_64 or arm64)"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
    }

    #[test]
    fn the_missing_cargo_lambda_message_says_what_to_run() {
        let message = PackageError::NoCargoLambda {
            looked_in: Some(PathBuf::from("/src/wsadmin/.venv/bin")),
        }
        .to_string();
        assert_eq!(
            message,
            "cargo-lambda not found on PATH nor in /src/wsadmin/.venv/bin (run scripts/setup, \
             or pip install cargo-lambda)"
        );
    }

    #[test]
    fn cargo_lambda_is_found_on_path_first_then_in_the_venv() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let on_path = dir.join("bin");
        let root = dir.join("checkout");
        let venv = root.join(".venv/bin");
        for d in [&on_path, &venv] {
            std::fs::create_dir_all(d).unwrap();
            let exe = d.join(CARGO_LAMBDA);
            std::fs::write(&exe, "#!/bin/sh\n").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let checkout = Checkout { root: root.clone() };
        let path = std::env::join_paths([dir.join("empty"), on_path.clone()]).unwrap();
        assert_eq!(
            find_cargo_lambda(Some(&path), Some(&checkout)),
            Some(on_path.join(CARGO_LAMBDA))
        );
        let path = OsString::from(dir.join("empty"));
        assert_eq!(
            find_cargo_lambda(Some(&path), Some(&checkout)),
            Some(venv.join(CARGO_LAMBDA))
        );
        assert_eq!(find_cargo_lambda(Some(&path), None), None);
        assert_eq!(find_cargo_lambda(None, None), None);
    }

    #[test]
    fn the_checkout_is_found_from_the_current_directory_or_the_binary() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = here.parent().unwrap().to_owned();
        let found = Checkout::find(&here.join("src"), None).unwrap();
        assert_eq!(found.root(), root);
        assert_eq!(
            found.lambda_dir(),
            root.join("target/lambda"),
            "where a deploy reads the zips"
        );
        let elsewhere = std::env::temp_dir();
        let exe = root.join("target/debug/wsstack");
        assert_eq!(Checkout::find(&elsewhere, Some(&exe)).unwrap().root(), root);
        assert_eq!(Checkout::find(Path::new("/"), None), None);
    }

    #[test]
    fn copies_keep_the_layout_and_a_copy_onto_itself_changes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let built = temp.path().join("target/lambda");
        let zip = zip_path(&built, Function::Message);
        std::fs::create_dir_all(zip.parent().unwrap()).unwrap();
        std::fs::write(&zip, b"PK zip").unwrap();
        let packaged = vec![Packaged {
            function: Function::Message,
            path: zip.clone(),
            bytes: 6,
        }];
        let out = temp.path().join("out");
        let copied = copy_to(&packaged, &out).unwrap();
        assert_eq!(copied[0].path, out.join("ws-message/bootstrap.zip"));
        assert_eq!(std::fs::read(&copied[0].path).unwrap(), b"PK zip");
        let again = copy_to(&packaged, &built).unwrap();
        assert_eq!(again, packaged);
        assert_eq!(std::fs::read(&zip).unwrap(), b"PK zip");
    }

    #[test]
    fn the_listing_has_one_line_per_zip_with_its_size_and_path() {
        let packaged = [
            Packaged {
                function: Function::Connect,
                path: PathBuf::from("target/lambda/ws-connect/bootstrap.zip"),
                bytes: 4_975_165,
            },
            Packaged {
                function: Function::Message,
                path: PathBuf::from("target/lambda/ws-message/bootstrap.zip"),
                bytes: 4_975_882,
            },
        ];
        assert_eq!(
            listing(&packaged),
            "ws-connect       4.7 MiB  target/lambda/ws-connect/bootstrap.zip\n\
             ws-message       4.7 MiB  target/lambda/ws-message/bootstrap.zip\n"
        );
    }

    #[test]
    fn zips_keep_cargo_lambdas_layout() {
        assert_eq!(
            zip_path(Path::new("target/lambda"), Function::Default),
            Path::new("target/lambda/ws-default/bootstrap.zip")
        );
    }
}
