//! Generates include/fotp.h from src/ffi with the pinned cbindgen (the header is committed; CI
//! regenerates it and fails on any difference).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    // cbindgen run by an outer cbindgen (macro expansion) yields empty bindings: keep the file.
    if std::env::var_os("_CBINDGEN_IS_RUNNING").is_some() {
        return;
    }
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let v = |k: &str| std::env::var(k).expect("set by cargo");
    // The version comes from Cargo.toml, so it is written here rather than in cbindgen.toml.
    config.after_includes = Some(format!(
        "\n#define FOTP_VERSION_MAJOR {}\n#define FOTP_VERSION_MINOR {}\n#define FOTP_VERSION_PATCH {}\n#define FOTP_VERSION \"{}\"",
        v("CARGO_PKG_VERSION_MAJOR"),
        v("CARGO_PKG_VERSION_MINOR"),
        v("CARGO_PKG_VERSION_PATCH"),
        v("CARGO_PKG_VERSION"),
    ));
    // Only the FFI module: the core's types never appear in the header.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen could not generate the header from src/ffi");
    let mut text = Vec::new();
    bindings.write(&mut text);
    let header = dir.join("include/fotp.h");
    if std::fs::read(&header).ok().as_deref() == Some(&text[..]) {
        return; // unchanged: keep the file's timestamp
    }
    // Written aside and renamed, so that a compiler or another build never reads half a header.
    std::fs::create_dir_all(dir.join("include")).expect("create include/");
    let tmp = dir.join(format!("include/.fotp.h.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &text).expect("write the header");
    std::fs::rename(&tmp, &header).expect("replace include/fotp.h");
}
