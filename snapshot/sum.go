package snapshot

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// The manifest's checksums are xxHash64, not sha256.  The manifest is
// not signed: whoever can change a file of the image can change
// manifest.json as well, so a cryptographic hash would stop nobody the
// checksum does not.  What the sums catch is a file cut short or
// damaged (an interrupted copy, a bad disk), and a 64-bit checksum
// misses a random change once in 2^64.  Restore reads every byte of the
// image before it changes anything, and snapshot every byte it wrote:
// at 1 GiB of pages, sha256 (with the CPU's SHA extensions) took
// 950 ms here for that pass, xxHash64 310 ms, the time to read the file.
//
// A file is summed in chunks of sumChunk bytes, in parallel, so that one
// large page image uses every CPU: its sum is the xxHash64 of its size
// and its chunks' sums, in order (all little-endian uint64); an empty
// file has one empty chunk.
const sumChunk = 64 << 20

// sumBufs are the read buffers of fileSum, reused: an image is mostly
// small files, where a new buffer each would cost more than the sum.
var sumBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// fileSum is the checksum of the file at path, 16 hex digits.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := st.Size()
	sums := make([]uint64, max(1, (size+sumChunk-1)/sumChunk))
	errs := make([]error, len(sums))
	next := make(chan int, len(sums))
	for i := range sums {
		next <- i
	}
	close(next)
	work := func() {
		buf := sumBufs.Get().(*[]byte)
		defer sumBufs.Put(buf)
		for i := range next {
			off := int64(i) * sumChunk
			sums[i], errs[i] = chunkSum(f, off, min(sumChunk, size-off), *buf)
		}
	}
	if len(sums) == 1 {
		work() // most files of an image: no goroutine to start
	} else {
		var wg sync.WaitGroup
		for range min(len(sums), runtime.GOMAXPROCS(0)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				work()
			}()
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return "", fmt.Errorf("sum %s: %w", path, err)
		}
	}
	h := xxhash.New()
	var word [8]byte
	binary.LittleEndian.PutUint64(word[:], uint64(size))
	h.Write(word[:])
	for _, s := range sums {
		binary.LittleEndian.PutUint64(word[:], s)
		h.Write(word[:])
	}
	return fmt.Sprintf("%016x", h.Sum64()), nil
}

// chunkSum is the xxHash64 of the n bytes of f at off.  A file that
// shrinks under it is an error, not a shorter sum.
func chunkSum(f *os.File, off, n int64, buf []byte) (uint64, error) {
	h := xxhash.New()
	got, err := io.CopyBuffer(h, io.NewSectionReader(f, off, n), buf)
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("read %d bytes at %d, want %d: %w", got, off, n, io.ErrUnexpectedEOF)
	}
	return h.Sum64(), nil
}
