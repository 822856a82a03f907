//! Gives libfotp.so its SONAME, libfotp.so.<ABI>. ABI is the C ABI version, not the crate's: it
//! changes only when a release breaks binary compatibility (policy: "Versioning" in README.md).

/// Bump when a release removes or changes a function, a struct or an enum value of fotp.h.
const ABI: u32 = 0;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfotp.so.{ABI}");
    }
}
