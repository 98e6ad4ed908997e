//! Notification templates: the shipped set (embedded in the binary), an operator's
//! directory on top, all compiled and test-rendered at start so a broken one is
//! found before any mail goes out.

use std::collections::BTreeSet;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::store::outbox::Notice;

/// The events that send mail, one template pair (`.txt.j2`, `.html.j2`) each.
pub const EVENTS: [&str; Notice::ALL.len()] = {
    let mut names = [""; Notice::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Notice::ALL[i].as_str();
        i += 1;
    }
    names
};

/// The languages ticketd ships templates for.
pub const SHIPPED_LANGUAGES: [&str; 5] = ["en", "fr", "es", "ja", "sv"];

macro_rules! shipped {
    ($($lang:literal),*) => {
        &[$(
            shipped!(@one $lang, "ticket_received"),
            shipped!(@one $lang, "agent_reply"),
            shipped!(@one $lang, "status_changed"),
            shipped!(@one $lang, "message_held"),
            shipped!(@one $lang, "reminder"),
            shipped!(@one $lang, "agent_new_ticket"),
            shipped!(@one $lang, "agent_customer_reply"),
            shipped!(@one $lang, "agent_note"),
            shipped!(@one $lang, "commands_rejected"),
        )*]
    };
    (@one $lang:literal, $event:literal) => {
        (
            concat!($lang, "/", $event),
            include_str!(concat!("../../templates/", $lang, "/", $event, ".txt.j2")),
            include_str!(concat!("../../templates/", $lang, "/", $event, ".html.j2")),
        )
    };
}

/// (`lang/event`, text template, HTML template) for every shipped pair.
const SHIPPED: &[(&str, &str, &str)] = shipped!("en", "fr", "es", "ja", "sv");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {message}")]
    Broken { name: String, message: String },
    #[error("cannot read the templates directory {path}: {message}")]
    Directory { path: String, message: String },
    #[error("template {name}: the text template must start with a `Subject:` line")]
    NoSubject { name: String },
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
    languages: BTreeSet<String>,
}

impl Templates {
    /// The shipped templates, with those in `override_dir` (same layout) replacing or adding to them.
    pub fn load(override_dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut languages = BTreeSet::new();
        for (name, text, html) in SHIPPED {
            add(&mut env, format!("{name}.txt.j2"), text.to_string())?;
            add(&mut env, format!("{name}.html.j2"), html.to_string())?;
            if let Some((lang, _)) = name.split_once('/') {
                languages.insert(lang.to_string());
            }
        }
        if let Some(dir) = override_dir {
            for (name, source) in read_dir_templates(dir)? {
                if let Some((lang, _)) = name.split_once('/') {
                    languages.insert(lang.to_string());
                }
                add(&mut env, name, source)?;
            }
        }
        let templates = Templates { env, languages };
        templates.check_all()?;
        Ok(templates)
    }

    /// Languages with templates (shipped or added by the operator).
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.iter().map(String::as_str)
    }

    /// `wanted` when templates exist in it, else `fallback`, else English.
    pub fn pick_language<'a>(&'a self, wanted: &[Option<&str>], fallback: &'a str) -> &'a str {
        for lang in wanted.iter().flatten() {
            let lang = lang.trim().to_ascii_lowercase();
            if let Some(found) = self.languages.get(&lang) {
                return found;
            }
        }
        if self.languages.contains(fallback) {
            fallback
        } else {
            "en"
        }
    }

    /// Renders `event`'s subject, text and HTML from the templates of `lang`
    /// with `context`; a template that fails or has no subject line is an error.
    pub fn render<S: Serialize>(
        &self,
        event: &str,
        lang: &str,
        context: &S,
    ) -> Result<Rendered, TemplateError> {
        let ctx = Value::from(minijinja::value::Serde(context));
        let text_name = format!("{lang}/{event}.txt.j2");
        let html_name = format!("{lang}/{event}.html.j2");
        let text = self.render_one(&text_name, &ctx)?;
        let html = self.render_one(&html_name, &ctx)?;
        let (subject, body) = split_subject(&text).ok_or_else(|| TemplateError::NoSubject {
            name: text_name.clone(),
        })?;
        Ok(Rendered {
            subject,
            text: body,
            html,
        })
    }

    fn render_one(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let broken = |e: minijinja::Error| TemplateError::Broken {
            name: name.to_string(),
            message: describe(&e),
        };
        self.env
            .get_template(name)
            .map_err(broken)?
            .render(ctx)
            .map_err(broken)
    }

    /// Renders every event in every language with sample data, which finds
    /// undefined variables and missing files as well as syntax errors.
    pub fn check_all(&self) -> Result<(), TemplateError> {
        for lang in &self.languages {
            for event in EVENTS {
                for status in ["pending", "solved", "closed"] {
                    for held in [
                        "locked",
                        "inactive",
                        "role_not_permitted",
                        "unknown_sender",
                        "rejected",
                    ] {
                        self.render(event, lang, &super::context::sample(status, held))?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn add(env: &mut Environment<'static>, name: String, source: String) -> Result<(), TemplateError> {
    env.add_template_owned(name.clone(), source)
        .map_err(|e| TemplateError::Broken {
            name,
            message: describe(&e),
        })
}

fn describe(e: &minijinja::Error) -> String {
    let mut message = e.to_string();
    if let Some(detail) = e.detail()
        && !message.contains(detail)
    {
        message.push_str(": ");
        message.push_str(detail);
    }
    message
}

/// `lang/event.(txt|html).j2` files under `dir`.
fn read_dir_templates(dir: &Path) -> Result<Vec<(String, String)>, TemplateError> {
    let unreadable = |e: std::io::Error| TemplateError::Directory {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut found = Vec::new();
    for lang_entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let lang_entry = lang_entry.map_err(unreadable)?;
        if !lang_entry.file_type().map_err(unreadable)?.is_dir() {
            continue;
        }
        let lang = lang_entry.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(lang_entry.path()).map_err(unreadable)? {
            let file = file.map_err(unreadable)?;
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".txt.j2") || name.ends_with(".html.j2") {
                let source = std::fs::read_to_string(file.path()).map_err(unreadable)?;
                found.push((format!("{lang}/{name}"), source));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Splits `Subject: …` (first line) from the body that follows the blank line.
fn split_subject(text: &str) -> Option<(String, String)> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first.strip_prefix("Subject:")?.trim().to_string();
    let body = rest
        .strip_prefix('\n')
        .or_else(|| rest.strip_prefix("\r\n"))
        .unwrap_or(rest);
    Some((subject, body.trim_end().to_string() + "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_compile_and_render_in_every_language() {
        let templates = Templates::load(None).expect("shipped templates");
        let languages: Vec<&str> = templates.languages().collect();
        assert_eq!(languages.len(), SHIPPED_LANGUAGES.len(), "{languages:?}");
        for lang in SHIPPED_LANGUAGES {
            for event in EVENTS {
                let variants: &[(&str, &str)] = match event {
                    "status_changed" => &[("pending", ""), ("solved", ""), ("closed", "")],
                    "message_held" => &[
                        ("", "locked"),
                        ("", "inactive"),
                        ("", "role_not_permitted"),
                        ("", "unknown_sender"),
                        ("", "rejected"),
                    ],
                    _ => &[("open", "")],
                };
                for (status, held) in variants {
                    let r = templates
                        .render(event, lang, &crate::notify::context::sample(status, held))
                        .unwrap_or_else(|e| panic!("{lang}/{event}: {e}"));
                    assert!(
                        !r.subject.is_empty()
                            && !r.text.trim().is_empty()
                            && !r.html.trim().is_empty()
                    );
                    insta::assert_snapshot!(
                        format!(
                            "{lang}__{event}{}{}",
                            suffix(status, event),
                            suffix(held, event)
                        ),
                        format!(
                            "Subject: {}\n\n{}\n----- html -----\n{}",
                            r.subject, r.text, r.html
                        )
                    );
                }
            }
        }
    }

    fn suffix(variant: &str, event: &str) -> String {
        if variant.is_empty() || !matches!(event, "status_changed" | "message_held") {
            String::new()
        } else {
            format!("__{variant}")
        }
    }

    #[test]
    fn customer_text_is_escaped_in_html_but_not_in_text() {
        let templates = Templates::load(None).expect("templates");
        let mut ctx = crate::notify::context::sample("open", "");
        ctx.message.text = "<script>alert(1)</script> & more".into();
        let r = templates
            .render("agent_new_ticket", "en", &ctx)
            .expect("render");
        assert!(r.text.contains("<script>alert(1)</script> & more"));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
    }

    #[test]
    fn an_operator_template_replaces_the_shipped_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("en")).expect("mkdir");
        std::fs::write(
            dir.path().join("en/reminder.txt.j2"),
            "Subject: Nudge {{ ticket.tag }}\n\nStill there, {{ recipient.address }}?\n",
        )
        .expect("write");
        let templates = Templates::load(Some(dir.path())).expect("templates");
        let r = templates
            .render(
                "reminder",
                "en",
                &crate::notify::context::sample("pending", ""),
            )
            .expect("render");
        assert_eq!(r.subject, "Nudge [Support #42]");
        assert_eq!(r.text, "Still there, jane@customer.example?\n");
    }

    #[test]
    fn broken_operator_templates_are_found_at_load_time() {
        for (source, expect) in [
            ("Subject: x\n\n{% if %}\n", "reminder.txt.j2"),
            (
                "Subject: x\n\n{{ ticket.nonexistent_field.deeper }}\n",
                "reminder.txt.j2",
            ),
            ("no subject line here\n", "Subject"),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir(dir.path().join("en")).expect("mkdir");
            std::fs::write(dir.path().join("en/reminder.txt.j2"), source).expect("write");
            let err = match Templates::load(Some(dir.path())) {
                Ok(_) => panic!("{source:?} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(expect), "{source:?}: {err}");
        }
    }

    #[test]
    fn an_added_language_is_used_and_the_default_is_the_fallback() {
        let templates = Templates::load(None).expect("templates");
        assert_eq!(templates.pick_language(&[Some("FR"), None], "en"), "fr");
        assert_eq!(
            templates.pick_language(&[Some("de"), Some("sv")], "en"),
            "sv"
        );
        assert_eq!(templates.pick_language(&[None, None], "es"), "es");
        assert_eq!(templates.pick_language(&[Some("xx")], "yy"), "en");
    }

    #[test]
    fn subject_line_is_split_from_the_body() {
        assert_eq!(
            split_subject("Subject: Hi there\n\nBody\n"),
            Some(("Hi there".to_string(), "Body\n".to_string()))
        );
        assert_eq!(split_subject("No subject line\n\nBody"), None);
    }
}
