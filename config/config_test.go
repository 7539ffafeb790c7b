package config

import (
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
