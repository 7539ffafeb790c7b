package oci

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func injection(poststop bool) Injection {
	return Injection{
		AID:        7,
		Library:    "/opt/vrid/lib/libvrid.so",
		Tables:     "/run/vrid/chains/7/tables",
		LogLevel:   "warning",
		Hook:       "/opt/vrid/bin/vrid-hook",
		ConfigPath: "/etc/vrid/test.toml",
		Poststop:   poststop,
	}
}

func loadTestSpec(t *testing.T, name string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	return &spec
}

func TestApplyGolden(t *testing.T) {
	tests := []struct {
		name, in string
		inj      Injection
	}{
		{"minimal", "minimal.json", injection(true)},
		{"containerd", "containerd.json", injection(true)},
		{"joiner", "minimal.json", func() Injection { in := injection(false); in.ConfigPath = ""; return in }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := loadTestSpec(t, tt.in)
			if err := Apply(spec, tt.inj); err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(spec, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Apply(%s) differs from %s:\n%s", tt.in, golden, got)
			}

			// Applying twice changes nothing more.
			again := loadTestSpec(t, tt.in)
			_ = Apply(again, tt.inj)
			_ = Apply(again, tt.inj)
			if !reflect.DeepEqual(again, spec) {
				t.Errorf("Apply twice differs from Apply once")
			}
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	tests := []struct {
		name string
		spec *specs.Spec
		inj  Injection
	}{
		{"no process", &specs.Spec{}, injection(true)},
		{"no aid", &specs.Spec{Process: &specs.Process{}}, Injection{Library: "/l", Tables: "/c", Hook: "/h"}},
		{"no library", &specs.Spec{Process: &specs.Process{}}, Injection{AID: 1, Tables: "/c", Hook: "/h"}},
		{"no hook", &specs.Spec{Process: &specs.Process{}}, Injection{AID: 1, Library: "/l", Tables: "/c"}},
		{"no /dev", &specs.Spec{Process: &specs.Process{}}, injection(true)},
		{"host's /dev", loadTestSpec(t, "hostdev.json"), injection(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Apply(tt.spec, tt.inj); err == nil {
				t.Errorf("Apply succeeded")
			}
		})
	}
	// The host's /dev: refused with what to do, and the spec left as it was.
	spec := loadTestSpec(t, "hostdev.json")
	err := Apply(spec, injection(true))
	if want := "run this container under io.containerd.runc.v2"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("host's /dev: %v, want an error saying %q", err, want)
	}
	if !reflect.DeepEqual(spec, loadTestSpec(t, "hostdev.json")) {
		t.Errorf("a refused Apply changed the spec")
	}
}

func TestApplyProcess(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"empty", nil, []string{
			"VRID_TABLE=/dev/.vrid/chain/tables", "VRID_AID=7", "VRID_LOG_LEVEL=warning", "LD_PRELOAD=/dev/.vrid/lib/libvrid.so"}},
		{"keeps other preloads", []string{"PATH=/bin", "LD_PRELOAD=/x.so", "VRID_AID=1"}, []string{
			"PATH=/bin", "LD_PRELOAD=/dev/.vrid/lib/libvrid.so /x.so", "VRID_AID=7",
			"VRID_TABLE=/dev/.vrid/chain/tables", "VRID_LOG_LEVEL=warning"}},
		{"already in", []string{"LD_PRELOAD=/dev/.vrid/lib/libvrid.so"}, []string{
			"LD_PRELOAD=/dev/.vrid/lib/libvrid.so", "VRID_TABLE=/dev/.vrid/chain/tables", "VRID_AID=7", "VRID_LOG_LEVEL=warning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &specs.Process{Env: slices.Clone(tt.env)}
			ApplyProcess(p, injection(true))
			if !slices.Equal(p.Env, tt.want) {
				t.Errorf("env = %q, want %q", p.Env, tt.want)
			}
		})
	}
}

func TestIPCNamespaceOf(t *testing.T) {
	tests := []struct {
		name string
		spec *specs.Spec
		want IPCNamespace
	}{
		{"no linux", &specs.Spec{}, IPCNamespace{}},
		{"no ipc namespace", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}}, IPCNamespace{}},
		{"private", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.IPCNamespace}}}}, IPCNamespace{Private: true}},
		{"joined", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.IPCNamespace, Path: "/proc/9/ns/ipc"}}}}, IPCNamespace{Path: "/proc/9/ns/ipc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IPCNamespaceOf(tt.spec); got != tt.want {
				t.Errorf("IPCNamespaceOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestChainName(t *testing.T) {
	long := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct{ id, want string }{
		{"web", "web"},
		{"123", "ctr-123"},
		{long, long[:63]},
		{"0123456789012345678901234567890123456789012345678901234567890123", "ctr-01234567890123456789012345678901234567890123456789012345678"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ChainName(tt.id); got != tt.want {
				t.Errorf("ChainName(%q) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestSaveSpecRoundTrip(t *testing.T) {
	dir := t.TempDir()
	spec := loadTestSpec(t, "containerd.json")
	if err := SaveSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	back, err := LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, spec) {
		t.Errorf("LoadSpec(SaveSpec(spec)) differs")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("bundle holds %d files, want config.json alone", len(entries))
	}
}
