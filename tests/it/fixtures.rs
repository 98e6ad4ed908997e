//! The project's own fixture corpus (tests/fixtures/mail): `ticketd parse --json` against each `<name>.expect.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::BIN;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

fn parse(path: &Path) -> Value {
    let out = std::process::Command::new(BIN)
        .args(["parse", "--json"])
        .arg(path)
        .env_remove("TICKETD_CONFIG")
        .output()
        .expect("run ticketd parse");
    assert!(
        out.status.success(),
        "ticketd parse {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Lines without trailing blanks, and no blank lines around the whole.
fn tidy(s: &str) -> String {
    s.replace("\r\n", "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_matches('\n')
        .to_string()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Every expectation key of one fixture; returns the failures.
fn check(expect: &Value, got: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(what);
    let text = got["text"].as_str().unwrap_or("");
    let visible = got["visible_text"].as_str().unwrap_or("");
    let html = got["html"].as_str().unwrap_or("");
    let Some(map) = expect.as_object() else {
        return vec!["expectation file is not a JSON object".into()];
    };
    for (key, want) in map {
        match key.as_str() {
            "note" => {}
            "from_address" => {
                if got["from"]["address"] != *want && !(want.is_null() && got["from"].is_null()) {
                    fail(format!(
                        "from_address: want {want}, got {}",
                        got["from"]["address"]
                    ));
                }
            }
            "from_name" => {
                let name = if got["from"].is_null() {
                    Value::Null
                } else {
                    got["from"]["name"].clone()
                };
                if name != *want {
                    fail(format!("from_name: want {want}, got {name}"));
                }
            }
            "subject" | "message_id" | "in_reply_to" | "classification" => {
                if got[key] != *want {
                    fail(format!("{key}: want {want}, got {}", got[key]));
                }
            }
            "to" | "cc" => {
                let addresses: Vec<Value> = got[key]
                    .as_array()
                    .map(|list| list.iter().map(|m| m["address"].clone()).collect())
                    .unwrap_or_default();
                if Value::Array(addresses.clone()) != *want {
                    fail(format!(
                        "{key}: want {want}, got {}",
                        Value::Array(addresses)
                    ));
                }
            }
            "subject_not_null" => {
                if !got["subject"].is_string() {
                    fail(format!("subject: want a string, got {}", got["subject"]));
                }
            }
            "references" => {
                if got["references"] != *want {
                    fail(format!(
                        "references: want {want}, got {}",
                        got["references"]
                    ));
                }
            }
            "text_contains" => {
                for s in strings(want) {
                    if !text.contains(s) {
                        fail(format!("text lacks {s:?}"));
                    }
                }
            }
            "text_not_contains" => {
                for s in strings(want) {
                    if text.contains(s) {
                        fail(format!("text has {s:?}"));
                    }
                }
            }
            "visible_text" => {
                let want = tidy(want.as_str().unwrap_or(""));
                if tidy(visible) != want {
                    fail(format!(
                        "visible_text: want {want:?}, got {:?}",
                        tidy(visible)
                    ));
                }
            }
            "visible_contains" => {
                for s in strings(want) {
                    if !visible.contains(s) {
                        fail(format!("visible_text lacks {s:?}: {visible:?}"));
                    }
                }
            }
            "visible_not_contains" => {
                for s in strings(want) {
                    if visible.contains(s) {
                        fail(format!("visible_text has {s:?}: {visible:?}"));
                    }
                }
            }
            "html_contains" => {
                for s in strings(want) {
                    if !html.contains(s) {
                        fail(format!("html lacks {s:?}"));
                    }
                }
            }
            "html_not_contains" => {
                for s in strings(want) {
                    if html.contains(s) {
                        fail(format!("html has {s:?}"));
                    }
                }
            }
            "html_is_null" => {
                if want.as_bool() == Some(true) && !got["html"].is_null() {
                    fail("html: want null".into());
                }
            }
            "attachment_count" => {
                let n = got["attachments"].as_array().map_or(0, Vec::len);
                if Some(n as u64) != want.as_u64() {
                    fail(format!("attachment_count: want {want}, got {n}"));
                }
            }
            "attachments" => {
                let got_list: Vec<Value> = got["attachments"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| serde_json::json!({"filename": x["filename"], "content_type": x["content_type"], "size": x["size"]}))
                            .collect()
                    })
                    .unwrap_or_default();
                if Value::Array(got_list.clone()) != *want {
                    fail(format!(
                        "attachments: want {want}, got {}",
                        Value::Array(got_list)
                    ));
                }
            }
            other => fail(format!("unknown expectation key `{other}`")),
        }
    }
    failures
}

/// Like [`check`], but the keys under `known_defects` (key → what is wrong) must
/// still fail: when one starts to hold, it is reported so it leaves that list.
fn check_with_known_defects(expect: &Value, got: &Value) -> Vec<String> {
    let Some(known) = expect.get("known_defects").and_then(Value::as_object) else {
        return check(expect, got);
    };
    let mut plain = expect.clone();
    if let Some(map) = plain.as_object_mut() {
        map.remove("known_defects");
    }
    let mut failures = Vec::new();
    let only = |keys: &dyn Fn(&str) -> bool| {
        let mut part = serde_json::Map::new();
        for (key, value) in plain.as_object().into_iter().flatten() {
            if keys(key) {
                part.insert(key.clone(), value.clone());
            }
        }
        Value::Object(part)
    };
    failures.extend(check(&only(&|k| !known.contains_key(k)), got));
    for key in known.keys() {
        if check(&only(&|k| k == key), got).is_empty() {
            failures.push(format!(
                "{key} now holds: remove it from KNOWN_DEFECTS in tests/fixtures/generate.py"
            ));
        }
    }
    failures
}

#[test]
fn every_fixture_parses_as_expected() {
    let files = fixtures();
    assert!(
        files.len() >= 40,
        "the fixture corpus is too small: {} messages",
        files.len()
    );
    let mut report = Vec::new();
    for eml in &files {
        let expect_path = eml.with_extension("expect.json");
        let expect: Value = serde_json::from_str(
            &std::fs::read_to_string(&expect_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let got = parse(eml);
        for failure in check_with_known_defects(&expect, &got) {
            report.push(format!(
                "{}: {failure}",
                eml.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} fixture expectation(s) failed:\n{}",
        report.len(),
        report.join("\n")
    );
}

#[test]
fn an_expectation_that_does_not_hold_is_reported() {
    let got = serde_json::json!({"from": {"address": "a@example.com", "name": null}, "subject": "Hi", "text": "hello", "visible_text": "hello", "html": null, "attachments": []});
    let expect = serde_json::json!({"subject": "Bye", "text_contains": ["goodbye"], "from_address": "a@example.com"});
    let failures = check(&expect, &got);
    assert_eq!(failures.len(), 2, "{failures:?}");
}
