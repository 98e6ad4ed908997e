//! This host's names, as mail servers know it.

/// This host's fully qualified name (`gethostname`, then its canonical name
/// from the resolver), or `None` when it has no dotted name.
pub fn fully_qualified_name() -> Option<String> {
    let short = nix::unistd::gethostname().ok()?.into_string().ok()?;
    if short.contains('.') {
        return Some(short);
    }
    let hints = dns_lookup::AddrInfoHints {
        flags: libc::AI_CANONNAME,
        ..dns_lookup::AddrInfoHints::default()
    };
    dns_lookup::getaddrinfo(Some(&short), None, Some(hints))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|info| info.canonname)
        .find(|name| name.contains('.') && !name.starts_with("localhost"))
}

/// This host's name as configured (`gethostname`), dotted or not.
pub fn name() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}
