//! Gives libfotp.so its SONAME, libfotp.so.<ABI>. ABI is the C ABI version, not the crate's: it
//! changes only when a release breaks binary compatibility (policy: "Versioning" in README.md).

use std::path::Path;

/// Bump when a release removes or changes a function, a struct or an enum value of fotp.h.
const ABI: u32 = 0;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfotp.so.{ABI}");
        let out = std::env::var("OUT_DIR").expect("set by cargo");
        soname_link(Path::new(&out));
    }
}

/// Programs linked against target/<profile>/libfotp.so (the repository's tests, `-tags
/// fotp_dynamic` in Go) look for the SONAME at run time: the link `make install` creates,
/// here in the target directory (never in the source tree). Skipped for an unknown layout.
#[cfg(unix)]
fn soname_link(out_dir: &Path) {
    // OUT_DIR is <profile dir>/build/fotp-capi-<hash>/out.
    let Some(build) = out_dir.ancestors().nth(2) else {
        return;
    };
    if build.file_name().and_then(|n| n.to_str()) != Some("build") {
        return;
    }
    let Some(profile_dir) = build.parent() else {
        return;
    };
    let link = profile_dir.join(format!("libfotp.so.{ABI}"));
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("libfotp.so")) {
        return;
    }
    // Made aside and renamed over, so that concurrent builds never see a missing link.
    let tmp = profile_dir.join(format!(".libfotp.so.{ABI}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink("libfotp.so", &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, &link);
    }
}

#[cfg(not(unix))]
fn soname_link(_: &Path) {}
