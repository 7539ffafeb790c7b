package hooks

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

func setup(t *testing.T) (*config.Config, vresource.Registry, vresource.Chain) {
	t.Helper()
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	reg, err := chain.OpenRegistry(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := chain.Register(&cfg, reg, "c1", owner)
	if err != nil {
		t.Fatal(err)
	}
	return &cfg, reg, ch
}

func TestReadState(t *testing.T) {
	tests := []struct {
		name, in string
		want     specs.State
		wantErr  bool
	}{
		{"runc", `{"ociVersion":"1.2.1","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"a":"b"}}`,
			specs.State{Version: "1.2.1", ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b", Annotations: map[string]string{"a": "b"}}, false},
		{"no pid", `{"ociVersion":"1.2.1","id":"c1","status":"stopped","bundle":"/b"}`,
			specs.State{Version: "1.2.1", ID: "c1", Status: specs.StateStopped, Bundle: "/b"}, false},
		{"garbage", `not json`, specs.State{}, true},
		{"empty", ``, specs.State{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadState(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (got.ID != tt.want.ID || got.Pid != tt.want.Pid || got.Bundle != tt.want.Bundle ||
				got.Status != tt.want.Status || len(got.Annotations) != len(tt.want.Annotations)) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCreateRuntime(t *testing.T) {
	cfg, reg, ch := setup(t)
	bundle := t.TempDir()
	spec := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000}}, Linux: &specs.Linux{}}
	if err := oci.SaveSpec(bundle, spec); err != nil {
		t.Fatal(err)
	}
	state := &specs.State{ID: "c1", Pid: os.Getpid(), Bundle: bundle}
	for range 2 { // a second run keeps what the first made
		if err := CreateRuntime(cfg, reg, ch.AID, state); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if tab.AID() != ch.AID || tab.Name() != "c1" {
		t.Errorf("tables of %d %q", tab.AID(), tab.Name())
	}
	st, err := os.Stat(ch.Tables)
	if err != nil || st.Mode().Perm() != 0o666 {
		t.Errorf("tables mode %v, %v; want 0666", st.Mode(), err)
	}
	got, err := reg.Get(ch.AID.String())
	if err != nil || got.RootPid != os.Getpid() {
		t.Errorf("root pid %d, %v", got.RootPid, err)
	}
	ipc, _ := vresource.NamespaceOf("/proc/self/ns/ipc")
	pid, _ := vresource.NamespaceOf("/proc/self/ns/pid")
	if f := got.Facts; f.IPCNS != ipc || f.PIDNS != pid || !slices.Equal(f.UIDs, []uint32{1000}) || f.IPCAdmin {
		t.Errorf("facts %+v, want ipc %s, pid %s, uids [1000], no IPC admin", f, ipc, pid)
	}
	if err := CreateRuntime(cfg, reg, 999, state); !errors.Is(err, vresource.ErrUnknownChain) {
		t.Errorf("unknown AID: %v", err)
	}
}

func TestPoststop(t *testing.T) {
	here, err := vresource.NamespaceOf("/proc/self/ns/ipc")
	if err != nil {
		t.Fatal(err)
	}
	other := vresource.NamespaceID{Dev: here.Dev, Ino: here.Ino + 1}
	joined := []specs.LinuxNamespace{{Type: specs.IPCNamespace, Path: "/proc/self/ns/ipc"}}
	tests := []struct {
		name       string
		namespaces []specs.LinuxNamespace
		ipcNS      vresource.NamespaceID // Facts.IPCNS
		wantLog    string                // "" for no warning
	}{
		{"private ipc", []specs.LinuxNamespace{{Type: specs.IPCNamespace}}, here, ""},
		{"host ipc", nil, here, ""},
		{"ipc gone", []specs.LinuxNamespace{{Type: specs.IPCNamespace, Path: "/proc/0/ns/ipc"}}, here, ""},
		{"joined ipc", joined, here, ""},
		{"joined ipc, not the chain's", joined, other, "is IPC namespace " + here.String() + ", the chain's is " + other.String()},
		{"joined ipc, the chain's unknown", joined, vresource.NamespaceID{}, "the chain's is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			logrus.SetOutput(&log)
			defer logrus.SetOutput(os.Stderr)
			cfg, reg, ch := setup(t)
			if err := reg.Update(ch.AID, func(c *vresource.Chain) error { c.Facts.IPCNS = tt.ipcNS; return nil }); err != nil {
				t.Fatal(err)
			}
			if err := chain.CreateTables(cfg, ch); err != nil {
				t.Fatal(err)
			}
			bundle := t.TempDir()
			spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: tt.namespaces}}
			if err := oci.SaveSpec(bundle, spec); err != nil {
				t.Fatal(err)
			}
			state := &specs.State{ID: "c1", Bundle: bundle}
			for range 2 { // the second finds nothing to do
				if err := Poststop(cfg, reg, ch.AID, state); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := reg.Get(ch.AID.String()); !errors.Is(err, vresource.ErrUnknownChain) {
				t.Errorf("chain still registered: %v", err)
			}
			if _, err := os.Stat(chain.Dir(cfg.StateDir, ch.AID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("chain dir left: %v", err)
			}
			if got := log.String(); tt.wantLog == "" && got != "" || !strings.Contains(got, tt.wantLog) {
				t.Errorf("log %q, want one saying %q", got, tt.wantLog)
			}
		})
	}
}
