package main

// The C API called straight from Go (no goroutine per call, no context handling): shows
// how much of the Go binding's cost is cgo itself and how much its call wrapper.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libfotp.a -lm -ldl -lpthread
#include <stdlib.h>
#include "fotp.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

type rawClient struct{ c *C.fotp_client }

func newRawClient(base string) (*rawClient, error) {
	cfg := C.fotp_config_new()
	defer C.fotp_config_free(cfg)
	cb, id, secret := C.CString(base), C.CString(appID), C.CString(secret)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(id))
	defer C.free(unsafe.Pointer(secret))
	if e := C.fotp_config_set_base_url(cfg, cb); e != nil {
		C.fotp_error_free(e)
		return nil, errors.New("base URL refused")
	}
	if e := C.fotp_config_set_hmac_auth(cfg, id, secret); e != nil {
		C.fotp_error_free(e)
		return nil, errors.New("credentials refused")
	}
	var c *C.fotp_client
	if e := C.fotp_client_new(cfg, &c); e != nil {
		C.fotp_error_free(e)
		return nil, errors.New("client refused")
	}
	return &rawClient{c}, nil
}

func (r *rawClient) verify() error {
	ftID := C.CString("2")
	defer C.free(unsafe.Pointer(ftID))
	var v *C.fotp_verification
	if e := C.fotp_verify(r.c, ftID, nil, 0, &v); e != nil {
		msg := C.GoString(C.fotp_error_message(e))
		C.fotp_error_free(e)
		return errors.New(msg)
	}
	defer C.fotp_verification_free(v)
	return check(C.GoString(C.fotp_verification_code(v)) == "3872", "verify code")
}
