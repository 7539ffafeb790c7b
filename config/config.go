// Package config owns config.toml: the settings shared by the vrid CLI, the
// containerd shim and the OCI hooks, with their defaults and their checks.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2"
	"github.com/sirupsen/logrus"

	"github.com/vrid/vrid/vresource"
)

// DefaultPath is read when neither --config nor $VRID_CONFIG names a file.
const DefaultPath = "/etc/vrid/config.toml"

// Config mirrors config.toml; the repository's config.toml documents each key.
type Config struct {
	StateDir string `toml:"state_dir"`
	Library  string `toml:"library"`
	CRIU     string `toml:"criu"`
	LogLevel string `toml:"log_level"`
	Tables   Tables `toml:"tables"`
	Runc     Runc   `toml:"runc"`

	// Path is the file this was read from, "" for the defaults.
	Path string `toml:"-"`
}

// Tables sizes the translation tables and picks the virtual id policy.
type Tables struct {
	IDs         string `toml:"ids"`
	PIDSlots    uint32 `toml:"pid_slots"`
	SemSlots    uint32 `toml:"sem_slots"`
	ShmSlots    uint32 `toml:"shm_slots"`
	MsgSlots    uint32 `toml:"msg_slots"`
	IPCKeySlots uint32 `toml:"ipckey_slots"`
}

// Runc is what the containerd shim tells runc's task service when
// containerd sent no runc options of its own; "" leaves runc's default.
type Runc struct {
	Binary string `toml:"binary"`
	Root   string `toml:"root"`
}

// Virtual id policies.
const (
	IDsSystem     = "system"     // keep the OS id when it is free in the chain
	IDsSequential = "sequential" // number from a fixed base, repeatable run to run
)

// Default is the configuration without a file.
func Default() Config {
	return Config{
		StateDir: "/run/vrid",
		LogLevel: "warning",
		Tables: Tables{
			IDs:         IDsSystem,
			PIDSlots:    vresource.DefaultPIDSlots,
			SemSlots:    vresource.DefaultIPCSlots,
			ShmSlots:    vresource.DefaultIPCSlots,
			MsgSlots:    vresource.DefaultIPCSlots,
			IPCKeySlots: vresource.DefaultIPCSlots,
		},
	}
}

// Load reads path over the defaults.  An empty path tries $VRID_CONFIG and
// then DefaultPath, and a missing DefaultPath is no error.
func Load(path string) (Config, error) {
	cfg := Default()
	explicit := path != ""
	if !explicit {
		path = os.Getenv("VRID_CONFIG")
		explicit = path != ""
	}
	if !explicit {
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return cfg, cfg.Check()
	}
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return cfg, fmt.Errorf("config %s: unknown keys:\n%s", path, strict.String())
		}
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Path = path
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Check reports the first setting that cannot work; Load calls it, and
// so should whoever changes a Config afterwards.
func (c *Config) Check() error {
	if c.Tables.IDs != IDsSystem && c.Tables.IDs != IDsSequential {
		return fmt.Errorf("[tables] ids = %q: use %q or %q", c.Tables.IDs, IDsSystem, IDsSequential)
	}
	if _, err := logrus.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("log_level = %q: use error, warning, info or debug", c.LogLevel)
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("state_dir = %q: must be an absolute path", c.StateDir)
	}
	return nil
}

// TableOptions turns [tables] into what vresource.CreateTables takes.
func (c *Config) TableOptions(name string) vresource.TableOptions {
	return vresource.TableOptions{
		Name:       name,
		Sequential: c.Tables.IDs == IDsSequential,
		Slots: map[vresource.ResourceType]uint32{
			vresource.PID:    c.Tables.PIDSlots,
			vresource.Sem:    c.Tables.SemSlots,
			vresource.Shm:    c.Tables.ShmSlots,
			vresource.Msg:    c.Tables.MsgSlots,
			vresource.IPCKey: c.Tables.IPCKeySlots,
		},
	}
}

// LibraryPath finds libvrid.so: the configured path, else next to the
// running binary (bin/../lib), else the installed one.
func (c *Config) LibraryPath() (string, error) {
	candidates := []string{c.Library}
	if c.Library == "" {
		candidates = nil
		if exe, err := os.Executable(); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", "lib", "libvrid.so"))
		}
		candidates = append(candidates, "/usr/local/lib/vrid/libvrid.so")
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("libvrid.so not found (looked in %v): run `make`, or set library in config.toml", candidates)
}
