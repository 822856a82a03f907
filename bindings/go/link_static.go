//go:build !fotp_dynamic

package fotp

// Default: link the static library, so programs are one self-contained binary.
// Build it first with `cargo build --release` at the repository root.

/*
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libfotp.a -lm -ldl -lpthread
*/
import "C"
