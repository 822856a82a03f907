module github.com/fotp-sdk/fotp/examples/go

go 1.22

require github.com/fotp-sdk/fotp-go/fotp v0.0.0

// The examples build against the binding in this repository.
replace github.com/fotp-sdk/fotp-go/fotp => ../../bindings/go
