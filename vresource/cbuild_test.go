package vresource

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// buildC compiles C sources (relative to this package), then links any
// libraries named after them ("-ldl"), into a program in a temporary
// directory, with preload/ on the include path and the flags of the
// Makefile's preload build that matter to the sources.  Without gcc the
// test is skipped; a compile error fails it, since the C side is half of
// the contract under test.
func buildC(t testing.TB, name string, args ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc: can't check the Go side against the C side")
	}
	bin := filepath.Join(t.TempDir(), name)
	args = append([]string{"-std=gnu11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror",
		"-Ipreload", "-o", bin}, args...)
	out, err := exec.Command(gcc, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	return bin
}
