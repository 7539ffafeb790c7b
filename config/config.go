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
	"strings"

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
	Hook     string `toml:"hook"`
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

// Runc is the binary and root the containerd shim tells runc's task
// service where containerd's runc options name none; "" leaves runc's
// default.
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
	// The shim resolves them in a bundle directory, not where the user was.
	for _, f := range []installed{libraryFile, hookFile} {
		if p := f.configured(c); p != "" && !filepath.IsAbs(p) {
			return fmt.Errorf("%s = %q: must be an absolute path", f.key, p)
		}
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

// InstallPrefix is where `make install` puts vrid (the Makefile's PREFIX).
const InstallPrefix = "/usr/local"

// installed is a file of vrid's that another binary must find: the
// config.toml key that names it, and its paths under an install prefix.
type installed struct {
	name       string
	key        string
	configured func(*Config) string
	under      []string
}

var (
	libraryFile = installed{"libvrid.so", "library", func(c *Config) string { return c.Library },
		[]string{"lib/libvrid.so", "lib/vrid/libvrid.so"}}
	hookFile = installed{"vrid-hook", "hook", func(c *Config) string { return c.Hook },
		[]string{"bin/vrid-hook"}}
)

// LibraryPath finds libvrid.so: library in config.toml, else under the
// install prefix of the running binary, else under InstallPrefix.
func (c *Config) LibraryPath() (string, error) {
	return libraryFile.find(c, executablePrefixes())
}

// HookPath finds vrid-hook the same way, from the key hook.
func (c *Config) HookPath() (string, error) {
	return hookFile.find(c, executablePrefixes())
}

// executablePrefixes are the prefix the running binary is installed under
// (the parent of its bin/, symlinks resolved: the work tree for a `make`
// build, PREFIX after `make install`), then InstallPrefix.  A binary copied
// elsewhere alone, as containerd's runtime_path allows for the shim, finds
// its files through config.toml instead.
func executablePrefixes() []string {
	exe, err := os.Executable()
	if err != nil {
		return []string{InstallPrefix}
	}
	return prefixesOf(exe)
}

// prefixesOf is executablePrefixes for the binary at exe.
func prefixesOf(exe string) []string {
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		return []string{filepath.Dir(filepath.Dir(resolved)), InstallPrefix}
	}
	return []string{InstallPrefix}
}

// find returns the configured path when there is one, else the first
// regular file under the prefixes.
func (f installed) find(c *Config, prefixes []string) (string, error) {
	candidates := []string{f.configured(c)}
	if candidates[0] == "" {
		candidates = nil
		for _, prefix := range prefixes {
			for _, rel := range f.under {
				candidates = append(candidates, filepath.Join(prefix, rel))
			}
		}
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (looked in %s): run `make`, or set %s in config.toml",
		f.name, strings.Join(candidates, ", "), f.key)
}
