package containerd_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ociArchive is an OCI image layout tarball of `ctr images export` held
// in memory, for tests that feed containerd an edited checkpoint.
type ociArchive struct {
	files map[string][]byte
	index ocispec.Index // index.json
}

// Media types of a containerd checkpoint image (core/images).
const (
	mediaCheckpointCRIU    = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
	mediaCheckpointOptions = "application/vnd.containerd.container.checkpoint.runtime.options+proto"
	annotationRuntime      = "io.containerd.checkpoint.runtime"
)

func readOCIArchive(path string) (*ociArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &ociArchive{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		if a.files[h.Name], err = io.ReadAll(tr); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(a.files["index.json"], &a.index); err != nil {
		names := []string{}
		for n, b := range a.files {
			names = append(names, fmt.Sprintf("%s(%d)", n, len(b)))
		}
		return nil, fmt.Errorf("index.json of %s: %w (files %v)", path, err, names)
	}
	if len(a.index.Manifests) != 1 {
		return nil, fmt.Errorf("index.json lists %d images, want one", len(a.index.Manifests))
	}
	return a, nil
}

func (a *ociArchive) blob(d digest.Digest) []byte { return a.files["blobs/sha256/"+d.Encoded()] }

// put stores a blob and returns its descriptor's digest and size.
func (a *ociArchive) put(b []byte) (digest.Digest, int64) {
	d := digest.FromBytes(b)
	a.files["blobs/sha256/"+d.Encoded()] = b
	return d, int64(len(b))
}

// checkpoint reads the checkpoint image's index.
func (a *ociArchive) checkpoint() (ocispec.Index, error) {
	var idx ocispec.Index
	err := json.Unmarshal(a.blob(a.index.Manifests[0].Digest), &idx)
	return idx, err
}

// setCheckpoint stores the checkpoint image's index.
func (a *ociArchive) setCheckpoint(idx ocispec.Index) error {
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	a.index.Manifests[0].Digest, a.index.Manifests[0].Size = a.put(b)
	return nil
}

// setRuntime names the runtime the checkpoint restores under.
func (a *ociArchive) setRuntime(name string) error {
	idx, err := a.checkpoint()
	if err != nil {
		return err
	}
	idx.Annotations[annotationRuntime] = name
	return a.setCheckpoint(idx)
}

// dropRuntimeOptions takes the runtime options out of the checkpoint, as
// for a container that was started without any.
func (a *ociArchive) dropRuntimeOptions() error {
	idx, err := a.checkpoint()
	if err != nil {
		return err
	}
	n := len(idx.Manifests)
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(m ocispec.Descriptor) bool {
		return m.MediaType == mediaCheckpointOptions
	})
	if len(idx.Manifests) != n-1 {
		return fmt.Errorf("checkpoint has %d runtime options, want 1", n-len(idx.Manifests))
	}
	return a.setCheckpoint(idx)
}

// editCheckpointFile edits one file of the checkpoint directory, in the
// CRIU tarball.
func (a *ociArchive) editCheckpointFile(name string, edit func([]byte) []byte) error {
	idx, err := a.checkpoint()
	if err != nil {
		return err
	}
	for i, m := range idx.Manifests {
		if m.MediaType != mediaCheckpointCRIU {
			continue
		}
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		tr := tar.NewReader(bytes.NewReader(a.blob(m.Digest)))
		found := false
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if strings.TrimPrefix(h.Name, "./") == name {
				b, found = edit(b), true
				h.Size = int64(len(b))
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no %s in the checkpoint", name)
		}
		idx.Manifests[i].Digest, idx.Manifests[i].Size = a.put(out.Bytes())
		return a.setCheckpoint(idx)
	}
	return fmt.Errorf("no %s layer in the checkpoint", mediaCheckpointCRIU)
}

// rename names the image ref.
func (a *ociArchive) rename(ref string) {
	ann := a.index.Manifests[0].Annotations
	ann["io.containerd.image.name"] = ref
	ann[ocispec.AnnotationRefName] = ref[strings.LastIndex(ref, ":")+1:]
}

func (a *ociArchive) write(path string) error {
	b, err := json.Marshal(a.index)
	if err != nil {
		return err
	}
	a.files["index.json"] = b
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	names := make([]string, 0, len(a.files))
	for n := range a.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(a.files[n])), Typeflag: tar.TypeReg}); err == nil {
			_, err = tw.Write(a.files[n])
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
