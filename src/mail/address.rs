//! Email address normalization: one spelling per mailbox, so lookups and comparisons agree.

/// Normalizes an address as written in a header or on the command line: trims
/// whitespace, angle brackets and a `mailto:` prefix, and lowercases it.
/// Returns `None` when what is left is not `local@domain`.
pub fn normalize(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let (Some(open), Some(close)) = (s.rfind('<'), s.rfind('>'))
        && open < close
    {
        s = &s[open + 1..close];
    }
    let s = s.trim();
    let s = s
        .strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("MAILTO:"))
        .unwrap_or(s);
    let cleaned: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_end_matches('.')
        .to_lowercase();
    let (local, domain) = cleaned.rsplit_once('@')?;
    let valid_local = !local.is_empty() && !local.contains(['<', '>', ',', ';', '@']);
    let valid_domain = !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| {
            c.is_alphanumeric() || c == '.' || c == '-' || c == '[' || c == ']' || c == ':'
        });
    (valid_local && valid_domain).then_some(cleaned)
}

/// Splits `Jane Doe jane@example.com`, a display name written before a bare
/// address without angle brackets, into the name and the address. Returns
/// `None` unless the last word alone is a whole `local@domain` and no other
/// word holds an `@` (so `jane @ example.com` stays one spaced-out address).
pub fn split_bare_name(written: &str) -> Option<(&str, &str)> {
    let written = written.trim();
    let (name, last) = written.rsplit_once(char::is_whitespace)?;
    let (local, domain) = last.split_once('@')?;
    let name = name.trim();
    (!local.is_empty() && !domain.is_empty() && !name.is_empty() && !name.contains('@'))
        .then_some((name, last))
}

/// The domain of a normalized address (`""` when there is none).
pub fn domain(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// Cleans a display name: collapses whitespace, drops surrounding quotes, and
/// drops it altogether when it is empty or just repeats the address.
pub fn clean_display_name(name: &str, address: Option<&str>) -> Option<String> {
    let collapsed = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = collapsed
        .trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace())
        .to_string();
    if trimmed.is_empty() {
        return None;
    }
    if let Some(addr) = address
        && trimmed.eq_ignore_ascii_case(addr)
    {
        return None;
    }
    Some(trimmed)
}

/// Normalizes a domain as given by an operator (`@Example.COM` → `example.com`).
pub fn normalize_domain(raw: &str) -> Option<String> {
    let d = raw
        .trim()
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_lowercase();
    let ok = !d.is_empty()
        && d.contains('.')
        && d.chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    ok.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_brackets_and_whitespace() {
        assert_eq!(
            normalize(" <Jane.Doe@Example.COM> ").as_deref(),
            Some("jane.doe@example.com")
        );
        assert_eq!(
            normalize("Jane <jane@example.com>").as_deref(),
            Some("jane@example.com")
        );
        assert_eq!(
            normalize("mailto:x@example.org").as_deref(),
            Some("x@example.org")
        );
        assert_eq!(
            normalize("jane @ example.com").as_deref(),
            Some("jane@example.com")
        );
    }

    #[test]
    fn a_name_before_a_bare_address_is_split_off() {
        assert_eq!(
            split_bare_name("Test test@example.com"),
            Some(("Test", "test@example.com"))
        );
        assert_eq!(
            split_bare_name(" Jane  Doe\tjane@example.com "),
            Some(("Jane  Doe", "jane@example.com"))
        );
        assert_eq!(split_bare_name("jane @ example.com"), None);
        assert_eq!(split_bare_name("jane@ example.com"), None);
        assert_eq!(split_bare_name("a@b.example c@d.example"), None);
        assert_eq!(split_bare_name("jane@example.com"), None);
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("undisclosed-recipients:;"), None);
        assert_eq!(normalize("@example.com"), None);
        assert_eq!(normalize("jane@"), None);
        assert_eq!(normalize("jane@exa..mple.com"), None);
    }

    #[test]
    fn display_names_are_cleaned() {
        assert_eq!(
            clean_display_name("  \"Jane   Doe\" ", None).as_deref(),
            Some("Jane Doe")
        );
        assert_eq!(
            clean_display_name("jane@example.com", Some("jane@example.com")),
            None
        );
        assert_eq!(clean_display_name("  ", None), None);
    }

    #[test]
    fn domains_are_normalized() {
        assert_eq!(
            normalize_domain("@Example.COM").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize_domain("localhost"), None);
        assert_eq!(domain("a@b.example"), "b.example");
    }
}
