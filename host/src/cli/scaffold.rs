//! `souk new extension NAME`: write a crate for an out-of-tree extension
//! from the templates in `host/templates/extension/` (embedded, so the
//! binary needs no checkout to read them, only to point the crate at).
//!
//! The crate depends on the checkout's `souk-sdk` and `wit/` by path and
//! starts from the checkout's `Cargo.lock`, so it resolves the very
//! versions Souk was tested with and builds offline once they are cached.
//! It has its own `[workspace]` table, so it builds standalone wherever it
//! is written, including inside another workspace's tree.
//!
//! Substitution is one pass over each template: `{{key}}` placeholders
//! only, values never re-scanned, an unknown key is an error. The name is
//! validated like a component name before it is used anywhere, and paths
//! are escaped for the TOML and Rust string literals they land in.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

use souk::config::NewExtensionArgs;

/// One template file: where it goes in the new crate, and its text.
struct Template {
    path: &'static str,
    text: &'static str,
}

/// The extension template, in the order files are written.
const TEMPLATES: &[Template] = &[
    Template {
        path: "Cargo.toml",
        text: include_str!("../../templates/extension/Cargo.toml.tmpl"),
    },
    Template {
        path: "rust-toolchain.toml",
        text: include_str!("../../templates/extension/rust-toolchain.toml.tmpl"),
    },
    Template {
        path: ".gitignore",
        text: include_str!("../../templates/extension/gitignore.tmpl"),
    },
    Template {
        path: "README.md",
        text: include_str!("../../templates/extension/README.md.tmpl"),
    },
    Template {
        path: "grant.json",
        text: include_str!("../../templates/extension/grant.json.tmpl"),
    },
    Template {
        path: "migrations/0001_create_items.sql",
        text: include_str!("../../templates/extension/migrations/0001_create_items.sql.tmpl"),
    },
    Template {
        path: "src/lib.rs",
        text: include_str!("../../templates/extension/src/lib.rs.tmpl"),
    },
];

/// Souk's own toolchain file: the new crate pins the same channel.
const SOUK_TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

/// Names an extension may not take: the core services (their routes and
/// tables are taken), and names cargo refuses for a package or that would
/// make the library's crate name a keyword.
const RESERVED: &[&str] = &[
    // Core services (runtime::policy) and the bundled extensions' SDK.
    "customers",
    "inventory",
    "sales",
    "reviews",
    // Cargo: the standard library's crates and its own directories.
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    // Rust keywords of two or more letters (strict, reserved and 2024's).
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
];

/// Check `name` as a component name (the host's rule: 2-32 of `a-z0-9_`,
/// starting with a letter, not `souk*`) and as a new extension's name (not
/// a core service, nothing cargo or Rust would refuse).
pub fn validate_component_name(name: &str) -> Result<(), String> {
    let valid = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a component name: use 2-32 of a-z, 0-9 and _, starting with a letter"
        ));
    }
    if name.starts_with("souk") {
        return Err(format!(
            "`{name}`: names starting with `souk` are reserved for the host"
        ));
    }
    Ok(())
}

/// [`validate_component_name`], and not a name an extension may not take.
pub fn validate_extension_name(name: &str) -> Result<(), String> {
    validate_component_name(name)?;
    if RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is reserved (a core service, a Rust keyword or a name cargo refuses); pick another"
        ));
    }
    Ok(())
}

/// `my_notes2` → `MyNotes2`: the prefix of the OpenAPI schema and
/// operation names.
pub fn title_case(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Replace every `{{key}}` in `template` by its value in `vars`, in one
/// pass (a value is never scanned for placeholders). An unknown key, or an
/// unclosed `{{key`, is an error: a template bug must not ship silently.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let key_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if key_len == 0 || !after[key_len..].starts_with("}}") {
            // Not a placeholder (e.g. `{{` in code): keep it as it is.
            out.push_str("{{");
            rest = after;
            continue;
        }
        let key = &after[..key_len];
        let value = vars
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("the template uses `{{{{{key}}}}}`, which has no value"))?;
        out.push_str(value);
        rest = &after[key_len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `path` as the inside of a TOML basic string or a Rust string literal
/// (the same escapes in both): `\` and `"` escaped; control characters,
/// which no sane path holds, refused rather than encoded.
pub fn quote_path(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
    if text.chars().any(char::is_control) {
        return Err(format!("{text:?} contains control characters"));
    }
    Ok(text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `to` as seen from `from` (both absolute): relative when they share more
/// than the filesystem root (the crate and the checkout move together, e.g.
/// side by side in one projects directory), absolute otherwise.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component<'_>> = from.components().collect();
    let to_parts: Vec<Component<'_>> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let shares_only_root = common
        <= from
            .iter()
            .take_while(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
            .count();
    if shares_only_root {
        return to.to_path_buf();
    }
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for part in &to_parts[common..] {
        relative.push(part.as_os_str());
    }
    relative
}

/// The `channel = "..."` of Souk's `rust-toolchain.toml`.
fn toolchain_channel() -> Result<&'static str, String> {
    SOUK_TOOLCHAIN
        .lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("channel")?.trim_start();
            value
                .strip_prefix('=')?
                .trim()
                .strip_prefix('"')?
                .split('"')
                .next()
        })
        .ok_or_else(|| "Souk's rust-toolchain.toml names no channel".to_owned())
}

/// The checkout this binary was built from (`host/..`), if it still exists.
fn built_checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Every file of the new crate, `(relative path, contents)`, for an
/// extension `name` in `crate_dir` using the checkout `souk` (both absolute).
pub fn plan(name: &str, crate_dir: &Path, souk: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    validate_extension_name(name)?;
    let sdk_path = quote_path(&relative_path(
        crate_dir,
        &souk.join("components").join("sdk"),
    ))?;
    let wit_path = quote_path(&relative_path(crate_dir, &souk.join("wit")))?;
    let souk_path = quote_path(souk)?;
    let title = title_case(name);
    let channel = toolchain_channel()?;
    let vars = [
        ("name", name),
        ("title", title.as_str()),
        ("sdk_path", sdk_path.as_str()),
        ("wit_path", wit_path.as_str()),
        ("souk_path", souk_path.as_str()),
        ("channel", channel),
    ];
    TEMPLATES
        .iter()
        .map(|template| {
            let text = render(template.text, &vars)
                .map_err(|e| format!("template {}: {e}", template.path))?;
            Ok((PathBuf::from(template.path), text))
        })
        .collect()
}

/// `souk new extension`: validate, plan every file, then write them (into
/// a directory that does not exist or is empty, so nothing is overwritten).
pub fn new_extension(args: &NewExtensionArgs) -> anyhow::Result<()> {
    validate_extension_name(&args.name).map_err(anyhow::Error::msg)?;
    let souk = args.souk.clone().unwrap_or_else(built_checkout);
    let souk = souk
        .canonicalize()
        .with_context(|| format!("the Souk checkout {} is not there", souk.display()))?;
    for needed in ["components/sdk/Cargo.toml", "wit/worlds.wit"] {
        if !souk.join(needed).is_file() {
            bail!(
                "{} is not a Souk checkout (no {needed}); pass --souk PATH",
                souk.display()
            );
        }
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{} exists and is not empty; nothing was written",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let files = plan(&args.name, &dir, &souk).map_err(anyhow::Error::msg)?;
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Souk's lock file, so the crate resolves the versions Souk was tested
    // with (cargo prunes the packages it does not use on the first build).
    let lock = souk.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock"))
            .with_context(|| format!("cannot copy {}", lock.display()))?;
    }
    eprintln!(
        "created extension `{}` in {} (SDK and WIT from {})",
        args.name,
        dir.display(),
        souk.display()
    );
    println!("{}", dir.display());
    println!(
        "next: cd {} && cargo test && souk deploy . --grant grant.json",
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_names_follow_the_component_rule() {
        for good in [
            "notes",
            "my_notes2",
            "ab",
            "a2345678901234567890123456789012",
        ] {
            assert_eq!(validate_extension_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "x",
            "Notes",
            "2notes",
            "_notes",
            "my-notes",
            "my notes",
            "notes!",
            "a23456789012345678901234567890123",
            "souk",
            "souk_extra",
            "customers",
            "inventory",
            "sales",
            "reviews",
            "fn",
            "self",
            "test",
            "std",
            "ünï",
            "notes\n",
            "a\"b",
            "{{name}}",
        ] {
            assert!(validate_extension_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn placeholders_are_substituted_once_and_unknown_ones_refused() {
        let vars = [("name", "notes"), ("title", "{{name}}")];
        assert_eq!(
            render("a {{name}} b {{title}}", &vars),
            Ok("a notes b {{name}}".to_owned()),
            "a value is not scanned again"
        );
        assert!(render("{{nope}}", &vars).is_err());
        // Braces that are not a placeholder stay as they are.
        assert_eq!(
            render("{{ x }} {{}} {{Name}} {{name", &vars),
            Ok("{{ x }} {{}} {{Name}} {{name".to_owned())
        );
        assert_eq!(render("}} {{name}}}}", &vars), Ok("}} notes}}".to_owned()));
    }

    #[test]
    fn names_become_schema_prefixes() {
        assert_eq!(title_case("notes"), "Notes");
        assert_eq!(title_case("my_notes2"), "MyNotes2");
        assert_eq!(title_case("a__b"), "AB");
    }

    #[test]
    fn paths_are_escaped_for_string_literals() {
        assert_eq!(
            quote_path(Path::new(r#"/a "b"\c"#)),
            Ok(r#"/a \"b\"\\c"#.to_owned())
        );
        assert!(quote_path(Path::new("/a\nb")).is_err());
    }

    #[test]
    fn paths_are_relative_when_they_share_a_directory() {
        assert_eq!(
            relative_path(
                Path::new("/home/me/src/notes"),
                Path::new("/home/me/src/souk/wit")
            ),
            PathBuf::from("../souk/wit")
        );
        assert_eq!(
            relative_path(Path::new("/tmp/x/notes"), Path::new("/work/souk/wit")),
            PathBuf::from("/work/souk/wit")
        );
        assert_eq!(
            relative_path(Path::new("/a/souk/ext/notes"), Path::new("/a/souk/wit")),
            PathBuf::from("../../wit")
        );
    }

    #[test]
    fn every_template_renders_with_the_name_and_paths() {
        let files = plan(
            "my_notes",
            Path::new("/tmp/somewhere/my_notes"),
            Path::new(r#"/opt/so"uk"#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files.len(), TEMPLATES.len());
        let file = |path: &str| {
            files
                .iter()
                .find(|(p, _)| p == Path::new(path))
                .map(|(_, text)| text.as_str())
                .unwrap_or_else(|| panic!("no {path}"))
        };
        for (path, text) in &files {
            assert!(
                !text.contains("{{"),
                "{}: a placeholder is left",
                path.display()
            );
        }
        let manifest = file("Cargo.toml");
        assert!(manifest.contains("name = \"my_notes\""));
        assert!(manifest.contains(r#"souk-sdk = { path = "/opt/so\"uk/components/sdk" }"#));
        assert!(manifest.contains("crate-type = [\"cdylib\"]"));
        assert!(manifest.contains("\n[workspace]\n"));
        let lib = file("src/lib.rs");
        assert!(lib.contains(r#"wit: "/opt/so\"uk/wit","#));
        assert!(lib.contains(r#"Route::get("/api/v1/my_notes", list)"#));
        assert!(lib.contains(r#"Route::post("/api/v1/my_notes", add)"#));
        assert!(lib.contains(r#"#[describe(name = "MyNotesItem")]"#));
        assert!(lib.contains("#[test]"));
        assert!(file("migrations/0001_create_items.sql").contains("CREATE TABLE my_notes_items ("));
        serde_json::from_str::<serde_json::Value>(file("grant.json"))
            .unwrap_or_else(|e| panic!("grant.json: {e}"));
        assert!(file("rust-toolchain.toml").contains("wasm32-wasip2"));
        assert!(file("README.md").contains("souk deploy . --grant grant.json"));
        assert!(plan("customers", Path::new("/tmp/c"), Path::new("/opt/souk")).is_err());
    }

    #[test]
    fn the_toolchain_channel_is_souks() {
        let channel = toolchain_channel().unwrap_or_else(|e| panic!("{e}"));
        assert!(SOUK_TOOLCHAIN.contains(&format!("channel = \"{channel}\"")));
    }
}
