package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		file    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{file: "testdata/sequential.toml", check: func(t *testing.T, c Config) {
			if c.StateDir != "/tmp/vrid-state" || c.LogLevel != "debug" || c.Tables.IDs != IDsSequential {
				t.Errorf("got %+v", c)
			}
			if c.Tables.PIDSlots != 64 || c.Tables.SemSlots != Default().Tables.SemSlots {
				t.Errorf("slots: got %+v", c.Tables)
			}
			if c.Runc.Binary != "/opt/vrid-stack/bin/runc" || c.Runc.Root != "" {
				t.Errorf("runc: got %+v", c.Runc)
			}
			if opt := c.TableOptions("web"); !opt.Sequential || opt.Name != "web" {
				t.Errorf("table options: got %+v", opt)
			}
		}},
		{file: "testdata/unknown_key.toml", wantErr: "unknown keys"},
		{file: "testdata/bad_ids.toml", wantErr: `[tables] ids = "random": use "system" or "sequential"`},
		{file: "testdata/relative_state.toml", wantErr: "must be an absolute path"},
		{file: "testdata/relative_hook.toml", wantErr: `hook = "bin/vrid-hook": must be an absolute path`},
		{file: "testdata/bad_level.toml", wantErr: "use error, warning, info or debug"},
		{file: "testdata/missing.toml", wantErr: "no such file"},
		{file: "../config.toml", check: func(t *testing.T, c Config) {
			want := Default()
			want.Path = "../config.toml"
			if c != want {
				t.Errorf("the repository's config.toml is not the defaults:\n got %+v\nwant %+v", c, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%s) error = %v, want it to say %q", tt.file, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadWithoutFile(t *testing.T) {
	t.Setenv("VRID_CONFIG", "")
	c, err := Load("")
	if err != nil {
		t.Skipf("a config at %s: %v", DefaultPath, err)
	}
	if c.Path == "" && c != Default() {
		t.Errorf("got %+v, want the defaults", c)
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	inst := filepath.Join(root, "opt")  // `make install` layout
	tree := filepath.Join(root, "tree") // a `make` work tree
	for _, f := range []string{
		filepath.Join(inst, "bin", "vrid-hook"),
		filepath.Join(inst, "lib", "vrid", "libvrid.so"),
		filepath.Join(tree, "lib", "libvrid.so"),
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tree, "bin", "vrid-hook"), 0o755); err != nil { // not a file
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     installed
		cfg      Config
		prefixes []string
		want     string
		wantErr  string
	}{
		{"configured", libraryFile, Config{Library: filepath.Join(tree, "lib", "libvrid.so")}, []string{inst},
			filepath.Join(tree, "lib", "libvrid.so"), ""},
		{"configured, missing", hookFile, Config{Hook: filepath.Join(root, "nope")}, []string{inst}, "",
			"vrid-hook not found (looked in " + filepath.Join(root, "nope") + "): run `make`, or set hook in config.toml"},
		{"work tree first", libraryFile, Config{}, []string{tree, inst}, filepath.Join(tree, "lib", "libvrid.so"), ""},
		{"installed under lib/vrid", libraryFile, Config{}, []string{inst, tree},
			filepath.Join(inst, "lib", "vrid", "libvrid.so"), ""},
		{"a directory is skipped", hookFile, Config{}, []string{tree, inst}, filepath.Join(inst, "bin", "vrid-hook"), ""},
		{"nowhere", hookFile, Config{}, []string{tree}, "",
			"vrid-hook not found (looked in " + filepath.Join(tree, "bin", "vrid-hook") + "): run `make`, or set hook in config.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.file.find(&tt.cfg, tt.prefixes)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("find() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("find() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestPrefixesOf(t *testing.T) {
	root := t.TempDir()
	shim := filepath.Join(root, "opt", "vrid", "bin", "containerd-shim-vrid-v1")
	link := filepath.Join(root, "usr", "bin", "containerd-shim-vrid-v1")
	for _, d := range []string{filepath.Dir(shim), filepath.Dir(link)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(shim, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shim, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, exe string
		want      []string
	}{
		{"binary", shim, []string{filepath.Join(root, "opt", "vrid"), InstallPrefix}},
		{"symlink to it", link, []string{filepath.Join(root, "opt", "vrid"), InstallPrefix}},
		{"gone", filepath.Join(root, "gone"), []string{InstallPrefix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := prefixesOf(tt.exe); !slices.Equal(got, tt.want) {
				t.Errorf("prefixesOf(%s) = %v, want %v", tt.exe, got, tt.want)
			}
		})
	}
}
