//! Build-script helper: compile guest crates of this workspace for
//! `wasm32-wasip2` and collect the resulting components in one directory.
//!
//! Used by `host/build.rs` (the product components) and `tests/build.rs`
//! (hostile test components), so `cargo run` and `cargo test` build the
//! components they need with no extra step. The nested cargo uses its own
//! target directory (`<target>/wasm`), so it never waits on the outer
//! build's lock, and the `component` profile (size-optimised, LTO).

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// The target triple components are built for.
pub const TARGET: &str = "wasm32-wasip2";
/// The cargo profile components are built with (see the workspace manifest).
pub const PROFILE: &str = "component";

/// Guest crates in `dir`: every subdirectory with a `Cargo.toml` whose
/// crate is a component (has `crate-type = ["cdylib"]`).
pub fn guest_crates(dir: &Path) -> Result<Vec<String>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if text.contains("cdylib") {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Build `packages` and copy each `<package>.wasm` into
/// `<target>/wasm/dist/<set>/`; returns that directory. Emits the
/// `rerun-if-changed` lines for `watch` (paths relative to the workspace).
pub fn build_components(
    workspace: &Path,
    packages: &[String],
    set: &str,
    watch: &[&str],
) -> Result<PathBuf, String> {
    for path in watch {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    let target_dir = target_dir()?.join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--locked",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // The outer build's flags and wrappers are for the host target (and,
    // under clippy, would lint the guests a second time).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo to build components: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building components failed ({status}); is the {TARGET} target installed? \
             (`rustup target add {TARGET}`)"
        ));
    }

    let built = target_dir.join(TARGET).join(PROFILE);
    let dist = target_dir.join("dist").join(set);
    std::fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    for package in packages {
        let file = format!("{}.wasm", package.replace('-', "_"));
        std::fs::copy(built.join(&file), dist.join(&file))
            .map_err(|e| format!("cannot copy {file}: {e}"))?;
    }
    Ok(dist)
}

/// The outer build's target directory: the nearest ancestor of `OUT_DIR`
/// holding cargo's `CACHEDIR.TAG`.
fn target_dir() -> Result<PathBuf, String> {
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|_| "OUT_DIR is not set".to_owned())?);
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no cargo target directory above {}", out_dir.display()))
}
