//! With the `capi` feature: generates the C header from src/ffi with the pinned cbindgen into
//! `$OUT_DIR/fotp.h`. The committed include/fotp.h is never written by a build (a build must not
//! touch the source tree): `make header` copies the generated file over it and
//! `make header-check` (CI) fails when the two differ. Without `capi` there is nothing to do.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "capi")]
    capi::generate_header();
}

#[cfg(feature = "capi")]
mod capi {
    use std::path::PathBuf;

    pub fn generate_header() {
        println!("cargo:rerun-if-changed=src/ffi");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        println!("cargo:rerun-if-changed=include/fotp.h");

        // cbindgen run by an outer cbindgen (macro expansion) yields empty bindings: skip.
        if std::env::var_os("_CBINDGEN_IS_RUNNING").is_some() {
            return;
        }
        let v = |k: &str| std::env::var(k).expect("set by cargo");
        let dir = PathBuf::from(v("CARGO_MANIFEST_DIR"));
        let mut config =
            cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
        // The version comes from Cargo.toml, so it is written here rather than in cbindgen.toml.
        // FOTP_MUST_USE: warn when a returned fotp_error * is ignored (GCC and Clang; nothing
        // elsewhere). An application may define it first (empty) to silence it.
        config.after_includes = Some(format!(
            "\n#define FOTP_VERSION_MAJOR {}\n#define FOTP_VERSION_MINOR {}\n#define FOTP_VERSION_PATCH {}\n#define FOTP_VERSION \"{}\"\n\n#ifndef FOTP_MUST_USE\n#if defined(__GNUC__) || defined(__clang__)\n#define FOTP_MUST_USE __attribute__((warn_unused_result))\n#else\n#define FOTP_MUST_USE\n#endif\n#endif",
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
        let out = PathBuf::from(v("OUT_DIR")).join("fotp.h");
        std::fs::write(&out, &text).expect("write the generated header");
        // A stale committed header is a mistake worth seeing in every build, not only in CI.
        if std::fs::read(dir.join("include/fotp.h")).ok().as_deref() != Some(&text[..]) {
            println!(
                "cargo:warning=include/fotp.h differs from the header generated from src/ffi; \
                 run `make header` and commit it"
            );
        }
    }
}
