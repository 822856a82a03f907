package fotp

// The header is the repository's generated include/fotp.h: prototypes are never retyped here.
// Linking is chosen by build tag in link_static.go (default) and link_dynamic.go.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
*/
import "C"
