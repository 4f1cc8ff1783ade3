//! On-disk cache of compiled components, keyed by the component's SHA-256
//! and the engine's compatibility hash, so a restart (or a test that spawns
//! a fresh host) deserializes in microseconds instead of compiling for
//! hundreds of milliseconds. Any cache failure falls back to compiling.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::{Path, PathBuf},
};

use wasmtime::{Engine, component::Component};

/// Compile `bytes`, or load the compiled form from `dir` if present.
pub fn compile(
    engine: &Engine,
    dir: Option<&Path>,
    sha256: &str,
    bytes: &[u8],
) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, bytes);
    };
    let path = entry_path(engine, dir, sha256);
    if path.is_file() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), "ignoring a bad cache entry: {error:#}")
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(error) = store(&component, dir, &path) {
        tracing::warn!(path = %path.display(), "cannot write the compile cache: {error:#}");
    }
    Ok(component)
}

fn entry_path(engine: &Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the file was produced by
    // `Component::serialize` of a compatible engine and not tampered with.
    // Only this module writes the cache directory, under a name keyed by the
    // source's SHA-256 and the engine's compatibility hash, and wasmtime
    // itself re-checks engine compatibility. The directory must be as
    // trusted as the binary (see the README's configuration table).
    unsafe { Component::deserialize_file(engine, path) }
}

/// Write atomically: a reader never sees half a file.
fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    // Unique per write: two stores (threads or processes) compiling the same
    // component at once must never write into the same temporary file.
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })?;
    Ok(())
}
