package vresource

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The engine in this test binary was built from the preload sources as
// they are now, not from a stale build cache entry (see engine.go).
func TestEngineIsCurrent(t *testing.T) {
	built := engineSources()
	if built == 0 {
		t.Skip("built without the Makefile's CGO_CFLAGS (run make test): cannot tell a stale engine")
	}
	files, err := filepath.Glob("preload/*.[ch]")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	want, err := strconv.ParseUint(hex.EncodeToString(h.Sum(nil))[:15], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if built != want {
		t.Fatalf("engine built from preload sources %#x, they are %#x now: CGO_CFLAGS is not the Makefile's", built, want)
	}
}
