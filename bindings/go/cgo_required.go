//go:build !cgo

package fotp

// Without cgo (CGO_ENABLED=0, or no C compiler when cross-compiling) this package cannot link
// libfotp. This undefined name makes the build stop with the reason instead of a list of
// undefined functions.
var _ = fotp_needs_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
