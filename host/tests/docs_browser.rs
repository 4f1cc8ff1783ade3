//! `/docs` as people see it: the real binary serves the page, Debian's
//! headless Chromium runs its script (which fetches `/openapi.json`) and
//! dumps the rendered DOM, and the DOM is checked against the document the
//! host served: every operation exactly once (by its `data-operation`
//! marker), nothing else shown as an operation (a path item's shared
//! `parameters` once rendered as a bogus operation), each operation listing
//! the parameters it shares with its path, and every event of the catalogue.
//!
//! The renderer is JavaScript, so no Rust unit test can cover it; this is its
//! test. Without `/usr/bin/chromium` it is skipped (CI installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    collections::BTreeMap,
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::Host;

const CHROMIUM: &str = "/usr/bin/chromium";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn docs_render_every_operation_once_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() {
        println!("SKIPPED: chromium not installed");
        return;
    }
    let database = support::sqlite();
    let host = Host::start(&database.url, &[]);
    let document = host.request("GET", "/openapi.json", None).json();
    assert!(
        document["paths"]["/api/v1/goods"].is_object(),
        "the components' routes are in the document"
    );

    // The markup only: the script's own text is no rendered element.
    let dom = without_scripts(&render(&format!("http://{}/docs", host.addr)));
    assert!(
        !dom.contains("data-error="),
        "the page could not load the document:\n{dom}"
    );

    // Every operation the document has, with the parameter names its path
    // item shares with it.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let shared: Vec<String> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            expected.insert(format!("{} {path}", method.to_uppercase()), shared.clone());
        }
    }
    assert!(
        expected.keys().any(|k| k == "DELETE /admin/webhooks/{id}"),
        "the admin API is documented"
    );
    assert!(
        dom.contains(&format!("data-rendered=\"{}\"", expected.len())),
        "the script did not finish rendering {} operations:\n{dom}",
        expected.len()
    );

    let rendered = marked(&dom, "data-operation");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (operation, _) in &rendered {
        *seen.entry(operation.as_str()).or_default() += 1;
    }
    for operation in expected.keys() {
        assert_eq!(
            seen.get(operation.as_str()),
            Some(&1),
            "{operation} must be rendered exactly once"
        );
    }
    let unexpected: Vec<_> = seen
        .keys()
        .filter(|operation| !expected.contains_key(**operation))
        .collect();
    assert!(
        unexpected.is_empty(),
        "rendered as operations but not in the document: {unexpected:?}"
    );
    assert!(
        !dom.contains("class=\"method parameters\""),
        "a path item's `parameters` is rendered as an operation"
    );

    // Shared path parameters show up under each operation of their path.
    for (operation, block) in &rendered {
        for name in &expected[operation] {
            assert!(
                block.contains(&format!("<code>{name}</code>")),
                "{operation} does not list its path's parameter `{name}`"
            );
        }
    }

    // The event catalogue, one entry per event type.
    let events = marked(&dom, "data-webhook");
    let mut event_names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    event_names.sort_unstable();
    let mut catalogue: Vec<&str> = document["webhooks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    catalogue.sort_unstable();
    assert!(!catalogue.is_empty());
    assert_eq!(event_names, catalogue);
}

/// The DOM of `url` after its scripts ran, as headless Chromium dumps it.
fn render(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Virtual time lets the fetch of /openapi.json and the
            // rendering finish before the DOM is dumped.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).ok();
        text
    });
    // A browser that hangs must fail the test, not the CI run.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish in 120 s:\n{}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = out.join().unwrap();
    let log = err.join().unwrap();
    assert!(
        status.success() && !dom.is_empty(),
        "chromium failed ({status}):\n{log}"
    );
    dom
}

/// Every element marked `attribute="value"` in `dom`: the (unescaped)
/// value and the markup up to the next marked element, which holds that
/// element's content.
fn marked(dom: &str, attribute: &str) -> Vec<(String, String)> {
    let needle = format!("{attribute}=\"");
    let mut found = Vec::new();
    for piece in dom.split(needle.as_str()).skip(1) {
        let Some((value, rest)) = piece.split_once('"') else {
            continue;
        };
        // The block ends where the element does (a marked element never
        // nests another).
        let block = rest.split("</details>").next().unwrap_or(rest);
        found.push((unescape(value), block.to_owned()));
    }
    found
}

/// `dom` without its `<script>` elements.
fn without_scripts(dom: &str) -> String {
    let mut markup = String::new();
    let mut rest = dom;
    while let Some((before, script)) = rest.split_once("<script") {
        markup.push_str(before);
        rest = script
            .split_once("</script>")
            .map_or("", |(_, after)| after);
    }
    markup.push_str(rest);
    markup
}

/// Undo the escaping the DOM serializer applies to attribute values.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}
