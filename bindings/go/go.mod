module github.com/fotp-sdk/fotp/bindings/go

go 1.22
