package db

// SetServerBinGlob replaces where StartCluster looks for server binaries
// besides PATH, for the duration of a test.
func SetServerBinGlob(glob string) (restore func()) {
	old := serverBinGlob
	serverBinGlob = glob
	return func() { serverBinGlob = old }
}

// SetIntrospectLockTimeout replaces how long Introspect waits for a table
// lock, for the duration of a test.
func SetIntrospectLockTimeout(d string) (restore func()) {
	old := introspectLockTimeout
	introspectLockTimeout = d
	return func() { introspectLockTimeout = old }
}
