package fotp

// Hooks for the examples (package fotp_test, example_test.go): the sandbox TestMain started.

// SandboxConfig is the configuration of the test sandbox; an app builds its own Config.
func SandboxConfig() Config { return sandboxConfig() }

// SimulateSMS stands in for the user's phone: it sends the uplink SMS carrying code.
func SimulateSMS(ftToken, mobile, code string) error {
	return uplinkErr(map[string]any{"ftToken": ftToken, "mobile": mobile, "content": "code " + code})
}
