// Command ociimage packs a root filesystem directory into a one-layer OCI
// image layout and tars that layout, so that `ctr images import` accepts it
// without docker or a registry. It is driven by test/ociimage/build.sh.
//
//	ociimage -rootfs DIR -ref localhost/vrid/NAME:TAG -out FILE.tar \
//	    [-entrypoint "ARG ..."] [-cmd "ARG ..."]
//
// The layout is also left beside the tar, in FILE (without .tar).
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// All entries get this time, so the same rootfs gives the same digests.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

func main() {
	rootfs := flag.String("rootfs", "", "root filesystem directory")
	ref := flag.String("ref", "", "image name, e.g. localhost/vrid/x:test")
	out := flag.String("out", "", "output tar file")
	entrypoint := flag.String("entrypoint", "", "space-separated entrypoint")
	cmd := flag.String("cmd", "", "space-separated default command")
	flag.Parse()
	if *rootfs == "" || *ref == "" || !strings.HasSuffix(*out, ".tar") {
		flag.Usage()
		os.Exit(2)
	}
	i := strings.LastIndex(*ref, ":")
	if i < 0 || strings.Contains((*ref)[i:], "/") {
		log.Fatalf("ref %q has no tag", *ref)
	}
	tag := (*ref)[i+1:]

	layout := strings.TrimSuffix(*out, ".tar")
	if err := os.RemoveAll(layout); err != nil {
		log.Fatal(err)
	}
	blobs := filepath.Join(layout, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		log.Fatal(err)
	}

	layer, diffID, err := writeLayer(*rootfs, blobs)
	if err != nil {
		log.Fatalf("layer: %v", err)
	}
	plat := platform{Architecture: runtime.GOARCH, OS: "linux"}
	cfg := map[string]any{
		"architecture": plat.Architecture,
		"os":           plat.OS,
		"created":      epoch.Format(time.RFC3339),
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Entrypoint": strings.Fields(*entrypoint),
			"Cmd":        strings.Fields(*cmd),
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
	config, err := writeJSONBlob(blobs, "application/vnd.oci.image.config.v1+json", cfg)
	if err != nil {
		log.Fatal(err)
	}
	manifest, err := writeJSONBlob(blobs, "application/vnd.oci.image.manifest.v1+json", map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        config,
		"layers":        []descriptor{layer},
	})
	if err != nil {
		log.Fatal(err)
	}
	manifest.Platform = &plat
	manifest.Annotations = map[string]string{
		"io.containerd.image.name":          *ref,
		"org.opencontainers.image.ref.name": tag,
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifest},
	}
	if err := writeJSON(filepath.Join(layout, "index.json"), index); err != nil {
		log.Fatal(err)
	}
	if err := writeJSON(filepath.Join(layout, "oci-layout"), map[string]string{"imageLayoutVersion": "1.0.0"}); err != nil {
		log.Fatal(err)
	}
	if err := tarDir(layout, *out); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s %s\n", *out, *ref, manifest.Digest)
}

// writeLayer writes the gzipped tar of rootfs into blobs and returns its
// descriptor and its diff_id (the digest of the uncompressed tar).
func writeLayer(rootfs, blobs string) (descriptor, string, error) {
	f, err := os.CreateTemp(blobs, ".layer-")
	if err != nil {
		return descriptor{}, "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	gzHash, tarHash := sha256.New(), sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, gzHash))
	tw := tar.NewWriter(io.MultiWriter(gz, tarHash))
	if err := addTree(tw, rootfs); err != nil {
		return descriptor{}, "", err
	}
	if err := tw.Close(); err != nil {
		return descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return descriptor{}, "", err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return descriptor{}, "", err
	}
	if err := f.Chmod(0o644); err != nil {
		return descriptor{}, "", err
	}
	if err := f.Close(); err != nil {
		return descriptor{}, "", err
	}
	d := descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: digest(gzHash), Size: size}
	if err := os.Rename(f.Name(), blobPath(blobs, d.Digest)); err != nil {
		return descriptor{}, "", err
	}
	return d, digest(tarHash), nil
}

// addTree writes every file, directory and symlink under root into tw, owned
// by root, with paths relative to root.
func addTree(tw *tar.Writer, root string) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.ModTime, h.AccessTime, h.ChangeTime = epoch, time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
}

func writeJSONBlob(blobs, mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	h := sha256.New()
	h.Write(b)
	d := descriptor{MediaType: mediaType, Digest: digest(h), Size: int64(len(b))}
	return d, os.WriteFile(blobPath(blobs, d.Digest), b, 0o644)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// tarDir tars the layout directory into out (via a temp file and rename, so a
// half-written tar never sits under the final name).
func tarDir(dir, out string) error {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := addTree(tw, dir); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func digest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func blobPath(blobs, dgst string) string {
	return filepath.Join(blobs, strings.TrimPrefix(dgst, "sha256:"))
}
