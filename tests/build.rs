//! Builds the hostile test components in `tests/components/` and tells the
//! tests where they are (`SOUK_TEST_COMPONENTS_DIR`).

use std::path::Path;

fn main() -> Result<(), String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("tests/ has no parent")?;
    let crates = souk_wasm_build::guest_crates(&workspace.join("tests/components"))?;
    let dist = souk_wasm_build::build_components(
        workspace,
        &crates,
        "test",
        &["tests/components", "components/sdk", "wit", "Cargo.lock"],
    )?;
    println!(
        "cargo:rustc-env=SOUK_TEST_COMPONENTS_DIR={}",
        dist.display()
    );
    Ok(())
}
