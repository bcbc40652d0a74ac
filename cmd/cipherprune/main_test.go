package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The abuse test runs the serve command in a child process: this
	// test binary, started again with abuseChildEnv set.
	if os.Getenv(abuseChildEnv) != "" {
		os.Exit(abuseChild(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}
