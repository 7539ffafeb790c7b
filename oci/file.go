package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SpecFile is the runtime spec in a bundle.
const SpecFile = "config.json"

// LoadSpec reads the runtime spec of a bundle.
func LoadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, SpecFile))
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("load spec %s: %w", filepath.Join(bundle, SpecFile), err)
	}
	return &spec, nil
}

// SaveSpec writes the runtime spec of a bundle: a temp file renamed into
// place, so that the runtime never reads half a spec.
func SaveSpec(bundle string, spec *specs.Spec) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("save spec: %w", err)
	}
	return WriteFileAtomic(filepath.Join(bundle, SpecFile), data, 0o600)
}

// WriteFileAtomic writes a temp file beside path and renames it there.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
