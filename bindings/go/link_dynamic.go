//go:build fotp_dynamic

package fotp

// With -tags fotp_dynamic: link libfotp.so from the repository's build output and record
// its directory as the run-time search path.

/*
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lfotp -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
