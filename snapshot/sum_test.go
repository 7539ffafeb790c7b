package snapshot

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFileSum pins the checksum of files around the chunk boundaries:
// the format's definition (sum.go), which a reader of another build must
// compute alike (the values were checked against xxhash.Sum64 of each
// chunk, outside this package's reader).  Every byte is i*7 mod 251, so
// each chunk differs.
func TestFileSum(t *testing.T) {
	tests := []struct {
		name string
		size int
		want string
	}{
		{"empty", 0, "85454ff56323d2c7"},
		{"one byte", 1, "119f3741d2038609"},
		{"one chunk", sumChunk, "7be54af75490a7c6"},
		{"a chunk and a byte", sumChunk + 1, "d748bc0da9edd7de"},
		{"two chunks and a half", 2*sumChunk + sumChunk/2, "c043fe1dcaf4479f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			b := make([]byte, tc.size)
			for i := range b {
				b[i] = byte(i * 7 % 251)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := fileSum(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("fileSum of %d bytes = %s, want %s", tc.size, got, tc.want)
			}
		})
	}
}
