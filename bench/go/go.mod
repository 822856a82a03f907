module github.com/fotp-sdk/fotp/bench/go

go 1.22

require github.com/fotp-sdk/fotp-go/fotp v0.0.0

// The benchmarks measure the binding in this repository.
replace github.com/fotp-sdk/fotp-go/fotp => ../../bindings/go
