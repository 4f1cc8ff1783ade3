//! Builds the product components (every guest crate in `components/`) for
//! wasm32-wasip2, so `cargo run -- serve` needs no separate step, and tells
//! the host where they are (`SOUK_BUILT_COMPONENTS_DIR`).

use std::path::Path;

fn main() -> Result<(), String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("host/ has no parent")?;
    let crates = souk_wasm_build::guest_crates(&workspace.join("components"))?;
    let dist = souk_wasm_build::build_components(
        workspace,
        &crates,
        "product",
        &["components", "wit", "migrations", "Cargo.lock"],
    )?;
    println!(
        "cargo:rustc-env=SOUK_BUILT_COMPONENTS_DIR={}",
        dist.display()
    );
    Ok(())
}
