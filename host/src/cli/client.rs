//! The developer loop against a running host's admin API: deploy (building
//! a crate first), list, roll back, unload, and grants. Progress goes to
//! stderr, results to stdout; a refusal prints the problem's `detail` and
//! every `errors` entry and fails the command.
//!
//! Plain HTTP only: the client is reqwest without a TLS stack (the same
//! build the webhook sender uses), meant for a host on loopback or reached
//! through a tunnel.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::scaffold::validate_component_name;
use souk::config::{DeployArgs, GrantArgs, NamedArgs, RemoteArgs, Secret, UnloadArgs};

/// The target components are built for.
const TARGET: &str = "wasm32-wasip2";
/// A deploy compiles the component on the host (seconds for a large one
/// on a cold cache): allow for it.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);
/// Every other call is a quick read or write.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one host's admin API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
    json: bool,
}

impl Client {
    /// A client for `remote`; refuses `https://` (no TLS stack) up front.
    pub fn new(remote: &RemoteArgs) -> anyhow::Result<Self> {
        let base = remote.url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!(
                "SOUK_URL must be a plain http:// URL (got `{base}`): the CLI has no TLS stack; \
                 reach a remote host through a tunnel to its loopback address"
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base,
            token: remote.token.clone(),
            json: remote.json,
        })
    }

    /// Send one request and return its JSON answer (`Null` for 204), or an
    /// error that says what the host refused and why.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.token.expose())
            .timeout(timeout);
        if let Some((content_type, bytes)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let response = request.send().await.map_err(|error| {
            if error.is_connect() {
                anyhow!(
                    "cannot reach {}: is `souk serve` running there? ({error})",
                    self.base
                )
            } else if error.is_timeout() {
                anyhow!("{method} {path}: no answer within {} s", timeout.as_secs())
            } else {
                anyhow!("{method} {path}: {error}")
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: the answer was cut off"))?;
        if status.is_success() {
            if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("{method} {path}: the answer is not JSON"));
        }
        Err(anyhow!(refusal(&method, path, status, &bytes)))
    }
}

/// What a refused request tells the user: the status, the problem's
/// `detail` (or `title`), and each `errors` entry on its own line.
pub fn refusal(method: &Method, path: &str, status: StatusCode, body: &[u8]) -> String {
    let mut text = format!("{method} {path} was refused: {status}");
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        let body = String::from_utf8_lossy(body);
        let body = body.trim();
        if !body.is_empty() {
            text.push_str(": ");
            text.push_str(&body.chars().take(500).collect::<String>());
        }
        return text;
    };
    if let Some(detail) = problem["detail"].as_str().or(problem["title"].as_str()) {
        text.push_str(": ");
        text.push_str(detail);
    }
    for error in problem["errors"].as_array().into_iter().flatten() {
        let field = error["field"].as_str().unwrap_or("?");
        let message = error["message"].as_str().unwrap_or("");
        text.push_str(&format!("\n  {field}: {message}"));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        text.push_str("\n  (SOUK_TOKEN must be an admin's access token, still valid)");
    }
    text
}

/// `souk deploy`: build a crate (or take a `.wasm`), set the grant if
/// asked, upload the component.
pub async fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.remote)?;
    let (wasm, built_name) = if args.path.is_dir() {
        let (wasm, name) = build_crate(&args.path)?;
        (wasm, Some(name))
    } else {
        (args.path.clone(), None)
    };
    let name = match (&args.name, built_name) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) => name,
        (None, None) => wasm_name(&wasm)?,
    };
    validate_component_name(&name).map_err(|e| anyhow!("{e}; pass --name NAME"))?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    if let Some(grant) = &args.grant {
        put_grant(&client, &name, read_grant_file(grant)?).await?;
    }
    eprintln!(
        "uploading {} ({} KiB) as `{name}` to {} (the host compiles and checks it)",
        wasm.display(),
        bytes.len().div_ceil(1024),
        client.base
    );
    let answer = client
        .call(
            Method::PUT,
            &format!("/admin/components/{name}"),
            Some(("application/wasm", bytes)),
            DEPLOY_TIMEOUT,
        )
        .await?;
    if client.json {
        print_json(&answer)?;
    } else {
        println!("deployed {}", component_line(&answer));
    }
    Ok(())
}

/// `souk components`.
pub async fn components(remote: &RemoteArgs) -> anyhow::Result<()> {
    let client = Client::new(remote)?;
    let answer = client
        .call(Method::GET, "/admin/components", None, CALL_TIMEOUT)
        .await?;
    if client.json {
        return print_json(&answer);
    }
    for component in answer["items"].as_array().into_iter().flatten() {
        println!("{}", component_line(component));
        for earlier in component["previous_versions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "    {} {} {} by {} ({})",
                text(&earlier["version"]),
                short_sha(&earlier["sha256"]),
                text(&earlier["deployed_at"]),
                text(&earlier["deployed_by"]),
                text(&earlier["state"]),
            );
        }
    }
    Ok(())
}

/// `souk rollback NAME`.
pub async fn rollback(args: &NamedArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.remote)?;
    eprintln!("rolling `{}` back to its previous version", args.name);
    let answer = client
        .call(
            Method::POST,
            &format!("/admin/components/{}/rollback", args.name),
            None,
            DEPLOY_TIMEOUT,
        )
        .await?;
    if client.json {
        print_json(&answer)
    } else {
        println!("rolled back: {}", component_line(&answer));
        Ok(())
    }
}

/// `souk unload NAME [--data keep|drop]`.
pub async fn unload(args: &UnloadArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.target.remote)?;
    let name = &args.target.name;
    client
        .call(
            Method::DELETE,
            &format!("/admin/components/{name}?data={}", args.data),
            None,
            CALL_TIMEOUT,
        )
        .await?;
    let data = if args.data == "drop" {
        "its tables dropped"
    } else {
        "its tables kept"
    };
    println!("unloaded `{name}`, {data}");
    Ok(())
}

/// `souk grants`.
pub async fn grants(remote: &RemoteArgs) -> anyhow::Result<()> {
    let client = Client::new(remote)?;
    let answer = client
        .call(Method::GET, "/admin/grants", None, CALL_TIMEOUT)
        .await?;
    if client.json {
        return print_json(&answer);
    }
    for grant in answer["items"].as_array().into_iter().flatten() {
        println!("{}", grant_line(grant));
    }
    Ok(())
}

/// `souk grant NAME ...`.
pub async fn grant(args: &GrantArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.target.remote)?;
    let body = match &args.file {
        Some(file) => read_grant_file(file)?,
        None => grant_body(args),
    };
    let answer = put_grant(&client, &args.target.name, body).await?;
    if client.json {
        print_json(&answer)
    } else {
        println!("{}", grant_line(&answer));
        Ok(())
    }
}

/// `souk revoke NAME`.
pub async fn revoke(args: &NamedArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.remote)?;
    client
        .call(
            Method::DELETE,
            &format!("/admin/grants/{}", args.name),
            None,
            CALL_TIMEOUT,
        )
        .await?;
    println!(
        "revoked the grant of `{}`: base imports and strict limits only",
        args.name
    );
    Ok(())
}

/// The grant `souk grant`'s flags describe: short interface names get
/// their package, absent limits are left to the host's defaults.
pub fn grant_body(args: &GrantArgs) -> Value {
    let imports: Vec<String> = args
        .imports
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .map(|name| {
            if name.contains('/') {
                name.to_owned()
            } else {
                format!("souk:platform/{name}")
            }
        })
        .collect();
    let mut body = json!({ "imports": imports });
    let subscribe: Vec<&str> = args
        .subscribe
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if !subscribe.is_empty() {
        body["subscribe"] = json!(subscribe);
    }
    for (field, value) in [
        ("memory_mib", args.memory_mib),
        ("deadline_ms", args.deadline_ms),
        ("max_concurrency", args.max_concurrency),
        ("max_response_kib", args.max_response_kib),
    ] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    body
}

async fn put_grant(client: &Client, name: &str, body: Value) -> anyhow::Result<Value> {
    eprintln!("setting the grant of `{name}`: {body}");
    client
        .call(
            Method::PUT,
            &format!("/admin/grants/{name}"),
            Some(("application/json", serde_json::to_vec(&body)?)),
            CALL_TIMEOUT,
        )
        .await
}

/// A grant file, checked to be a JSON object before anything is sent.
fn read_grant_file(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the grant {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("the grant {} is not JSON", path.display()))?;
    if !value.is_object() {
        bail!("the grant {} must be a JSON object", path.display());
    }
    Ok(value)
}

/// The component name a `.wasm` file is deployed under: its file name.
fn wasm_name(path: &Path) -> anyhow::Result<String> {
    if path.extension().is_none_or(|ext| ext != "wasm") {
        bail!(
            "{} is neither a crate directory nor a .wasm file",
            path.display()
        );
    }
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{} has no usable file name; pass --name", path.display()))
}

/// Build the crate in `dir` for wasm32-wasip2 (release) and return its
/// component and library name. The artifact is taken from cargo's own
/// report, so any target directory (`CARGO_TARGET_DIR`, a config file, a
/// surrounding workspace) works.
fn build_crate(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} has no Cargo.toml", dir.display());
    }
    let manifest = manifest.canonicalize()?;
    eprintln!(
        "building {} (cargo build --release --target {TARGET})",
        dir.display()
    );
    // Run in the crate's directory so rustup honours its rust-toolchain.toml.
    let mut child = Command::new("cargo")
        .current_dir(dir)
        .args(["build", "--release", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo (is it on PATH?)")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("cargo's output was not captured"))?;
    let mut built = Vec::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(artifact) = component_artifact(&line?) {
            built.push(artifact);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "cargo build failed ({status}); is the {TARGET} target installed? (`rustup target add {TARGET}`)"
        );
    }
    // In a workspace, the crate asked for; else the one component built.
    let ours: Vec<_> = built
        .iter()
        .filter(|a| Path::new(&a.manifest) == manifest)
        .collect();
    let all: Vec<_> = built.iter().collect();
    match (ours.as_slice(), all.as_slice()) {
        ([one], _) | ([], [one]) => Ok((one.wasm.clone(), one.name.clone())),
        ([], []) => bail!(
            "cargo built no component in {}: the crate needs crate-type = [\"cdylib\"]",
            dir.display()
        ),
        _ => bail!(
            "cargo built several components in {}; deploy one .wasm file with --name",
            dir.display()
        ),
    }
}

/// A component cargo built.
#[derive(Debug, PartialEq)]
struct Artifact {
    name: String,
    wasm: PathBuf,
    manifest: String,
}

/// A `compiler-artifact` line of cargo's JSON messages for a cdylib with a
/// `.wasm` file; `None` for every other line.
fn component_artifact(line: &str) -> Option<Artifact> {
    let message: Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let target = &message["target"];
    let is_cdylib = target["kind"]
        .as_array()?
        .iter()
        .any(|kind| kind == "cdylib");
    if !is_cdylib {
        return None;
    }
    let wasm = message["filenames"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|file| file.ends_with(".wasm"))?;
    Some(Artifact {
        name: target["name"].as_str()?.replace('-', "_"),
        wasm: PathBuf::from(wasm),
        manifest: message["manifest_path"].as_str()?.to_owned(),
    })
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn short_sha(value: &Value) -> String {
    format!(
        "sha256:{}",
        text(value).chars().take(12).collect::<String>()
    )
}

/// One component as a line: name, version, digest, when and by whom.
fn component_line(component: &Value) -> String {
    let history = component["previous_versions"]
        .as_array()
        .map_or(0, Vec::len);
    format!(
        "{:<16} {:<10} {} {}{} deployed {} by {} ({history} earlier)",
        text(&component["name"]),
        text(&component["version"]),
        short_sha(&component["sha256"]),
        text(&component["status"]),
        if component["core"] == true {
            ", core"
        } else {
            ""
        },
        text(&component["deployed_at"]),
        text(&component["deployed_by"]),
    )
}

/// One grant as a line: imports, subscriptions, limits and source.
fn grant_line(grant: &Value) -> String {
    let list = |value: &Value| {
        let items: Vec<&str> = value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(",")
        }
    };
    format!(
        "{:<16} imports={} subscribe={} memory={}MiB deadline={}ms concurrency={} response={}KiB ({})",
        text(&grant["component"]),
        list(&grant["imports"]),
        list(&grant["subscribe"]),
        grant["memory_mib"],
        grant["deadline_ms"],
        grant["max_concurrency"],
        grant["max_response_kib"],
        text(&grant["source"]),
    )
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_shows_detail_and_every_field_error() {
        let body = br#"{"type":"urn:souk:error:invalid-input","title":"Invalid input","status":400,
            "detail":"the grant is invalid","errors":[{"field":"imports","message":"unknown interface"},
            {"field":"memory_mib","message":"must be a positive integer"}]}"#;
        let text = refusal(
            &Method::PUT,
            "/admin/grants/x",
            StatusCode::BAD_REQUEST,
            body,
        );
        assert!(
            text.contains("400 Bad Request: the grant is invalid"),
            "{text}"
        );
        assert!(text.contains("\n  imports: unknown interface"), "{text}");
        assert!(
            text.contains("\n  memory_mib: must be a positive integer"),
            "{text}"
        );
        let text = refusal(
            &Method::GET,
            "/x",
            StatusCode::BAD_GATEWAY,
            b"upstream down",
        );
        assert!(text.ends_with("502 Bad Gateway: upstream down"), "{text}");
        let text = refusal(&Method::GET, "/x", StatusCode::UNAUTHORIZED, b"{}");
        assert!(text.contains("admin's access token"), "{text}");
    }

    #[test]
    fn cargo_reports_the_component_it_built() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///x#notes@0.1.0","manifest_path":"/x/Cargo.toml","target":{"kind":["cdylib"],"crate_types":["cdylib"],"name":"my-notes","src_path":"/x/src/lib.rs"},"filenames":["/t/wasm32-wasip2/release/my_notes.wasm"],"fresh":false}"#;
        assert_eq!(
            component_artifact(line),
            Some(Artifact {
                name: "my_notes".into(),
                wasm: PathBuf::from("/t/wasm32-wasip2/release/my_notes.wasm"),
                manifest: "/x/Cargo.toml".into(),
            })
        );
        let lib = line.replace(r#"["cdylib"],"crate_types""#, r#"["lib"],"crate_types""#);
        assert_eq!(component_artifact(&lib), None);
        assert_eq!(
            component_artifact(r#"{"reason":"build-finished","success":true}"#),
            None
        );
        assert_eq!(component_artifact("Compiling notes"), None);
    }

    #[test]
    fn grant_flags_become_the_admin_apis_json() {
        use clap::Parser;
        let cli = souk::config::Cli::try_parse_from([
            "souk",
            "grant",
            "notes",
            "--token",
            "t",
            "--imports",
            "inventory-api,souk:platform/sales-api",
            "--deadline-ms",
            "500",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let souk::config::Command::Grant(args) = cli.command else {
            panic!("not a grant: {cli:?}");
        };
        assert_eq!(
            grant_body(&args),
            json!({
                "imports": ["souk:platform/inventory-api", "souk:platform/sales-api"],
                "deadline_ms": 500,
            })
        );
    }

    #[test]
    fn https_is_refused_up_front() {
        let remote = RemoteArgs {
            url: "https://shop.example".into(),
            token: Secret::new("t"),
            json: false,
        };
        assert!(Client::new(&remote).is_err());
    }

    #[test]
    fn a_wasm_file_is_deployed_under_its_name() {
        assert_eq!(
            wasm_name(Path::new("/x/notes.wasm")).ok(),
            Some("notes".into())
        );
        assert!(wasm_name(Path::new("/x/notes.txt")).is_err());
    }
}
