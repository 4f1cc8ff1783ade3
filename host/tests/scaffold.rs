//! The extension author's loop, black-box: `souk new extension` writes a
//! crate into a temporary directory outside the repository (pointing at
//! this checkout with `--souk`), `souk grant` and `souk deploy` build it
//! for wasm32-wasip2 and put it into a running host (the real binary), and
//! its route answers. Then a refused grant shows the host's reasons and
//! fails the command, and a rollback with no earlier version is refused.
//!
//! The out-of-tree build uses its own target directory inside this
//! repository's `target/` (`target/scaffold`), so CI caches nothing outside
//! the repository and later runs reuse the compiled dependencies.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    io::Write,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Instant,
};

use support::{Host, Reply, read_reply};

const ADMIN: &str = "root";
const PASSWORD: &str = "rootpass123";
const NAME: &str = "scaffolded";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap()
}

/// `souk ARGS` against the host at `addr` with `token`, in `dir`.
fn souk(args: &[&str], addr: &str, token: &str, dir: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_souk"))
        .args(args)
        .current_dir(dir)
        .env("SOUK_URL", format!("http://{addr}"))
        .env("SOUK_TOKEN", token)
        .env(
            "CARGO_TARGET_DIR",
            repository().join("target").join("scaffold"),
        )
        // The outer build's settings are for the host, not this crate.
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("SOUK_CHECKOUT")
        .output()
        .expect("souk runs");
    eprintln!(
        "$ souk {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `method path` with a bearer token and a JSON body.
fn send(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    read_reply(&mut stream)
}

#[test]
fn a_scaffolded_extension_builds_outside_the_repository_deploys_and_serves() {
    let outside = tempfile::tempdir().unwrap();
    let crate_dir = outside.path().join(NAME);
    assert!(
        !crate_dir
            .canonicalize()
            .unwrap_or_else(|_| crate_dir.clone())
            .starts_with(repository()),
        "the temporary directory must be outside the repository"
    );

    // Scaffold: no host needed.
    let repo = repository();
    let made = Command::new(env!("CARGO_BIN_EXE_souk"))
        .args(["new", "extension", NAME, "--dir"])
        .arg(&crate_dir)
        .arg("--souk")
        .arg(&repo)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "README.md",
        "grant.json",
        "src/lib.rs",
        "migrations/0001_create_items.sql",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }
    // A second scaffold into the same directory writes nothing.
    let again = Command::new(env!("CARGO_BIN_EXE_souk"))
        .args(["new", "extension", NAME, "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let db = support::sqlite();
    let host = Host::start(
        &db.url,
        &[
            ("SOUK_ADMIN_USERNAME", ADMIN),
            ("SOUK_ADMIN_PASSWORD", PASSWORD),
        ],
    );
    let login = host.request(
        "POST",
        "/api/v1/auth/login",
        Some(&format!(
            r#"{{"username":"{ADMIN}","password":"{PASSWORD}"}}"#
        )),
    );
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.json()["access_token"].as_str().unwrap().to_owned();

    // The grant it needs (none beyond the defaults), with a looser deadline.
    let granted = souk(
        &["grant", NAME, "--deadline-ms", "500"],
        &host.addr,
        &token,
        &crate_dir,
    );
    assert!(granted.status.success());
    assert!(String::from_utf8_lossy(&granted.stdout).contains("deadline=500ms"));

    // Build (cargo, for wasm32-wasip2) and deploy, then set the crate's
    // own grant file too.
    let started = Instant::now();
    let deployed = souk(
        &["deploy", ".", "--grant", "grant.json"],
        &host.addr,
        &token,
        &crate_dir,
    );
    eprintln!(
        "build and deploy took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(deployed.status.success());
    let stdout = String::from_utf8_lossy(&deployed.stdout);
    assert!(stdout.starts_with(&format!("deployed {NAME}")), "{stdout}");
    assert!(
        stdout.contains("0.1.0"),
        "the extension's own version: {stdout}"
    );

    // Served: its route, its table.
    let path = format!("/api/v1/{NAME}");
    let empty = support::request_with_token(&host.addr, "GET", &path, &token);
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.json()["total"], 0);
    let added = send(&host.addr, "POST", &path, &token, r#"{"text":" hello "}"#);
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.json()["text"], "hello");
    let bad = send(&host.addr, "POST", &path, &token, r#"{"text":"","x":1}"#);
    assert_eq!(bad.status, 400, "{}", bad.text);
    let listed = support::request_with_token(&host.addr, "GET", &path, &token);
    assert_eq!(listed.json()["total"], 1, "{}", listed.text);
    let anonymous = host.request("GET", &path, None);
    assert_eq!(anonymous.status, 401);

    // Documented from its route declarations: `/openapi.json` has its
    // routes, the text limit its parser enforces, and no clash.
    let document = host.request("GET", "/openapi.json", None).json();
    let add = &document["paths"][&path]["post"];
    assert!(add["operationId"].is_string(), "{document:#}");
    let body = add["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .and_then(|reference| reference.strip_prefix('#'))
        .and_then(|pointer| document.pointer(pointer))
        .unwrap_or_else(|| panic!("no body schema: {add:#}"));
    assert_eq!(body["properties"]["text"]["maxLength"], 200, "{body:#}");

    let listed = souk(&["components"], &host.addr, &token, &crate_dir);
    assert!(listed.status.success());
    assert!(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .any(|line| line.starts_with(NAME) && line.contains("0.1.0")),
    );

    // A refusal: the host's field errors on stderr, a failing status.
    let refused = souk(
        &["grant", NAME, "--imports", "tokens"],
        &host.addr,
        &token,
        &crate_dir,
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("400"), "{stderr}");
    assert!(stderr.contains("\n  imports"), "{stderr}");

    // One version only: nothing to roll back to, said so.
    let rollback = souk(&["rollback", NAME], &host.addr, &token, &crate_dir);
    assert!(!rollback.status.success());
    assert!(String::from_utf8_lossy(&rollback.stderr).contains("409"));

    // A wrong token is refused, saying what the token must be.
    let forbidden = souk(&["components"], &host.addr, "not-a-token", &crate_dir);
    assert!(!forbidden.status.success());
    assert!(String::from_utf8_lossy(&forbidden.stderr).contains("401"));
}
