package snapshot

import (
	"fmt"
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

// A container checkpoint is some thirty small files: what summing costs
// there is the per-file overhead.
func BenchmarkFileSumSmall(b *testing.B) {
	dir := b.TempDir()
	var paths []string
	for i, size := range []int{3263, 2306, 56, 773, 18, 86, 1305, 356, 188416, 163840, 38, 12, 4097, 825, 1187840, 1056768, 466, 98, 24} {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			if _, err := fileSum(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
