//! The shipped systemd unit is valid: `systemd-analyze verify` accepts it.

use crate::support::BIN;

#[test]
fn shipped_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/ticketd.service"
    ))
    .expect("systemd/ticketd.service");
    assert!(unit.contains("Type=notify"));
    assert!(unit.contains("ProtectSystem=strict"));
    assert!(unit.contains("NoNewPrivileges=yes"));
    // Verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ticketd.service");
    std::fs::write(&path, unit.replace("/usr/bin/ticketd", BIN)).expect("write unit");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("ticketd.service:"),
        "systemd-analyze verify: {stderr}"
    );
}
