module github.com/fotp-sdk/fotp-go/fotp

go 1.22
